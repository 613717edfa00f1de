/**
 * Many tabs of one origin in real Chromium (Playwright driving the system's Chromium, pages
 * served from 127.0.0.1): the flush race, pages killed mid-store, a real quota, versionchange,
 * blocked opens and cross-tab change events.
 */
import type { ChangeEvent } from '@mailspool/core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { launchWithDiskProfile } from '../chromium.js';
import type { Report } from './page.js';
import { type PageServer, startPageServer } from './server.js';

// page.ts declares `window.outbox` (its API) and `window.report` for this program too.

let server: PageServer;
let context: BrowserContext;
let browser: Awaited<ReturnType<typeof launchWithDiskProfile>>;
let onReport: (report: Report) => void = () => {};
let dbCounter = 0;
const dbName = (what: string) => `${what}-${Date.now().toString(36)}-${dbCounter++}`;

beforeAll(async () => {
  server = await startPageServer();
  // A persistent profile on disk: IndexedDB lives in files, as for a user.
  browser = await launchWithDiskProfile('mailspool-idb-e2e');
  context = browser.context;
  await context.exposeBinding('report', (_source, report: Report) => onReport(report));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function openPage(origin = server.origin): Promise<Page> {
  const page = await context.newPage();
  await page.goto(origin);
  await page.waitForFunction(() => window.outbox !== undefined);
  return page;
}

async function closeAll(pages: Page[]) {
  await Promise.all(pages.map((p) => p.close().catch(() => {})));
}

/**
 * Opens a listener tab and a writer tab and runs `body` with the change events the listener
 * tab reports, in order; closes both after.
 */
async function listenAcrossTabs(
  body: (listener: Page, writer: Page, heard: ChangeEvent[]) => Promise<void>,
): Promise<void> {
  const [listener, writer] = await Promise.all([openPage(), openPage()]);
  const heard: ChangeEvent[] = [];
  onReport = (r) => {
    if (r.kind === 'change' && r.tab === 'listener') heard.push(r.event);
  };
  try {
    await body(listener, writer, heard);
  } finally {
    onReport = () => {};
    await closeAll([listener, writer]);
  }
}

describe('tabs race', () => {
  it('4 tabs flushing with claimDue and lockMessage while a 5th stores: never held twice, each delivered once', async () => {
    const name = dbName('race');
    const pages = await Promise.all(Array.from({ length: 5 }, () => openPage()));
    try {
      const seeded = await pages[0]!.evaluate((n) => window.outbox.seed(n, 300), name);
      const holders = new Map<string, string>();
      const deliveries = new Map<string, number>();
      const violations: string[] = [];
      let acquires = 0;
      let lockPathAcquires = 0;
      onReport = (r) => {
        if (r.kind === 'acquire') {
          acquires++;
          if (r.token === -1) lockPathAcquires++;
          const holder = holders.get(r.id);
          if (holder !== undefined)
            violations.push(`${r.id} taken by ${r.tab} while ${holder} held it`);
          holders.set(r.id, r.tab);
        } else if (r.kind === 'release') {
          if (holders.get(r.id) !== r.tab)
            violations.push(`${r.tab} released ${r.id} it did not hold`);
          holders.delete(r.id);
        } else if (r.kind === 'deliver') {
          if (holders.get(r.id) !== r.tab)
            violations.push(`${r.tab} delivered ${r.id} without holding it`);
          deliveries.set(r.id, (deliveries.get(r.id) ?? 0) + 1);
        }
      };
      const [produced, ...flushed] = await Promise.all([
        pages[4]!.evaluate((n) => window.outbox.produce(n, 100), name),
        ...pages.slice(0, 4).map((page, i) =>
          page.evaluate(({ n, tab }) => window.outbox.flush(n, tab, 5000), {
            n: name,
            tab: `tab${i}`,
          }),
        ),
      ]);
      onReport = () => {};
      const all = [...seeded, ...produced];
      expect(violations).toEqual([]);
      expect(new Set(all).size).toBe(400);
      expect([...deliveries.keys()].sort()).toEqual([...all].sort());
      expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
      // Both paths were raced, and some deliveries failed and went round again.
      expect(lockPathAcquires).toBeGreaterThan(0);
      expect(acquires).toBeGreaterThan(400);
      expect(flushed.every((f) => f.rounds < 5000)).toBe(true);
      const after = await pages[0]!.evaluate((n) => window.outbox.verify(n), name);
      expect(after.stats).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
    } finally {
      await closeAll(pages);
    }
  }, 150_000);
});

describe('crash', () => {
  it('pages killed while storeMessage is in flight leave each message whole or absent, and every acknowledged one whole', async () => {
    const name = dbName('crash');
    const acknowledged = new Set<string>();
    let kills = 0;
    for (let round = 0; round < 16; round++) {
      const page = await openPage();
      const cdp = await context.newCDPSession(page);
      const crash = round % 2 === 0;
      const killed = new Promise<void>((resolve) => {
        onReport = (r) => {
          if (r.kind === 'stored' && r.id) acknowledged.add(r.id);
          if (r.kind === 'storing') {
            kills++;
            // Renderer crash (like an OOM kill) or tab close (the user closing it), mid-commit.
            if (crash) void cdp.send('Page.crash').catch(() => {});
            else void page.close().catch(() => {});
            resolve();
          }
        };
      });
      const run = page
        .evaluate(({ n, tab, at }) => window.outbox.storeUntilKilled(n, tab, at), {
          n: name,
          tab: `r${round}`,
          at: round % 5,
        })
        .then(
          () => 'finished',
          () => 'killed',
        );
      await killed;
      expect(await run).toBe('killed');
      await page.close().catch(() => {});
    }
    onReport = () => {};
    expect(kills).toBe(16);
    const checker = await openPage();
    try {
      const result = await checker.evaluate((n) => window.outbox.verify(n), name);
      expect(result.broken).toEqual([]);
      for (const id of acknowledged) expect(result.ids).toContain(id);
      expect(acknowledged.size).toBeGreaterThan(0);
      expect(result.stats.total).toBe(result.ids.length);
      expect(result.stats.due).toBe(result.ids.length);
    } finally {
      await checker.close();
    }
  }, 120_000);
});

describe('quota', () => {
  it('a write over a real (small) origin quota rejects QUOTA_EXCEEDED and leaves the outbox as it was', async () => {
    // Chromium enforces Storage.overrideQuotaForOrigin in an in-memory (incognito) context but
    // not in a persistent profile, so this test gets its own context of the same browser.
    const incognito = await context.browser()!.newContext();
    try {
      const page = await incognito.newPage();
      await page.goto(server.origin);
      await page.waitForFunction(() => window.outbox !== undefined);
      const cdp = await incognito.newCDPSession(page);
      await cdp.send('Storage.overrideQuotaForOrigin', {
        origin: server.origin,
        quotaSize: 2 * 1024 * 1024,
      });
      const result = await page.evaluate(
        (n) => window.outbox.overQuota(n, 4 * 1024 * 1024),
        dbName('quota'),
      );
      // The transaction aborts with QuotaExceededError at commit; navigator.storage.estimate()
      // keeps reporting the default quota, so only its presence is checked.
      expect(result.quota).toBeGreaterThan(0);
      expect(result.code).toBe('QUOTA_EXCEEDED');
      expect(result.cause).toBe('QuotaExceededError');
      expect(result.batchCode).toBe('QUOTA_EXCEEDED');
      expect(result.after).toEqual(result.before);
      expect(result.keptContents).toBe('fits');
    } finally {
      await incognito.close();
    }
  }, 60_000);
});

describe('connections across tabs', () => {
  it('an open blocked by an old tab rejects UNAVAILABLE after the bounded wait, and works once it closes', async () => {
    const name = dbName('blocked');
    const [old, current] = await Promise.all([openPage(), openPage()]);
    try {
      await old!.evaluate((n) => window.outbox.holdOldConnection(n, 1), name);
      expect(await current!.evaluate((n) => window.outbox.tryConnect(n, 300), name)).toBe(
        'UNAVAILABLE',
      );
      await old!.evaluate(() => (window as unknown as { held: IDBDatabase }).held.close());
      expect(await current!.evaluate((n) => window.outbox.tryConnect(n, 300), name)).toBe('ok');
    } finally {
      await closeAll([old!, current!]);
    }
  }, 60_000);

  it('a tab with newer code can upgrade: ours closes on versionchange instead of blocking it', async () => {
    const name = dbName('upgrade');
    const [ours, newer] = await Promise.all([openPage(), openPage()]);
    try {
      expect(await ours!.evaluate((n) => window.outbox.keepOpen(n), name)).toBe(0);
      const version = await ours!.evaluate(() => window.outbox.DB_VERSION);
      expect(
        await newer!.evaluate(({ n, v }) => window.outbox.upgradeRaw(n, v), {
          n: name,
          v: version + 1,
        }),
      ).toBe('opened');
    } finally {
      await closeAll([ours!, newer!]);
    }
  }, 60_000);

  it('a change in one tab reaches subscribers in another', async () => {
    const name = dbName('changes');
    await listenAcrossTabs(async (listener, writer, heard) => {
      await listener.evaluate((n) => window.outbox.listen(n, 'listener'), name);
      const id = await writer.evaluate((n) => window.outbox.storeAndDelete(n), name);
      await vi.waitFor(
        () =>
          expect(heard).toEqual([
            { type: 'stored', ids: [id] },
            { type: 'deleted', ids: [id] },
          ]),
        { timeout: 10_000, interval: 20 },
      );
    });
  }, 60_000);

  // Regression: each write posted its own BroadcastChannel message (a trip through the browser
  // process each), which made relaxed single writes ~0.8× of raw idb; posts are now coalesced.
  it('a burst of single writes in one tab reaches another tab whole and in order, in fewer messages', async () => {
    const name = dbName('burst');
    await listenAcrossTabs(async (listener, writer, heard) => {
      await listener.evaluate((n) => window.outbox.listen(n, 'listener'), name);
      const ids = await writer.evaluate((n) => window.outbox.storeEach(n, 300), name);
      expect(ids).toHaveLength(300);
      await vi.waitFor(() => expect(heard.flatMap((e) => e.ids)).toHaveLength(300), {
        timeout: 10_000,
        interval: 20,
      });
      expect(heard.every((e) => e.type === 'stored')).toBe(true);
      expect(heard.flatMap((e) => e.ids)).toEqual(ids);
      expect(heard.length).toBeLessThan(150);
    });
  }, 60_000);

  it('without BroadcastChannel (Safari before 15.4), changes reach another tab through storage events, whole and in order', async () => {
    const name = dbName('no-broadcast');
    await listenAcrossTabs(async (listener, writer, heard) => {
      for (const page of [listener, writer]) {
        expect(await page.evaluate(() => window.outbox.dropBroadcastChannel())).toBe(true);
      }
      await listener.evaluate((n) => window.outbox.listen(n, 'listener'), name);
      const ids = await writer.evaluate((n) => window.outbox.storeEach(n, 100), name);
      const deleted = await writer.evaluate((n) => window.outbox.storeAndDelete(n), name);
      await vi.waitFor(() => expect(heard.flatMap((e) => e.ids)).toHaveLength(102), {
        timeout: 10_000,
        interval: 20,
      });
      expect(heard.filter((e) => e.type === 'stored').flatMap((e) => e.ids)).toEqual([
        ...ids,
        deleted,
      ]);
      expect(heard[heard.length - 1]).toEqual({ type: 'deleted', ids: [deleted] });
    });
  }, 60_000);
});
