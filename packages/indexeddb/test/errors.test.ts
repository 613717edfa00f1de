/** Error mapping and connection handling on fake-indexeddb: quota, aborts, closes, blocked opens. */
import 'fake-indexeddb/auto';
import { expectCode, snapshot } from '@mailspool/conformance';
import { isMailspoolError, ManualClock, type StorageSession } from '@mailspool/core';
import { forceCloseDatabase, IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_VERSION, IndexedDbEngine } from '../src/index.js';
import { injectFailure, openRaw, recordingFactory } from './helpers.js';

let counter = 0;
const freshName = () => `errors-${counter++}`;
const opened: IndexedDbEngine[] = [];

function engine(options: ConstructorParameters<typeof IndexedDbEngine>[0] = {}) {
  const e = new IndexedDbEngine({
    name: freshName(),
    indexedDB: new IDBFactory(),
    clock: new ManualClock(),
    ...options,
  });
  opened.push(e);
  return e;
}

afterEach(async () => {
  for (const e of opened.splice(0)) await e.close();
});

/** Fills a session with a few messages in different states. */
async function seed(session: StorageSession) {
  const [a] = await session.storeMessages([
    { meta: { n: 1 }, contents: 'one' },
    { meta: { n: 2 }, contents: 'two', retryAt: 1_800_000_000_000 },
  ]);
  await session.acquireLease(a!, 60_000);
  await session.claimMessageId();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('quota', () => {
  for (const when of ['request', 'commit'] as const) {
    it(`a QuotaExceededError at ${when} rejects QUOTA_EXCEEDED with the DOMException as cause and changes nothing`, async () => {
      const s = await engine().connect();
      await seed(s);
      const before = await snapshot(s);
      const ids = await s.getAllMessages();

      const calls: [string, () => Promise<unknown>, string][] = [
        ['storeMessage', () => s.storeMessage({ meta: { big: true }, contents: 'x' }), 'contents'],
        [
          'storeMessages',
          () =>
            s.storeMessages([
              { meta: {}, contents: 'a' },
              { meta: {}, contents: 'b' },
            ]),
          'messages',
        ],
        ['setMessageContents', () => s.setMessageContents(ids[0]!, 'replaced'), 'contents'],
        ['setMessageMeta', () => s.setMessageMeta(ids[0]!, { replaced: true }), 'messages'],
        ['claimMessageId', () => s.claimMessageId(), 'messages'],
      ];
      for (const [what, call, store] of calls) {
        const failure = injectFailure(store, when);
        try {
          const error = await rejection(call());
          expect(failure.fired, what).toBe(true);
          expect(isMailspoolError(error, 'QUOTA_EXCEEDED'), `${what}: ${String(error)}`).toBe(true);
          expect((error as Error).cause, what).toBeInstanceOf(DOMException);
          expect(((error as Error).cause as DOMException).name, what).toBe('QuotaExceededError');
        } finally {
          failure.restore();
        }
        expect(await snapshot(s), what).toEqual(before);
      }
    });
  }
});

describe('connection', () => {
  it('a connection the browser closed is reopened on the next call', async () => {
    const { factory, connections } = recordingFactory();
    const s = await engine({ indexedDB: factory }).connect();
    const id = await s.storeMessage({ meta: { n: 1 }, contents: 'x' });
    expect(connections).toHaveLength(1);
    forceCloseDatabase(connections[0]! as never);
    // The close event is a task away; a call right now may meet the closing connection and
    // must then reopen by itself (or fail UNAVAILABLE, never hang).
    const meta = await s.getMessageMeta(id);
    expect(meta).toEqual({ n: 1 });
    expect(connections.length).toBeGreaterThanOrEqual(2);
    expect(await s.getAllMessages()).toEqual([id]);
  });

  const underneath: [string, 'request' | 'commit' | 'hang', string][] = [
    ['a transaction aborted by the browser (forced close)', 'commit', 'AbortError'],
    ['a backing-store failure', 'request', 'UnknownError'],
    ['a request left pending by an aborted transaction', 'hang', 'AbortError'],
  ];
  for (const [what, when, errorName] of underneath) {
    it(`${what} settles with UNAVAILABLE, the ${errorName} as cause, and writes nothing`, async () => {
      const s = await engine().connect();
      await seed(s);
      const before = await snapshot(s);
      const failure = injectFailure('contents', when, errorName);
      try {
        const error = await rejection(
          s.storeMessages(
            Array.from({ length: 5 }, (_, n) => ({ meta: { n }, contents: `m${n}` })),
          ),
        );
        expect(failure.fired).toBe(true);
        expect(isMailspoolError(error, 'UNAVAILABLE'), String(error)).toBe(true);
        expect((error as Error).cause).toBeInstanceOf(DOMException);
      } finally {
        failure.restore();
      }
      expect(await snapshot(s)).toEqual(before);
    });
  }

  it('versionchange closes our connection so another tab can upgrade; a newer version makes calls UNAVAILABLE', async () => {
    const factory = new IDBFactory();
    const name = freshName();
    const e = engine({ indexedDB: factory, name });
    const s = await e.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x' });
    // "Another tab" with newer code upgrades; if we did not close, this open would be blocked.
    const newer = await openRaw(factory, name, DB_VERSION + 1);
    newer.close();
    await expectCode(s.getAllMessages(), 'UNAVAILABLE', 'a call after a newer version took over');
    const error = await rejection(s.getMessageMeta(id));
    expect(((error as Error).cause as DOMException).name).toBe('VersionError');
  });

  it('an open blocked by an old connection rejects UNAVAILABLE after blockedTimeoutMs, then works once it closes', async () => {
    const factory = new IDBFactory();
    const name = freshName();
    const old = await openRaw(factory, name, 1, (db) => {
      db.createObjectStore('messages', { keyPath: 'id' });
      db.createObjectStore('contents');
    });
    // Like a tab running old code: it ignores versionchange and keeps its connection.
    old.onversionchange = null;
    const e = engine({ indexedDB: factory, name, blockedTimeoutMs: 0 });
    await expectCode(e.connect(), 'UNAVAILABLE', 'connect while blocked');
    old.close();
    const s = await e.connect();
    expect(await s.stats()).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
  });

  it('without IndexedDB, connect rejects UNAVAILABLE', async () => {
    const e = new IndexedDbEngine({ name: freshName(), indexedDB: undefined });
    const saved = globalThis.indexedDB;
    try {
      (globalThis as { indexedDB?: IDBFactory }).indexedDB = undefined;
      const missing = new IndexedDbEngine({ name: freshName() });
      await expectCode(missing.connect(), 'UNAVAILABLE');
    } finally {
      globalThis.indexedDB = saved;
    }
    // With the global restored, an engine without a factory option uses it.
    const s = await e.connect();
    expect(await s.getAllMessages()).toEqual([]);
    await e.close();
  });

  it('after engine.close() its sessions reject UNAVAILABLE', async () => {
    const e = engine();
    const s = await e.connect();
    await e.close();
    await e.close();
    await expectCode(s.getAllMessages(), 'UNAVAILABLE');
    await expectCode(e.connect(), 'UNAVAILABLE');
  });

  it('bad options are TypeErrors', () => {
    expect(() => new IndexedDbEngine({ name: '' })).toThrow(TypeError);
    expect(() => new IndexedDbEngine({ blockedTimeoutMs: -1 })).toThrow(TypeError);
    expect(() => new IndexedDbEngine({ maxMessageBytes: 1.5 })).toThrow(TypeError);
    expect(
      () => new IndexedDbEngine({ durability: 'sometimes' as IDBTransactionDurability }),
    ).toThrow(TypeError);
  });
});

describe('corrupt data', () => {
  it('a row that is not a message record reads as CORRUPT and is left alone', async () => {
    const factory = new IDBFactory();
    const name = freshName();
    const e = engine({ indexedDB: factory, name });
    const s = await e.connect();
    const good = await s.storeMessage({ meta: { ok: true }, contents: 'x' });
    await e.close();
    const raw = await openRaw(factory, name, DB_VERSION);
    await new Promise<void>((resolve, reject) => {
      const tx = raw.transaction('messages', 'readwrite');
      tx.objectStore('messages').put({ id: 'bad', token: 'seven' });
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
    raw.close();
    const s2 = await engine({ indexedDB: factory, name }).connect();
    await expectCode(s2.getMessageMeta('bad'), 'CORRUPT');
    await expectCode(s2.lockMessage('bad', 1000), 'CORRUPT');
    expect(await s2.getMessageMeta(good)).toEqual({ ok: true });
    expect((await s2.getAllMessages()).sort()).toEqual(['bad', good].sort());
  });
});
