/**
 * The whole story in real Chromium: the outbox page (IndexedDB engine, flusher, service worker)
 * → the relay Worker under `wrangler dev` (Durable Object shards, idempotent submission) → SMTP
 * to smtp-sink on 127.0.0.1. Every check counts what the SMTP server received: nothing lost,
 * nothing sent twice.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '@mailspool/webmail-outbox/chromium';
import { OutboxPage } from '@mailspool/webmail-outbox/outbox-page';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../src/stack.js';

const shots = fileURLToPath(new URL('../test-results/', import.meta.url));

let stack: Stack;
let browser: Browser;

beforeAll(async () => {
  stack = await startStack();
  browser = await launchChromium();
  await mkdir(shots, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** How many copies of the mail with `subject` the SMTP server received. */
const copies = (subject: string) => stack.sink.messages.filter((m) => m.subject === subject).length;

/** A fresh browser profile (its own IndexedDB), with the page open and ready. */
async function openOutbox() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const outbox = new OutboxPage(await context.newPage());
  await outbox.open(stack.pageUrl);
  await outbox.serviceWorkerReady();
  return { context, outbox };
}

describe('webmail outbox → relay Worker → SMTP', () => {
  it('offline: 3 mails survive a reload queued, then arrive exactly once when back online', async () => {
    const { context, outbox } = await openOutbox();
    const onlineBefore = await outbox.page.evaluate(() => navigator.onLine);
    await context.setOffline(true);
    if (onlineBefore) expect(await outbox.page.evaluate(() => navigator.onLine)).toBe(false);
    const tag = crypto.randomUUID().slice(0, 8);
    const subjects = [`Quarterly report ${tag}`, `Lunch on Friday? ${tag}`, `Re: agenda ✓ ${tag}`];
    for (const [i, subject] of subjects.entries()) {
      await outbox.compose({
        to: `bob${i}@example.org`,
        cc: i === 0 ? 'carol@example.net' : '',
        subject,
        body: `Message ${i + 1}, written offline.`,
        attachments:
          i === 0
            ? [{ name: 'report.csv', mimeType: 'text/csv', buffer: Buffer.from('q,total\n4,42\n') }]
            : [],
      });
    }
    await outbox.page.reload();
    await outbox.ready();
    const rows = await outbox.outbox();
    expect(rows.map((r) => r.subject).sort()).toEqual([...subjects].sort());
    expect(rows.map((r) => r.state)).toEqual(['queued', 'queued', 'queued']);
    for (const subject of subjects) expect(copies(subject)).toBe(0);
    await outbox.page.screenshot({
      path: join(shots, 'outbox-offline-queued.png'),
      fullPage: true,
    });

    await context.setOffline(false);
    await expect.poll(() => outbox.sentRows().count(), { timeout: 60_000, interval: 250 }).toBe(3);
    await expect
      .poll(() => subjects.map(copies), { timeout: 30_000, interval: 250 })
      .toEqual([1, 1, 1]);
    const report = stack.sink.messages.find((m) => m.subject === subjects[0]);
    expect(report?.rcptTo).toEqual(['bob0@example.org', 'carol@example.net']);
    expect(Buffer.from(report!.rawBase64, 'base64').toString()).toContain('report.csv');
    await expect.poll(() => outbox.outboxRows().count(), { timeout: 10_000 }).toBe(0);
    await outbox.page.screenshot({ path: join(shots, 'outbox-sent.png'), fullPage: true });
    await context.close();
  });

  it('two tabs open during the flush: still exactly once', async () => {
    const { context, outbox: first } = await openOutbox();
    const second = new OutboxPage(await context.newPage());
    await second.open(stack.pageUrl);
    await context.setOffline(true);
    const tag = crypto.randomUUID().slice(0, 8);
    const subjects = Array.from({ length: 6 }, (_, i) => `Two tabs ${i} ${tag}`);
    for (const [i, subject] of subjects.entries()) {
      await (i % 2 === 0 ? first : second).compose({
        to: `dave${i}@example.org`,
        subject,
        body: 'x',
      });
    }
    // Both tabs see all six (change events across tabs) before the network comes back.
    await expect.poll(() => second.outboxRows().count(), { timeout: 10_000 }).toBe(6);
    await expect.poll(() => first.outboxRows().count(), { timeout: 10_000 }).toBe(6);
    await context.setOffline(false);
    await expect
      .poll(() => subjects.map(copies), { timeout: 60_000, interval: 250 })
      .toEqual([1, 1, 1, 1, 1, 1]);
    await expect
      .poll(() => first.sentRows().count(), { timeout: 30_000 })
      .toBeGreaterThanOrEqual(6);
    await expect.poll(() => second.outboxRows().count(), { timeout: 30_000 }).toBe(0);
    // Nothing more arrives later either (the flushers are idle: nothing left to claim).
    expect(subjects.map(copies)).toEqual([1, 1, 1, 1, 1, 1]);
    await context.close();
  });

  it('Background Sync: with every tab of the page gone, the service worker delivers the queued mail once', async () => {
    const { context, outbox } = await openOutbox();
    await context.setOffline(true);
    const tag = crypto.randomUUID().slice(0, 8);
    const subjects = [`From the service worker 1 ${tag}`, `From the service worker 2 ${tag}`];
    for (const [i, subject] of subjects.entries())
      await outbox.compose({ to: `frank${i}@example.org`, subject, body: 'z' });
    // The list re-renders from IndexedDB after each Send: wait for both rows.
    await expect
      .poll(async () => (await outbox.outbox()).map((r) => r.state), { timeout: 10_000 })
      .toEqual(['queued', 'queued']);

    // The page goes away (its flusher with it); only the service worker is left for the origin.
    const cdp = await context.newCDPSession(outbox.page);
    const registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] = [];
    cdp.on(
      'ServiceWorker.workerRegistrationUpdated',
      (event: { registrations: typeof registrations }) => {
        registrations.push(...event.registrations);
      },
    );
    await cdp.send('ServiceWorker.enable');
    await outbox.page.goto('about:blank');
    await context.setOffline(false);
    const registration = await expect
      .poll(() => registrations.find((r) => r.scopeURL === stack.pageUrl && !r.isDeleted), {
        timeout: 10_000,
      })
      .toBeDefined()
      .then(() => registrations.find((r) => r.scopeURL === stack.pageUrl && !r.isDeleted)!);
    // What the browser does when connectivity returns: fire the `sync` event the page registered.
    await cdp.send('ServiceWorker.dispatchSyncEvent', {
      origin: new URL(stack.pageUrl).origin,
      registrationId: registration.registrationId,
      tag: 'mailspool-flush',
      lastChance: false,
    });
    await expect
      .poll(() => subjects.map(copies), { timeout: 60_000, interval: 250 })
      .toEqual([1, 1]);
    // Back on the page: both are in Sent, none left in the Outbox.
    await outbox.open(stack.pageUrl);
    await expect.poll(() => outbox.outboxRows().count(), { timeout: 20_000 }).toBe(0);
    const sent = (await outbox.sent()).map((r) => r.subject);
    for (const subject of subjects) expect(sent).toContain(subject);
    expect(subjects.map(copies)).toEqual([1, 1]);
    await context.close();
  });

  it('relay Worker down during the flush: retries with backoff, and every mail arrives once after it is back', async () => {
    const { context, outbox } = await openOutbox();
    await stack.stopRelay();
    const tag = crypto.randomUUID().slice(0, 8);
    const subjects = [`Outage A ${tag}`, `Outage B ${tag}`];
    for (const [i, subject] of subjects.entries())
      await outbox.compose({ to: `erin${i}@example.org`, subject, body: 'y' });
    // Each post fails (connection refused): the rows show a retry time and the error.
    await expect
      .poll(async () => (await outbox.outbox()).map((r) => r.state), {
        timeout: 30_000,
        interval: 250,
      })
      .toEqual(['retry', 'retry']);
    const retryText = await outbox.outboxRows().first().textContent();
    expect(retryText).toMatch(/retry/i);
    await outbox.page.screenshot({ path: join(shots, 'outbox-relay-down.png'), fullPage: true });
    for (const subject of subjects) expect(copies(subject)).toBe(0);

    await stack.startRelay();
    await expect
      .poll(() => subjects.map(copies), { timeout: 90_000, interval: 500 })
      .toEqual([1, 1]);
    await expect.poll(() => outbox.outboxRows().count(), { timeout: 30_000 }).toBe(0);
    expect(subjects.map(copies)).toEqual([1, 1]);
    await context.close();
  });
});

describe('undo and delivery status, against the relay Worker', () => {
  it('Undo online cancels at the relay (the mail never reaches SMTP); a kept mail shows Delivered from its record', async () => {
    const { context, outbox } = await openOutbox();
    const tag = crypto.randomUUID().slice(0, 8);
    const undone = `Undo online ${tag}`;
    const kept = `Kept online ${tag}`;
    await outbox.compose({ to: 'frank@example.org', subject: undone, body: 'Take it back.' });
    // Posted at once, with sendAt at the end of the undo window: the relay holds it.
    await expect.poll(() => outbox.sentRows().count(), { timeout: 10_000 }).toBe(1);
    await outbox.page.click('[data-testid="compose-undo"]');
    await expect
      .poll(() => outbox.page.locator('[data-testid="compose-notice"]').textContent(), {
        timeout: 15_000,
      })
      .toBe('Undone: the relay will not send it.');
    const undoneRow = outbox.page.locator('[data-testid="sent-row"]', { hasText: undone });
    await expect.poll(() => undoneRow.getAttribute('data-delivery')).toBe('canceled');

    await outbox.compose({ to: 'grace@example.org', subject: kept, body: 'Keep it.' });
    await expect.poll(() => copies(kept), { timeout: 60_000, interval: 250 }).toBe(1);
    const keptRow = outbox.page.locator('[data-testid="sent-row"]', { hasText: kept });
    await expect
      .poll(() => keptRow.getAttribute('data-delivery'), { timeout: 60_000, interval: 250 })
      .toBe('delivered');
    expect(await keptRow.locator('[data-testid="sent-row-state"]').textContent()).toBe('Delivered');
    // The kept mail was sent after the undone one's window ended: that one never arrived.
    expect(copies(undone)).toBe(0);
    await outbox.page.screenshot({
      path: join(shots, 'outbox-undo-delivered.png'),
      fullPage: true,
    });
    await context.close();
  });
});
