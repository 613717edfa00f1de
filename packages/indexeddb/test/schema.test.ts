/** The schema on fake-indexeddb: upgrade from version 1, index-only queries, change events. */
import 'fake-indexeddb/auto';
import type { ChangeEvent } from '@mailspool/core';
import { ManualClock } from '@mailspool/core';
import type { MessageRecord } from '@mailspool/core/engine';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DB_VERSION, IndexedDbEngine } from '../src/index.js';
import { committed, openRaw } from './helpers.js';

let counter = 0;
const opened: IndexedDbEngine[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const e of opened.splice(0)) await e.close();
});

function engine(factory: IDBFactory, name: string, clock = new ManualClock()) {
  const e = new IndexedDbEngine({ name, indexedDB: factory, clock });
  opened.push(e);
  return e;
}

describe('upgrade', () => {
  it('a database written by schema version 1 opens with every message, its state and tokens intact', async () => {
    const factory = new IDBFactory();
    const name = `v1-${counter++}`;
    const t = 1_700_000_000_000;
    // Version 1, written by hand: both stores, no indexes, rows without `due`.
    const v1Rows: Omit<MessageRecord, 'priority'>[] = [
      // complete, never scheduled: due since t - 50
      {
        id: 'old-due',
        createdAt: t - 50,
        meta: { n: 1 },
        size: 3,
        retryAt: null,
        lockedUntil: null,
        token: 0,
      },
      // complete, retry in the future: deferred
      {
        id: 'deferred',
        createdAt: t - 100,
        meta: { n: 2, rcpt: ['a@b.c'] },
        size: 3,
        retryAt: t + 60_000,
        lockedUntil: null,
        token: 4,
      },
      // complete, retry passed, lock held until later: active
      {
        id: 'leased',
        createdAt: t - 300,
        meta: { n: 3 },
        size: 3,
        retryAt: t - 10,
        lockedUntil: t + 30_000,
        token: 7,
      },
      // complete, retry passed, lock expired: due (at t - 200, so first in line)
      {
        id: 'lapsed',
        createdAt: t - 400,
        meta: { n: 4 },
        size: 3,
        retryAt: t - 200,
        lockedUntil: t - 1,
        token: 2,
      },
      // claimed only, nothing written
      {
        id: 'claimed',
        createdAt: t - 500,
        meta: null,
        size: null,
        retryAt: null,
        lockedUntil: null,
        token: 0,
      },
    ];
    const v1 = await openRaw(factory, name, 1, (db) => {
      db.createObjectStore('messages', { keyPath: 'id' });
      db.createObjectStore('contents');
    });
    const tx = v1.transaction(['messages', 'contents'], 'readwrite');
    for (const row of v1Rows) {
      tx.objectStore('messages').put(row);
      if (row.size !== null) {
        tx.objectStore('contents').put(new TextEncoder().encode(row.id.slice(0, 3)), row.id);
      }
    }
    await committed(tx);
    v1.close();

    const s = await engine(factory, name, new ManualClock(t)).connect();
    expect((await s.getAllMessages()).sort()).toEqual(v1Rows.map((r) => r.id).sort());
    for (const row of v1Rows) {
      expect(await s.getMessageMeta(row.id)).toEqual(row.meta ?? {});
      if (row.size !== null) {
        expect(new TextDecoder().decode(await s.getMessageContents(row.id))).toBe(
          row.id.slice(0, 3),
        );
      }
    }
    expect(await s.stats()).toEqual({ total: 5, active: 1, deferred: 1, due: 2 });
    expect(await s.getActiveMessages()).toEqual(['leased']);
    expect((await s.getDeferredMessages()).sort()).toEqual(['deferred', 'lapsed']);
    // The migrated due index serves claimDue, oldest due first; tokens continue from version 1.
    const leases = await s.claimDue({ limit: 10, ttl: 1000 });
    expect(leases.map((l) => [l.id, l.token])).toEqual([
      ['lapsed', 3],
      ['old-due', 1],
    ]);
    const lease = await s.acquireLease('deferred', 1000);
    expect(lease?.token).toBe(5);

    // The database is now at the current version with its indexes.
    const raw = await openRaw(factory, name, DB_VERSION);
    expect([...raw.transaction('messages').objectStore('messages').indexNames].sort()).toEqual([
      'by-due',
      'by-lock',
      'by-priority',
      'by-retry',
    ]);
    raw.close();
  });
  it('a database written by schema version 2 (no priorities) opens with its due mail claimable as normal', async () => {
    const factory = new IDBFactory();
    const name = `v2-${counter++}`;
    const t = 1_700_000_000_000;
    // Version 2 rows: `due` set on complete ones, no `priority`.
    const v2 = await openRaw(factory, name, 2, (db) => {
      const messages = db.createObjectStore('messages', { keyPath: 'id' });
      db.createObjectStore('contents');
      messages.createIndex('by-due', ['due', 'id']);
      messages.createIndex('by-lock', 'lockedUntil');
      messages.createIndex('by-retry', 'retryAt');
    });
    const tx = v2.transaction(['messages', 'contents'], 'readwrite');
    for (const id of ['a-old', 'b-newer']) {
      const createdAt = id === 'a-old' ? t - 20 : t - 10;
      tx.objectStore('messages').put({
        id,
        createdAt,
        meta: { id },
        size: 1,
        retryAt: null,
        lockedUntil: null,
        token: 0,
        due: createdAt,
      });
      tx.objectStore('contents').put(new Uint8Array([1]), id);
    }
    await committed(tx);
    v2.close();

    const s = await engine(factory, name, new ManualClock(t)).connect();
    const high = await s.storeMessage({ meta: { id: 'high' }, contents: 'x', priority: 'high' });
    const claimed = await s.claimDue({ limit: 10, ttl: 1000 });
    expect(claimed.map((l) => l.id)).toEqual([high, 'a-old', 'b-newer']);
    expect((await s.inspect('a-old')).priority).toBe('normal');
  });
});

describe('change events', () => {
  it('reach subscribers of another engine on the same database (another tab) via BroadcastChannel', async () => {
    const factory = new IDBFactory();
    const name = `chg-${counter++}`;
    const writer = engine(factory, name);
    const reader = engine(factory, name);
    const heard: ChangeEvent[] = [];
    const unsubscribe = reader.subscribe((event) => heard.push(event));
    const s = await writer.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x' });
    const [lease] = await s.claimDue({ limit: 1, ttl: 1000 });
    await s.deleteMessage(id, { lease: lease! });
    await vi.waitFor(
      () => expect(heard.map((e) => e.type)).toEqual(['stored', 'updated', 'deleted']),
      {
        timeout: 5000,
        interval: 5,
      },
    );
    expect(heard.every((e) => e.ids.length === 1 && e.ids[0] === id)).toBe(true);
    unsubscribe();
  });

  it('a throwing listener does not affect the write or other listeners', async () => {
    const e = engine(new IDBFactory(), `chg-${counter++}`);
    const reported: unknown[] = [];
    vi.spyOn(console, 'error').mockImplementation((...args) => reported.push(args));
    const saved = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = (error: unknown) =>
      reported.push(error);
    try {
      e.subscribe(() => {
        throw new Error('listener bug');
      });
      const good: ChangeEvent[] = [];
      e.subscribe((event) => good.push(event));
      const s = await e.connect();
      const id = await s.storeMessage({ meta: {}, contents: 'x' });
      expect(await s.getAllMessages()).toEqual([id]);
      expect(good).toEqual([{ type: 'stored', ids: [id] }]);
      expect(reported).toHaveLength(1);
    } finally {
      (globalThis as { reportError?: unknown }).reportError = saved;
    }
  });

  it('messages that are not change events are ignored', async () => {
    const name = `chg-${counter++}`;
    const e = engine(new IDBFactory(), name);
    const heard: ChangeEvent[] = [];
    e.subscribe((event) => heard.push(event));
    const { channelName } = await import('../src/index.js');
    const rogue = new BroadcastChannel(channelName(name));
    rogue.postMessage({ type: 'exploded', ids: ['x'] });
    rogue.postMessage({ type: 'stored', ids: 'x' });
    rogue.postMessage({ type: 'deleted', ids: ['real'] });
    await vi.waitFor(() => expect(heard).toEqual([{ type: 'deleted', ids: ['real'] }]), {
      timeout: 5000,
      interval: 5,
    });
    rogue.close();
  });
});
