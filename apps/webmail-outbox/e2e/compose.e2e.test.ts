/**
 * The compose side of the page in real Chromium, against this harness's relay double: Undo
 * while offline (the mail never leaves the browser), the notice that ends with its mail, a
 * Settings dialog that offers no Save for values from config.json, and the layout at a phone's
 * 390 px width.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium.js';
import { byTestId, OutboxPage } from './outbox-page.js';
import { appDir, buildPage, type PageServer, servePage } from './server.js';

const TOKEN = 'e2e-tenant-token';
const UNDO_SECONDS = 3;
const shots = join(appDir, 'test-results');

describe('compose: undo, notice, settings and a narrow screen', () => {
  let server: PageServer;
  let browser: Browser;

  beforeAll(async () => {
    await buildPage();
    server = await servePage({
      config: (origin) => ({
        relayUrl: origin,
        token: TOKEN,
        from: 'alice@example.com',
        undoSeconds: UNDO_SECONDS,
      }),
      relayToken: TOKEN,
    });
    browser = await launchChromium();
    await mkdir(shots, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const postsOf = (subject: string) =>
    server.posts.filter((p) => Buffer.from(p.raw, 'base64').toString().includes(subject));

  it('Undo while offline: the mail never leaves the browser; a mail sent after it goes out, posted with its sendAt', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const outbox = new OutboxPage(await context.newPage());
      await outbox.open(`${server.origin}/`);
      const onlineBefore = await outbox.page.evaluate(() => navigator.onLine);
      await context.setOffline(true);
      if (onlineBefore) expect(await outbox.page.evaluate(() => navigator.onLine)).toBe(false);
      const tag = crypto.randomUUID().slice(0, 8);
      await outbox.compose({ to: 'bob@example.org', subject: `Undone ${tag}`, body: 'No.' });
      await expect.poll(() => outbox.outboxRows().count()).toBe(1);
      const undo = outbox.page.locator(byTestId('compose-undo'));
      expect(await undo.isVisible()).toBe(true);
      await undo.click();
      await expect.poll(() => outbox.outboxRows().count()).toBe(0);
      expect(await outbox.page.locator(byTestId('compose-notice')).textContent()).toMatch(
        /never left this browser/,
      );

      // Back online, a second mail goes out; the undone one never does.
      await context.setOffline(false);
      const sentAt = Date.now();
      await outbox.compose({ to: 'carol@example.org', subject: `Kept ${tag}`, body: 'Yes.' });
      // The notice stays while Undo is offered, and ends with its mail (sent, window over).
      expect(await outbox.page.locator(byTestId('compose-notice')).textContent()).toBe(
        'Queued: sending now.',
      );
      await expect
        .poll(() => outbox.sentRows().count(), { timeout: 45_000, interval: 250 })
        .toBe(1);
      await expect
        .poll(() => outbox.page.locator(byTestId('compose-notice')).textContent(), {
          timeout: 20_000,
        })
        .toBe('');
      expect(await undo.isHidden()).toBe(true);
      const [kept] = postsOf(`Kept ${tag}`);
      expect(kept).toBeDefined();
      expect(postsOf(`Undone ${tag}`)).toEqual([]);
      // Posted with sendAt at the end of its undo window: the relay holds it until then.
      expect(kept!.sendAt).toBeGreaterThanOrEqual(sentAt + UNDO_SECONDS * 1000 - 1000);
      expect(kept!.sendAt).toBeLessThanOrEqual(Date.now() + UNDO_SECONDS * 1000);
    } finally {
      await context.close();
    }
  });

  it('Send later posts the picked time; the Sent row follows the relay: scheduled, then bounced with the reason', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const outbox = new OutboxPage(await context.newPage());
      await outbox.open(`${server.origin}/`);
      const tag = crypto.randomUUID().slice(0, 8);
      const subject = `Later ${tag}`;
      // Two hours ahead, in the picker's local-time format (minutes).
      const at = new Date(Date.now() + 2 * 3_600_000);
      at.setSeconds(0, 0);
      const pad = (n: number) => String(n).padStart(2, '0');
      const local = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
      const p = outbox.page;
      await p.fill(byTestId('compose-to'), 'dave@example.org');
      await p.fill(byTestId('compose-subject'), subject);
      await p.fill(byTestId('compose-body'), 'Later, please.');
      await p.fill(byTestId('compose-send-at'), local);
      await p.click(byTestId('compose-send-later'));
      await expect.poll(() => postsOf(subject).length, { timeout: 30_000 }).toBe(1);
      const [post] = postsOf(subject);
      expect(post!.sendAt).toBe(at.getTime());
      const relayId = `relay-${post!.key}`;

      const row = p.locator(byTestId('sent-row'), { hasText: subject });
      server.statuses.set(relayId, { id: relayId, state: 'scheduled', results: {} });
      await expect
        .poll(() => row.getAttribute('data-delivery'), { timeout: 20_000 })
        .toBe('scheduled');
      server.statuses.set(relayId, {
        id: relayId,
        state: 'bounced',
        results: {
          'dave@example.org': { status: 'failed', reply: '550 5.1.1 no such user here', at: 1 },
        },
      });
      // Asked again on its backoff (2 s, 4 s, …): the row turns Bounced, with the reason.
      await expect
        .poll(() => row.getAttribute('data-delivery'), { timeout: 30_000 })
        .toBe('bounced');
      expect(await row.locator(byTestId('sent-row-state')).textContent()).toBe('Bounced');
      expect(await row.locator(byTestId('sent-row-detail')).textContent()).toBe(
        'Bounced: dave@example.org: 550 5.1.1 no such user here',
      );
      expect(await row.getAttribute('data-final')).toBe('true');
    } finally {
      await context.close();
    }
  });

  it('at 390 px nothing overflows, Settings is on screen, and settings from config.json offer Close only', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const outbox = new OutboxPage(await context.newPage());
      await outbox.open(`${server.origin}/`);
      const widths = await outbox.page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
      }));
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
      expect(widths.client).toBeLessThanOrEqual(390);
      const settings = outbox.page.locator(byTestId('settings-open'));
      const box = await settings.boundingBox();
      expect(box).not.toBeNull();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(390);
      await outbox.page.screenshot({ path: join(shots, 'outbox-390px.png'), fullPage: true });

      await settings.click();
      expect(await outbox.page.locator(byTestId('settings-dialog')).isVisible()).toBe(true);
      expect(await outbox.page.locator(byTestId('settings-save')).isVisible()).toBe(false);
      expect(await outbox.page.locator(byTestId('settings-relay-url')).isDisabled()).toBe(true);
      expect(await outbox.page.getByRole('button', { name: 'Close' }).isVisible()).toBe(true);
    } finally {
      await context.close();
    }
  });
});
