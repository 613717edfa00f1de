/**
 * The test page the multi-tab e2e tests load in several Chromium pages of one origin (bundled
 * by server.ts). It exposes `window.outbox`: small scenario functions that drive the real
 * engine and report to the test through `window.report`: a Playwright binding in Chromium, else
 * a POST to the page server's `/report` (Firefox, WebKit), answered once the test has seen it.
 */
import { type ChangeEvent, isMailspoolError, type Lease } from '@mailspool/core';
import { DB_VERSION, IndexedDbEngine, storageEstimate } from '../../src/index.js';

/** Reported to the test: `acquire` after a lock is won, `release` before it is given up. */
export type Report =
  | { kind: 'acquire' | 'release' | 'deliver'; id: string; tab: string; token?: number }
  | { kind: 'storing' | 'stored'; id?: string; tab: string; n: number }
  | { kind: 'change'; event: ChangeEvent; tab: string }
  /** The outcome of a scenario the page ran by itself (`?run=`, see the end of this file). */
  | { kind: 'result'; run: string; value?: unknown; error?: string };

declare global {
  interface Window {
    report(report: Report): Promise<void>;
    outbox: typeof outbox;
  }
}

const bytes = (n: number, seed: number) => {
  const out = new Uint8Array(n);
  crypto.getRandomValues(out.subarray(0, Math.min(n, 65_536)));
  for (let i = 65_536; i < n; i++) out[i] = (i * 31 + seed) & 255;
  return out;
};

/** `n` random bytes: nothing a browser could compress (Firefox compresses what it stores). */
const randomBytes = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, i + 65_536));
  return out;
};

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

const outbox = {
  DB_VERSION,

  /** Stores `count` messages in batches; resolves with their ids. */
  async seed(name: string, count: number): Promise<string[]> {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    const ids: string[] = [];
    for (let n = 0; n < count; n += 50) {
      const batch = Array.from({ length: Math.min(50, count - n) }, (_, k) => ({
        meta: { n: n + k, sender: 'me@example.com', recipients: ['you@example.org'] },
        contents: `message ${n + k}`,
      }));
      ids.push(...(await s.storeMessages(batch)));
    }
    await engine.close();
    return ids;
  },

  /**
   * One tab's flush loop: alternately claimDue and lockMessage on listed ids; "delivers" each
   * held message (1 in 5 fails and is retried) and completes it with a fenced delete. Ends when
   * the outbox is empty and `producerDone()` says no more will come, or after `maxRounds`.
   */
  async flush(name: string, tab: string, maxRounds: number): Promise<{ rounds: number }> {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    const hold = async (lease: Lease, fenced: boolean) => {
      await window.report({ kind: 'acquire', id: lease.id, tab, token: lease.token });
      const delivered = Math.random() >= 0.2;
      if (!delivered) {
        // Retry at once, so the message goes straight back into the race.
        await s.setMessageRetry(lease.id, Date.now(), fenced ? { lease } : undefined);
        await window.report({ kind: 'release', id: lease.id, tab });
        if (fenced) await s.releaseLease(lease);
        else await s.unlockMessage(lease.id);
        return;
      }
      await window.report({ kind: 'deliver', id: lease.id, tab });
      await window.report({ kind: 'release', id: lease.id, tab });
      if (fenced) await s.deleteMessage(lease.id, { lease });
      else await s.deleteMessage(lease.id);
    };
    let rounds = 0;
    for (; rounds < maxRounds; rounds++) {
      if (rounds % 2 === 0) {
        const leases = await s.claimDue({ limit: 4, ttl: 120_000 });
        for (const lease of leases) await hold(lease, true);
      } else {
        const ids = await s.getAllMessages();
        // Everyone goes for the same few ids at once: the contention is the point.
        for (const id of ids.slice(0, 3)) {
          let locked = false;
          try {
            locked = await s.lockMessage(id, 120_000);
          } catch (error) {
            if (isMailspoolError(error, 'NOT_FOUND')) continue; // completed meanwhile
            throw error;
          }
          // lockMessage gives no lease: writes on this path are unfenced (the seed's way).
          if (locked) await hold({ id, token: -1, expiresAt: 0 }, false);
        }
      }
      const stats = await s.stats();
      if (stats.total === 0 && (await producerDone(name))) break;
    }
    await engine.close();
    return { rounds };
  },

  /** Stores `count` messages one by one while others flush (a user pressing Send). */
  async produce(name: string, count: number): Promise<string[]> {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    const ids: string[] = [];
    for (let n = 0; n < count; n++) {
      ids.push(await s.storeMessage({ meta: { late: n }, contents: `late ${n}` }));
    }
    localStorage.setItem(`produced:${name}`, 'yes');
    await engine.close();
    return ids;
  },

  /**
   * Stores messages of 64 KiB–1 MiB one after another, each meta carrying its contents' size and
   * SHA-256; reports `storing` right after starting the store number `crashAt` (the test kills the page
   * then) and `stored` after each acknowledged one. Never resolves if the page dies first.
   */
  async storeUntilKilled(name: string, tab: string, crashAt: number): Promise<void> {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    // Bounded, but far beyond what one kill takes to arrive.
    for (let n = 0; n < crashAt + 200; n++) {
      const contents = bytes(65_536 + Math.floor(Math.random() * 960_000), n);
      const meta = { size: contents.byteLength, sha256: await sha256(contents), tab };
      const storing = s.storeMessage({ meta, contents });
      // The transaction is under way: the test kills the page on this report.
      if (n === crashAt) void window.report({ kind: 'storing', tab, n });
      const id = await storing;
      await window.report({ kind: 'stored', id, tab, n });
    }
  },

  /** Opens the outbox and checks every message: whole (meta matches contents) or absent. */
  async verify(name: string) {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    const ids = await s.getAllMessages();
    const broken: string[] = [];
    for (const id of ids) {
      const meta = await s.getMessageMeta(id);
      try {
        const contents = await s.getMessageContents(id);
        if (meta.size !== contents.byteLength || meta.sha256 !== (await sha256(contents))) {
          broken.push(`${id}: contents do not match meta`);
        }
      } catch (error) {
        broken.push(`${id}: ${String(error)}`);
      }
    }
    const stats = await s.stats();
    await engine.close();
    return { ids, broken, stats };
  },

  /**
   * Makes this page one without `BroadcastChannel`, as Safari before 15.4: engines made after
   * this call fall back to `storage` events. Resolves to whether the global is gone.
   */
  async dropBroadcastChannel(): Promise<boolean> {
    delete (globalThis as { BroadcastChannel?: unknown }).BroadcastChannel;
    return typeof BroadcastChannel === 'undefined';
  },

  /** Subscribes and reports every change event heard in this tab. */
  async listen(name: string, tab: string): Promise<void> {
    const engine = new IndexedDbEngine({ name });
    engine.subscribe((event) => void window.report({ kind: 'change', event, tab }));
  },

  /** Stores `count` messages one at a time, each awaited (a burst of single writes). */
  async storeEach(name: string, count: number): Promise<string[]> {
    const engine = new IndexedDbEngine({ name, durability: 'relaxed' });
    const s = await engine.connect();
    const ids: string[] = [];
    for (let n = 0; n < count; n++) {
      ids.push(await s.storeMessage({ meta: { n }, contents: `burst ${n}` }));
    }
    await engine.close();
    return ids;
  },

  /** Stores one message and deletes it; resolves with its id. */
  async storeAndDelete(name: string): Promise<string> {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x' });
    await s.deleteMessage(id);
    await engine.close();
    return id;
  },

  /**
   * With a small quota set on the origin: a message larger than the quota must reject
   * QUOTA_EXCEEDED with the DOMException as cause and leave the outbox as it was.
   */
  async overQuota(name: string, size: number) {
    const engine = new IndexedDbEngine({ name });
    const s = await engine.connect();
    const kept = await s.storeMessage({ meta: { small: true }, contents: 'fits' });
    const before = { ids: await s.getAllMessages(), stats: await s.stats() };
    let code: string | undefined;
    let cause: string | undefined;
    try {
      await s.storeMessage({ meta: { big: true }, contents: randomBytes(size) });
    } catch (error) {
      code = isMailspoolError(error) ? error.code : String(error);
      cause =
        (error as Error).cause instanceof DOMException
          ? (error as { cause: DOMException }).cause.name
          : undefined;
    }
    let batchCode: string | undefined;
    try {
      await s.storeMessages([
        { meta: { n: 1 }, contents: 'a' },
        { meta: { n: 2 }, contents: randomBytes(size) },
      ]);
    } catch (error) {
      batchCode = isMailspoolError(error) ? error.code : String(error);
    }
    const after = { ids: await s.getAllMessages(), stats: await s.stats() };
    const keptContents = new TextDecoder().decode(await s.getMessageContents(kept));
    const estimate = await storageEstimate();
    await engine.close();
    return { code, cause, batchCode, before, after, keptContents, quota: estimate?.quota };
  },

  /** Opens a raw connection at `version` and keeps it, ignoring versionchange (old code). */
  async holdOldConnection(name: string, version: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.open(name, version);
      request.onupgradeneeded = () => {
        request.result.createObjectStore('messages', { keyPath: 'id' });
        request.result.createObjectStore('contents');
      };
      request.onsuccess = () => {
        (window as unknown as { held: IDBDatabase }).held = request.result;
        resolve();
      };
      request.onerror = () => reject(request.error);
    });
  },

  /** Tries to connect with a short blocked timeout; resolves with the error code or 'ok'. */
  async tryConnect(name: string, blockedTimeoutMs: number): Promise<string> {
    const engine = new IndexedDbEngine({ name, blockedTimeoutMs });
    try {
      const s = await engine.connect();
      await s.stats();
      return 'ok';
    } catch (error) {
      return isMailspoolError(error) ? error.code : String(error);
    } finally {
      await engine.close();
    }
  },

  /** Opens the engine and keeps it (a tab running current code). */
  async keepOpen(name: string): Promise<number> {
    const engine = new IndexedDbEngine({ name });
    (window as unknown as { kept: IndexedDbEngine }).kept = engine;
    const s = await engine.connect();
    return (await s.stats()).total;
  },

  /** Opens `name` at a newer version with raw IDB (a tab with newer code); resolves when open. */
  async upgradeRaw(name: string, version: number): Promise<string> {
    return new Promise((resolve) => {
      const request = indexedDB.open(name, version);
      request.onblocked = () => resolve('blocked');
      request.onsuccess = () => {
        request.result.close();
        resolve('opened');
      };
      request.onerror = () => resolve(`error ${request.error?.name}`);
    });
  },
};

async function producerDone(name: string): Promise<boolean> {
  return localStorage.getItem(`produced:${name}`) === 'yes';
}

// Awaiting a report means the test has it: `release` is reported before a lock is given up and
// `acquire` after one is won, so the test sees them in the order they happened across tabs. A
// tab's reports go one after another (as a binding's calls do), so even those not awaited, like
// change events, arrive in the order they were made.
let reported: Promise<unknown> = Promise.resolve();
window.report ??= (report: Report) => {
  const token = document.querySelector('meta[name="report-token"]')?.getAttribute('content') ?? '';
  const sent = reported.then(async () => {
    const response = await fetch('/report', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-report-token': token },
      body: JSON.stringify(report),
    });
    if (!response.ok) throw new Error(`report refused: ${response.status}`);
  });
  reported = sent.catch(() => {});
  return sent;
};
window.outbox = outbox;

// `?run=<scenario>&args=<JSON array>`: the page runs `outbox[scenario](...args)` by itself and
// reports the outcome. For browsers started with a URL and no driver (WebKitGTK's MiniBrowser on a
// disk profile, whose renderer a test kills: WebKitWebDriver ends its session when a page crashes).
const autorun = new URLSearchParams(location.search);
const scenario = autorun.get('run') as keyof typeof outbox | null;
if (scenario && typeof outbox[scenario] === 'function') {
  const args = JSON.parse(autorun.get('args') ?? '[]') as unknown[];
  void (async () => {
    try {
      const value = await (outbox[scenario] as (...a: unknown[]) => Promise<unknown>)(...args);
      await window.report({ kind: 'result', run: scenario, value });
    } catch (error) {
      await window.report({ kind: 'result', run: scenario, error: String(error) });
    }
  })();
}
