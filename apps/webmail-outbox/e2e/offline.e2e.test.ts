import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium.js';
import { OutboxPage } from './outbox-page.js';
import { appDir, buildPage, type PageServer, servePage } from './server.js';

const TOKEN = 'e2e-tenant-token';
const shots = join(appDir, 'test-results');

describe('webmail outbox in Chromium, without the relay Worker', () => {
  let server: PageServer;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    await buildPage();
    // The page's relay is this same server's /v1/messages double (no Worker needed here).
    server = await servePage({
      config: (origin) => ({ relayUrl: origin, token: TOKEN, from: 'alice@example.com' }),
      relayToken: TOKEN,
    });
    browser = await launchChromium();
    await mkdir(shots, { recursive: true });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
  });

  it('keeps 3 mails composed offline queued across a reload, and posts each once when back online', async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const outbox = new OutboxPage(await context.newPage());
    await outbox.open(`${server.origin}/`);
    await outbox.serviceWorkerReady();
    const onlineBefore = await outbox.page.evaluate(() => navigator.onLine);

    await context.setOffline(true);
    // In a loopback-only namespace Chromium says offline from the start (docs/toolchain-notes.md).
    if (onlineBefore) expect(await outbox.page.evaluate(() => navigator.onLine)).toBe(false);
    const subjects = ['Quarterly report', 'Lunch on Friday?', 'Re: the offsite — agenda ✓'];
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
    await expect.poll(() => outbox.outboxRows().count()).toBe(3);

    await outbox.page.reload();
    await outbox.ready();
    const rows = await outbox.outbox();
    expect(rows.map((r) => r.subject).sort()).toEqual([...subjects].sort());
    expect(rows.map((r) => r.state)).toEqual(['queued', 'queued', 'queued']);
    expect(server.posts).toEqual([]);
    await outbox.page.screenshot({
      path: join(shots, 'outbox-offline-queued.png'),
      fullPage: true,
    });

    await context.setOffline(false);
    // `online` wakes the flusher; where Chromium never reports online (loopback-only namespace)
    // its offline retry (at most 30 s) sends them instead.
    await expect.poll(() => outbox.sentRows().count(), { timeout: 45_000 }).toBe(3);
    await expect.poll(() => outbox.outboxRows().count(), { timeout: 10_000 }).toBe(0);
    const ids = rows.map((r) => r.id).sort();
    expect(
      server.posts
        .filter((p) => p.status === 202)
        .map((p) => p.key)
        .sort(),
    ).toEqual(ids);
    expect(new Set(server.posts.map((p) => p.key)).size).toBe(3);
    const first = server.posts.find((p) =>
      Buffer.from(p.raw, 'base64').toString().includes('report.csv'),
    );
    expect(first?.to).toEqual(['bob0@example.org', 'carol@example.net']);
    await outbox.page.screenshot({ path: join(shots, 'outbox-sent.png'), fullPage: true });
  });
});
