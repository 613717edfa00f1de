/**
 * The multi-tab tests of tabs.test.ts in Debian's Firefox ESR and WebKitGTK (the engine Safari is
 * built on): the flush race, pages killed or closed mid-store, a real quota where the browser lets
 * a test set one, blocked and upgrading opens, and change events across tabs. Pages are the same
 * test page (page.ts), reporting to the page server over HTTP; test-support's tabs.js drives them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChangeEvent } from '@mailspool/core';
import {
  descendants,
  launchMiniBrowser,
  otherBrowsers,
  startXvfb,
  stopProcess,
} from '@mailspool/test-support/browsers';
import { type DrivenBrowser, launchTabs, type Tab } from '@mailspool/test-support/tabs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type PageServer, startPageServer } from './server.js';

let dbCounter = 0;
const dbName = (what: string) => `${what}-${Date.now().toString(36)}-${dbCounter++}`;

async function closeAll(tabs: Tab[]) {
  await Promise.all(tabs.map((t) => t.close().catch(() => {})));
}

describe.each(otherBrowsers)('%s', (browserName) => {
  let server: PageServer;
  let browser: DrivenBrowser;
  const openTab = () => browser.openTab(server.origin, () => window.outbox !== undefined);

  beforeAll(async () => {
    server = await startPageServer();
    browser = await launchTabs(browserName);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /**
   * Opens a listener tab and a writer tab and runs `body` with the change events the listener
   * tab reports, in order; closes both after.
   */
  async function listenAcrossTabs(
    body: (listener: Tab, writer: Tab, heard: ChangeEvent[]) => Promise<void>,
  ): Promise<void> {
    const listener = await openTab();
    const writer = await openTab();
    const heard: ChangeEvent[] = [];
    server.onReport = (r) => {
      if (r.kind === 'change' && r.tab === 'listener') heard.push(r.event);
    };
    try {
      await body(listener, writer, heard);
    } finally {
      server.onReport = () => {};
      await closeAll([listener, writer]);
    }
  }

  it('4 tabs flushing with claimDue and lockMessage while a 5th stores: never held twice, each delivered once', async () => {
    const name = dbName('race');
    const tabs: Tab[] = [];
    for (let i = 0; i < 5; i++) tabs.push(await openTab());
    try {
      const seeded = await tabs[0]!.run((n) => window.outbox.seed(n, 300), name);
      const holders = new Map<string, string>();
      const deliveries = new Map<string, number>();
      const violations: string[] = [];
      let acquires = 0;
      let lockPathAcquires = 0;
      server.onReport = (r) => {
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
        tabs[4]!.run((n) => window.outbox.produce(n, 100), name),
        ...tabs
          .slice(0, 4)
          .map((tab, i) =>
            tab.run(({ n, t }) => window.outbox.flush(n, t, 5000), { n: name, t: `tab${i}` }),
          ),
      ]);
      server.onReport = () => {};
      const all = [...seeded, ...produced];
      expect(violations).toEqual([]);
      expect(new Set(all).size).toBe(400);
      expect([...deliveries.keys()].sort()).toEqual([...all].sort());
      expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
      // Both paths were raced, and some deliveries failed and went round again.
      expect(lockPathAcquires).toBeGreaterThan(0);
      expect(acquires).toBeGreaterThan(400);
      expect(flushed.every((f) => f.rounds < 5000)).toBe(true);
      const after = await tabs[0]!.run((n) => window.outbox.verify(n), name);
      expect(after.stats).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
    } finally {
      server.onReport = () => {};
      await closeAll(tabs);
    }
  }, 240_000);

  // WebKitWebDriver deletes its session as soon as any page crashes, and a session's storage is
  // in memory, so in WebKit the renderer kills are the next test's (MiniBrowser with no driver,
  // on a disk profile); here the tabs are closed.
  const killsRenderers = browserName === 'firefox';

  it(`tabs ${killsRenderers ? 'whose renderer is killed, or that are closed,' : 'closed'} while storeMessage is in flight leave each message whole or absent, and every acknowledged one whole`, async () => {
    const name = dbName('crash');
    const acknowledged = new Set<string>();
    let kills = 0;
    let renderersKilled = 0;
    for (let round = 0; round < 10; round++) {
      const tab = await openTab();
      const crash = killsRenderers && round % 2 === 0;
      const killed = new Promise<void>((resolve) => {
        server.onReport = (r) => {
          if (r.kind === 'stored' && r.id) acknowledged.add(r.id);
          if (r.kind === 'storing') {
            kills++;
            // The renderer SIGKILLed (like an OOM kill) or the tab closed (the user), mid-commit.
            if (crash) void tab.killRenderer().then((n) => (renderersKilled += n));
            else void tab.close().catch(() => {});
            resolve();
          }
        };
      });
      const run = tab
        .run(({ n, t, at }) => window.outbox.storeUntilKilled(n, t, at), {
          n: name,
          t: `r${round}`,
          at: round % 5,
        })
        .then(
          () => 'finished',
          () => 'killed',
        );
      await killed;
      expect(await run).toBe('killed');
      await tab.close().catch(() => {});
    }
    server.onReport = () => {};
    expect(kills).toBe(10);
    if (killsRenderers) expect(renderersKilled).toBeGreaterThanOrEqual(5);
    const checker = await openTab();
    try {
      const result = await checker.run((n) => window.outbox.verify(n), name);
      expect(result.broken).toEqual([]);
      for (const id of acknowledged) expect(result.ids).toContain(id);
      expect(acknowledged.size).toBeGreaterThan(0);
      expect(result.stats.total).toBe(result.ids.length);
      expect(result.stats.due).toBe(result.ids.length);
    } finally {
      await checker.close();
    }
  }, 240_000);

  if (browserName === 'webkit')
    it('MiniBrowser on a disk profile, its web process or the whole browser SIGKILLed while storeMessage is in flight: each message whole or absent after a restart, every acknowledged one whole', async () => {
      const name = dbName('killed');
      const xvfb = await startXvfb();
      const home = await mkdtemp(join(tmpdir(), 'mailspool-idb-minibrowser-'));
      const url = (run: string, args: unknown[]) =>
        `${server.origin}/?run=${run}&args=${encodeURIComponent(JSON.stringify(args))}`;
      const acknowledged = new Set<string>();
      try {
        let renderersKilled = 0;
        let browsersKilled = 0;
        for (let round = 0; round < 6; round++) {
          const storing = new Promise<void>((resolve) => {
            server.onReport = (r) => {
              if (r.kind === 'stored' && r.id) acknowledged.add(r.id);
              if (r.kind === 'storing') resolve();
            };
          });
          const minibrowser = launchMiniBrowser(
            url('storeUntilKilled', [name, `r${round}`, round % 3]),
            { display: xvfb.display, home },
          );
          try {
            await storing;
            const tree = await descendants(minibrowser.pid!);
            if (round % 2 === 0) {
              // The renderer, as an OOM kill would; the network process (IndexedDB's) lives on.
              const web = tree.filter((p) => p.cmdline.includes('WebKitWebProcess'));
              for (const p of web) process.kill(p.pid, 'SIGKILL');
              renderersKilled += web.length;
            } else {
              // The whole browser at once: UI, network and web processes.
              for (const p of [{ pid: minibrowser.pid! }, ...tree]) process.kill(p.pid, 'SIGKILL');
              browsersKilled++;
            }
          } finally {
            await stopProcess(minibrowser);
          }
        }
        expect(renderersKilled).toBeGreaterThanOrEqual(3);
        expect(browsersKilled).toBe(3);
        const verified = new Promise<{ value?: unknown; error?: string }>((resolve) => {
          server.onReport = (r) => {
            if (r.kind === 'result' && r.run === 'verify') resolve(r);
          };
        });
        const checker = launchMiniBrowser(url('verify', [name]), { display: xvfb.display, home });
        let outcome: { value?: unknown; error?: string };
        try {
          outcome = await verified;
        } finally {
          await stopProcess(checker);
        }
        expect(outcome.error).toBeUndefined();
        const result = outcome.value as Awaited<ReturnType<typeof window.outbox.verify>>;
        expect(result.broken).toEqual([]);
        expect(acknowledged.size).toBeGreaterThan(0);
        for (const id of acknowledged) expect(result.ids).toContain(id);
        expect(result.stats.total).toBe(result.ids.length);
        expect(result.stats.due).toBe(result.ids.length);
      } finally {
        server.onReport = () => {};
        await stopProcess(xvfb.child);
        await rm(home, { recursive: true, force: true });
      }
    }, 240_000);

  if (browserName === 'firefox')
    it('a write over a real (small) origin quota rejects QUOTA_EXCEEDED and leaves the outbox as it was', async () => {
      // Firefox takes its storage limit from a preference (in KiB), read at start-up: this test
      // gets a browser of its own with a small one.
      const small = await launchTabs('firefox', {
        firefoxPrefs: { 'dom.quotaManager.temporaryStorage.fixedLimit': 2048 },
      });
      try {
        const tab = await small.openTab(server.origin, () => window.outbox !== undefined);
        const result = await tab.run(({ n, size }) => window.outbox.overQuota(n, size), {
          n: dbName('quota'),
          size: 4 * 1024 * 1024,
        });
        expect(result.quota).toBeGreaterThan(0);
        expect(result.code).toBe('QUOTA_EXCEEDED');
        expect(result.cause).toBe('QuotaExceededError');
        expect(result.batchCode).toBe('QUOTA_EXCEEDED');
        expect(result.after).toEqual(result.before);
        expect(result.keptContents).toBe('fits');
      } finally {
        await small.close();
      }
    }, 90_000);
  else
    it.skip('quota: WebKitGTK lets no test set an origin quota (MiniBrowser has no option for it, WebDriver no command, and navigator.storage is missing there)', () => {});

  it('an open blocked by an old tab rejects UNAVAILABLE after the bounded wait, and works once it closes', async () => {
    const name = dbName('blocked');
    const old = await openTab();
    const current = await openTab();
    try {
      await old.run((n) => window.outbox.holdOldConnection(n, 1), name);
      expect(await current.run((n) => window.outbox.tryConnect(n, 300), name)).toBe('UNAVAILABLE');
      await old.run(() => (window as unknown as { held: IDBDatabase }).held.close(), undefined);
      expect(await current.run((n) => window.outbox.tryConnect(n, 300), name)).toBe('ok');
    } finally {
      await closeAll([old, current]);
    }
  }, 60_000);

  it('a tab with newer code can upgrade: ours closes on versionchange instead of blocking it', async () => {
    const name = dbName('upgrade');
    const ours = await openTab();
    const newer = await openTab();
    try {
      expect(await ours.run((n) => window.outbox.keepOpen(n), name)).toBe(0);
      const version = await ours.run(() => window.outbox.DB_VERSION, undefined);
      expect(
        await newer.run(({ n, v }) => window.outbox.upgradeRaw(n, v), { n: name, v: version + 1 }),
      ).toBe('opened');
    } finally {
      await closeAll([ours, newer]);
    }
  }, 60_000);

  it('a burst of single writes in one tab reaches subscribers in another whole and in order', async () => {
    const name = dbName('burst');
    await listenAcrossTabs(async (listener, writer, heard) => {
      await listener.run((n) => window.outbox.listen(n, 'listener'), name);
      const ids = await writer.run((n) => window.outbox.storeEach(n, 100), name);
      expect(ids).toHaveLength(100);
      await vi.waitFor(() => expect(heard.flatMap((e) => e.ids)).toHaveLength(100), {
        timeout: 15_000,
        interval: 20,
      });
      expect(heard.every((e) => e.type === 'stored')).toBe(true);
      expect(heard.flatMap((e) => e.ids)).toEqual(ids);
    });
  }, 60_000);

  it('without BroadcastChannel (Safari before 15.4), changes reach another tab through storage events, whole and in order', async () => {
    const name = dbName('no-broadcast');
    await listenAcrossTabs(async (listener, writer, heard) => {
      for (const tab of [listener, writer]) {
        expect(await tab.run(() => window.outbox.dropBroadcastChannel(), null)).toBe(true);
      }
      await listener.run((n) => window.outbox.listen(n, 'listener'), name);
      const ids = await writer.run((n) => window.outbox.storeEach(n, 100), name);
      const deleted = await writer.run((n) => window.outbox.storeAndDelete(n), name);
      await vi.waitFor(() => expect(heard.flatMap((e) => e.ids)).toHaveLength(102), {
        timeout: 15_000,
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
