/**
 * The IndexedDB workloads, written once and run both in Chromium (bundled into page.ts) and in
 * Node on fake-indexeddb (node.ts). Each row of each table is one function `(n, tag) => Sample`
 * that sets up its own fresh database (untimed), times only the work, checks the result (untimed)
 * and deletes the database. Workbox's rows live in workbox.ts: its Queue runs only in a service
 * worker.
 *
 * Every variant stores the same messages (messages.ts) in the same two-store layout as the
 * engine (a small row per message with sparse `due`/`lock`/`retry` indexes, and the bytes in a
 * second store), so the raw rows measure what IndexedDB itself can do with that layout.
 */
import { type Lease, newMessageId, type QueueStats } from '@mailspool/core';
import { IndexedDbEngine } from '@mailspool/indexeddb';
import Dexie, { type Table } from 'dexie';
import { deleteDB, type IDBPDatabase, openDB } from 'idb';
import { type Sample, verify } from '../lib/harness.js';
import {
  CONTENT_BYTES,
  makeBodies,
  makeMeta,
  queueShape,
  SEED_BATCH,
  Tally,
  verifyStats,
} from './messages.js';

export type Durability = 'strict' | 'relaxed';
export type Workload = (n: number, tag: number) => Promise<Sample>;

/** Messages per transaction of the batched rows and per claimDue of the drain. */
export const BATCH = 50;
/** Lease duration of the drain's claims. */
const TTL = 60_000;

const now = () => Date.now();
const elapsed = (start: number) => performance.now() - start;

/** The row stored per message, shaped like the engine's (schema.ts in @mailspool/indexeddb). */
interface Row {
  id: string;
  createdAt: number;
  meta: ReturnType<typeof makeMeta>;
  size: number;
  retryAt: number | null;
  lockedUntil: number | null;
  token: number;
  due?: number;
}

function makeRow(id: string, i: number, at: number, retryAt: number | null = null): Row {
  return {
    id,
    createdAt: at,
    meta: makeMeta(i),
    size: CONTENT_BYTES,
    retryAt,
    lockedUntil: null,
    token: 0,
    due: retryAt ?? at,
  };
}

// ---------------------------------------------------------------------------------------------
// raw idb: the physical limit

async function openRaw(name: string): Promise<IDBPDatabase> {
  return openDB(name, 1, {
    upgrade(db) {
      const messages = db.createObjectStore('messages', { keyPath: 'id' });
      messages.createIndex('by-due', ['due', 'id']);
      messages.createIndex('by-lock', 'lockedUntil');
      messages.createIndex('by-retry', 'retryAt');
      db.createObjectStore('contents');
    },
  });
}

/** Writes `bodies` into a raw (or engine) database, `per` messages per transaction. */
async function rawWrite(
  db: IDBPDatabase,
  bodies: readonly Uint8Array[],
  per: number,
  durability: IDBTransactionDurability,
  at = now(),
  retryAt: (i: number) => number | null = () => null,
): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < bodies.length; from += per) {
    const tx = db.transaction(['messages', 'contents'], 'readwrite', { durability });
    const messages = tx.objectStore('messages');
    const contents = tx.objectStore('contents');
    for (let i = from; i < Math.min(bodies.length, from + per); i++) {
      const id = newMessageId();
      ids.push(id);
      void messages.add(makeRow(id, i, at, retryAt(i)));
      void contents.add(bodies[i]!, id);
    }
    await tx.done;
  }
  return ids;
}

/** Checks a database in the engine's layout holds exactly the run's `n` messages. */
async function verifyStored(name: string, n: number, tag: number): Promise<string> {
  const db = await openDB(name);
  try {
    const rows = await db.count('messages');
    verify(rows === n, `${rows} rows, expected ${n}`);
    const tally = new Tally(tag);
    let cursor = await db.transaction('contents').store.openCursor();
    while (cursor) {
      tally.add(cursor.value as Uint8Array);
      cursor = await cursor.continue();
    }
    return tally.check(n);
  } finally {
    db.close();
  }
}

/** Checks a database in the engine's layout is empty (after a drain). */
async function verifyEmpty(name: string): Promise<void> {
  const db = await openDB(name);
  try {
    const [rows, contents] = await Promise.all([db.count('messages'), db.count('contents')]);
    verify(rows === 0 && contents === 0, `${rows} rows and ${contents} contents left after drain`);
  } finally {
    db.close();
  }
}

const dbName = (what: string, tag: number) => `bench-${what}-${tag}`;

function rawEnqueue(per: number, durability: Durability): Workload {
  return async (n, tag) => {
    const name = dbName(`raw-enqueue-${per}-${durability}`, tag);
    const bodies = makeBodies(n, tag);
    const db = await openRaw(name);
    const start = performance.now();
    await rawWrite(db, bodies, per, durability);
    const ms = elapsed(start);
    db.close();
    const check = await verifyStored(name, n, tag);
    await deleteDB(name);
    return { ops: n, ms, check };
  };
}

type ClaimMode = 'get-all' | 'cursor';

/**
 * Takes up to `limit` due, unlocked rows oldest due first and locks them (the engine's claimDue,
 * minus validation), in one readwrite transaction. `get-all` reads candidate rows with
 * `index.getAll(range, wanted)` (one round trip per batch, repeated only to step over locked
 * rows); `cursor` walks the index one `continue()` and one `update()` at a time.
 */
async function rawClaim(db: IDBPDatabase, limit: number, durability: Durability, mode: ClaimMode) {
  const at = now();
  const tx = db.transaction('messages', 'readwrite', { durability });
  const leases: Lease[] = [];
  const lock = (row: Row) => {
    const token = row.token + 1;
    leases.push({ id: row.id, token, expiresAt: at + TTL });
    return { ...row, token, lockedUntil: at + TTL };
  };
  const free = (row: Row) => row.lockedUntil === null || row.lockedUntil <= at;
  if (mode === 'cursor') {
    let cursor = await tx.store.index('by-due').openCursor(IDBKeyRange.upperBound([at, []]));
    while (cursor && leases.length < limit) {
      const row = cursor.value as Row;
      if (free(row)) await cursor.update(lock(row));
      cursor = await cursor.continue();
    }
  } else {
    let range = IDBKeyRange.upperBound([at, []]);
    for (;;) {
      const wanted = limit - leases.length;
      const rows = (await tx.store.index('by-due').getAll(range, wanted)) as Row[];
      for (const row of rows) if (free(row)) void tx.store.put(lock(row));
      const last = rows[rows.length - 1];
      if (rows.length < wanted || leases.length >= limit || !last) break;
      range = IDBKeyRange.bound([last.due, last.id], [at, []], true);
    }
  }
  await tx.done;
  return leases;
}

/** Deletes each leased message whose token is still current (the engine's deleteMessages). */
async function rawFencedDelete(db: IDBPDatabase, leases: Lease[], durability: Durability) {
  const tx = db.transaction(['messages', 'contents'], 'readwrite', { durability });
  const messages = tx.objectStore('messages');
  const contents = tx.objectStore('contents');
  const rows = (await Promise.all(leases.map((l) => messages.get(l.id)))) as (Row | undefined)[];
  let deleted = 0;
  leases.forEach((lease, k) => {
    if (rows[k]?.token === lease.token) {
      deleted++;
      void messages.delete(lease.id);
      void contents.delete(lease.id);
    }
  });
  await tx.done;
  return deleted;
}

type ReadMode = 'one-per-tx' | 'batch-read';

/**
 * The drain as the engine does it: claim (1 tx), read each message's contents (`read`: one tx per
 * message like getMessageContents, or one tx for the batch like a `getMessages(ids)` would),
 * fenced delete (1 tx).
 */
function rawDrain(read: ReadMode, durability: Durability, claim: ClaimMode = 'get-all'): Workload {
  return async (n, tag) => {
    const name = dbName(`raw-drain-${read}-${claim}-${durability}`, tag);
    const db = await openRaw(name);
    await rawWrite(db, makeBodies(n, tag), SEED_BATCH, 'relaxed', now() - 1000);
    const tally = new Tally(tag);
    let deleted = 0;
    let transactions = 0;
    const start = performance.now();
    for (;;) {
      const leases = await rawClaim(db, BATCH, durability, claim);
      transactions++;
      if (leases.length === 0) break;
      if (read === 'one-per-tx') {
        for (const lease of leases) {
          tally.add((await db.get('contents', lease.id)) as Uint8Array);
          transactions++;
        }
      } else {
        const tx = db.transaction('contents');
        const bodies = await Promise.all(leases.map((l) => tx.store.get(l.id)));
        for (const body of bodies) tally.add(body as Uint8Array);
        transactions++;
      }
      deleted += await rawFencedDelete(db, leases, durability);
      transactions++;
    }
    const ms = elapsed(start);
    db.close();
    verify(deleted === n, `${deleted} deleted, expected ${n}`);
    const check = tally.check(n);
    await verifyEmpty(name);
    await deleteDB(name);
    return { ops: n, ms, check, extra: { txPerMessage: transactions / n } };
  };
}

/** The drain in one readwrite transaction per 50 (take by `due`, read, delete): no leases. */
function rawDrainOneTx(durability: Durability): Workload {
  return async (n, tag) => {
    const name = dbName(`raw-drain-onetx-${durability}`, tag);
    const db = await openRaw(name);
    await rawWrite(db, makeBodies(n, tag), SEED_BATCH, 'relaxed', now() - 1000);
    const tally = new Tally(tag);
    let deleted = 0;
    const start = performance.now();
    for (;;) {
      const tx = db.transaction(['messages', 'contents'], 'readwrite', { durability });
      const messages = tx.objectStore('messages');
      const contents = tx.objectStore('contents');
      const ids = await messages
        .index('by-due')
        .getAllKeys(IDBKeyRange.upperBound([now(), []]), BATCH);
      const bodies = await Promise.all(ids.map((id) => contents.get(id)));
      for (const id of ids) {
        void messages.delete(id);
        void contents.delete(id);
      }
      await tx.done;
      for (const body of bodies) tally.add(body as Uint8Array);
      deleted += ids.length;
      if (ids.length === 0) break;
    }
    const ms = elapsed(start);
    db.close();
    verify(deleted === n, `${deleted} deleted, expected ${n}`);
    const check = tally.check(n);
    await verifyEmpty(name);
    await deleteDB(name);
    return { ops: n, ms, check };
  };
}

// ---------------------------------------------------------------------------------------------
// the engine

function engineEnqueue(per: number, durability: Durability): Workload {
  return async (n, tag) => {
    const name = dbName(`engine-enqueue-${per}-${durability}`, tag);
    const bodies = makeBodies(n, tag);
    const engine = new IndexedDbEngine({ name, durability });
    const session = await engine.connect();
    const start = performance.now();
    if (per === 1) {
      for (let i = 0; i < n; i++) {
        await session.storeMessage({ meta: makeMeta(i), contents: bodies[i]! });
      }
    } else {
      for (let from = 0; from < n; from += per) {
        const batch = [];
        for (let i = from; i < Math.min(n, from + per); i++) {
          batch.push({ meta: makeMeta(i), contents: bodies[i]! });
        }
        await session.storeMessages(batch);
      }
    }
    const ms = elapsed(start);
    const stats = await session.stats();
    verify(stats.total === n && stats.due === n, `stats ${JSON.stringify(stats)}, expected ${n}`);
    await session.close();
    await engine.close();
    const check = await verifyStored(name, n, tag);
    await deleteDB(name);
    return { ops: n, ms, check };
  };
}

async function seedEngine(
  engine: IndexedDbEngine,
  bodies: readonly Uint8Array[],
  retryAt: (i: number) => number | undefined = () => undefined,
) {
  const session = await engine.connect();
  for (let from = 0; from < bodies.length; from += SEED_BATCH) {
    const batch = [];
    for (let i = from; i < Math.min(bodies.length, from + SEED_BATCH); i++) {
      const at = retryAt(i);
      batch.push({
        meta: makeMeta(i),
        contents: bodies[i]!,
        ...(at === undefined ? {} : { retryAt: at }),
      });
    }
    await session.storeMessages(batch);
  }
  await session.close();
}

/**
 * claimDueMessages(50) (claim, meta and contents in one transaction) → deleteMessages(leases),
 * until empty: the drain as a relayer writes it now.
 */
function engineClaimMessagesDrain(durability: Durability): Workload {
  return async (n, tag) => {
    const name = dbName(`engine-drain-claim-messages-${durability}`, tag);
    const seeder = new IndexedDbEngine({ name, durability: 'relaxed' });
    await seedEngine(seeder, makeBodies(n, tag));
    await seeder.close();
    const engine = new IndexedDbEngine({ name, durability });
    const session = await engine.connect();
    const tally = new Tally(tag);
    let deleted = 0;
    const start = performance.now();
    for (;;) {
      const claimed = await session.claimDueMessages({ limit: BATCH, ttl: TTL });
      if (claimed.length === 0) break;
      for (const message of claimed) tally.add(message.contents);
      const result = await session.deleteMessages(claimed);
      verify(result.stale.length === 0, `${result.stale.length} stale leases`);
      deleted += result.deleted.length;
    }
    const ms = elapsed(start);
    const stats = await session.stats();
    await session.close();
    await engine.close();
    verify(deleted === n, `${deleted} deleted, expected ${n}`);
    verify(stats.total === 0, `stats.total ${stats.total} after drain`);
    const check = tally.check(n);
    await verifyEmpty(name);
    await deleteDB(name);
    return { ops: n, ms, check };
  };
}

/**
 * claimDue(50) → getMessageContents for each → deleteMessages(leases), until empty. The reads are
 * awaited one by one (`sequential`, as a delivery loop does) or issued together (`concurrent`).
 */
function engineDrain(
  durability: Durability,
  reads: 'sequential' | 'concurrent' = 'sequential',
): Workload {
  return async (n, tag) => {
    const name = dbName(`engine-drain-${reads}-${durability}`, tag);
    // Seeded untimed through a relaxed engine on the same database: durability is not measured
    // there, and a 10,000-message seed stays a few seconds.
    const seeder = new IndexedDbEngine({ name, durability: 'relaxed' });
    await seedEngine(seeder, makeBodies(n, tag));
    await seeder.close();
    const engine = new IndexedDbEngine({ name, durability });
    const session = await engine.connect();
    const tally = new Tally(tag);
    let deleted = 0;
    const start = performance.now();
    for (;;) {
      const leases = await session.claimDue({ limit: BATCH, ttl: TTL });
      if (leases.length === 0) break;
      if (reads === 'sequential') {
        for (const lease of leases) tally.add(await session.getMessageContents(lease.id));
      } else {
        const bodies = await Promise.all(leases.map((l) => session.getMessageContents(l.id)));
        for (const body of bodies) tally.add(body);
      }
      const result = await session.deleteMessages(leases);
      verify(result.stale.length === 0, `${result.stale.length} stale leases`);
      deleted += result.deleted.length;
    }
    const ms = elapsed(start);
    const stats = await session.stats();
    await session.close();
    await engine.close();
    verify(deleted === n, `${deleted} deleted, expected ${n}`);
    verify(stats.total === 0, `stats.total ${stats.total} after drain`);
    const check = tally.check(n);
    await verifyEmpty(name);
    await deleteDB(name);
    return { ops: n, ms, check };
  };
}

// ---------------------------------------------------------------------------------------------
// Dexie 4: what a developer would write with it (its own API: bulk calls where it has them)

class DexieOutbox extends Dexie {
  messages!: Table<Row, string>;
  contents!: Table<Uint8Array, string>;
  constructor(name: string) {
    super(name);
    // The same layout: `due`, `lockedUntil` and `retryAt` indexes; contents out-of-line.
    this.version(1).stores({ messages: 'id, due, lockedUntil, retryAt', contents: '' });
  }
}

async function dexieWrite(db: DexieOutbox, bodies: readonly Uint8Array[], per: number, at = now()) {
  for (let from = 0; from < bodies.length; from += per) {
    const rows: Row[] = [];
    const ids: string[] = [];
    for (let i = from; i < Math.min(bodies.length, from + per); i++) {
      const id = newMessageId();
      ids.push(id);
      rows.push(makeRow(id, i, at));
    }
    await db.transaction('rw', db.messages, db.contents, async () => {
      if (per === 1) {
        await Promise.all([db.messages.add(rows[0]!), db.contents.add(bodies[from]!, ids[0]!)]);
      } else {
        await Promise.all([
          db.messages.bulkAdd(rows),
          db.contents.bulkAdd(bodies.slice(from, from + per), ids),
        ]);
      }
    });
  }
}

function dexieEnqueue(per: number): Workload {
  return async (n, tag) => {
    const name = dbName(`dexie-enqueue-${per}`, tag);
    const bodies = makeBodies(n, tag);
    const db = new DexieOutbox(name);
    await db.open();
    const start = performance.now();
    await dexieWrite(db, bodies, per);
    const ms = elapsed(start);
    db.close();
    const check = await verifyStored(name, n, tag);
    await Dexie.delete(name);
    return { ops: n, ms, check };
  };
}

/** Claim 50 (rw tx), bulkGet their contents (1 tx), fenced bulkDelete (rw tx), until empty. */
const dexieDrain: Workload = async (n, tag) => {
  const name = dbName('dexie-drain', tag);
  const db = new DexieOutbox(name);
  await db.open();
  await dexieWrite(db, makeBodies(n, tag), SEED_BATCH, now() - 1000);
  const tally = new Tally(tag);
  let deleted = 0;
  const start = performance.now();
  for (;;) {
    const at = now();
    const leases = await db.transaction('rw', db.messages, async () => {
      const rows = await db.messages
        .where('due')
        .belowOrEqual(at)
        .and((row) => row.lockedUntil === null || row.lockedUntil <= at)
        .limit(BATCH)
        .toArray();
      const locked = rows.map((row) => ({ ...row, token: row.token + 1, lockedUntil: at + TTL }));
      await db.messages.bulkPut(locked);
      return locked.map((row) => ({ id: row.id, token: row.token, expiresAt: at + TTL }));
    });
    if (leases.length === 0) break;
    const ids = leases.map((lease) => lease.id);
    for (const body of await db.contents.bulkGet(ids)) tally.add(body!);
    deleted += await db.transaction('rw', db.messages, db.contents, async () => {
      const rows = await db.messages.bulkGet(ids);
      const current = ids.filter((_id, k) => rows[k]?.token === leases[k]!.token);
      await Promise.all([db.messages.bulkDelete(current), db.contents.bulkDelete(current)]);
      return current.length;
    });
  }
  const ms = elapsed(start);
  db.close();
  verify(deleted === n, `${deleted} deleted, expected ${n}`);
  const check = tally.check(n);
  await verifyEmpty(name);
  await Dexie.delete(name);
  return { ops: n, ms, check };
};

// ---------------------------------------------------------------------------------------------
// stats over a prepared queue: a tenth locked, a fifth deferred, the rest due

export interface StatsFixture {
  readonly expected: QueueStats;
  readonly engine: IndexedDbEngine;
  readonly engineName: string;
  readonly dexie: DexieOutbox;
  dispose(): Promise<void>;
}

const HOUR = 3_600_000;

/** Seeds the engine's database and Dexie's with the same `n` messages in the same states. */
export async function prepareStats(n: number, tag: number): Promise<StatsFixture> {
  const expected = queueShape(n);
  const later = now() + HOUR;
  // Deferred ones are the last fifth: claimDue (oldest due first) locks only due ones.
  const deferredFrom = n - expected.deferred;
  const retryAt = (i: number) => (i >= deferredFrom ? later : undefined);
  const bodies = makeBodies(n, tag);
  const engineName = dbName('stats-engine', tag);
  const engine = new IndexedDbEngine({ name: engineName, durability: 'relaxed' });
  await seedEngine(engine, bodies, retryAt);
  const session = await engine.connect();
  const locked = await session.claimDue({ limit: expected.active, ttl: HOUR });
  verify(locked.length === expected.active, `locked ${locked.length}`);
  const seen = await session.stats();
  verifyStats(seen, expected, 'seeded');
  await session.close();

  const dexie = new DexieOutbox(dbName('stats-dexie', tag));
  await dexie.open();
  const at = now() - 1000;
  for (let from = 0; from < n; from += 500) {
    const rows: Row[] = [];
    const ids: string[] = [];
    for (let i = from; i < Math.min(n, from + 500); i++) {
      const row = makeRow(newMessageId(), i, at, i >= deferredFrom ? later : null);
      if (i < expected.active) Object.assign(row, { lockedUntil: at + HOUR, token: 1 });
      rows.push(row);
      ids.push(row.id);
    }
    await dexie.transaction('rw', dexie.messages, dexie.contents, () =>
      Promise.all([
        dexie.messages.bulkAdd(rows),
        dexie.contents.bulkAdd(bodies.slice(from, from + 500), ids),
      ]),
    );
  }
  return {
    expected,
    engine,
    engineName,
    dexie,
    async dispose() {
      await engine.close();
      dexie.close();
      await deleteDB(engineName);
      await Dexie.delete(dexie.name);
    },
  };
}

/** `calls` stats() calls, each checked against the fixture. */
export function statsRows(fixture: () => StatsFixture): Record<string, Workload> {
  const run = async (calls: number, stats: () => Promise<QueueStats>): Promise<Sample> => {
    const { expected } = fixture();
    const results: QueueStats[] = [];
    const start = performance.now();
    for (let k = 0; k < calls; k++) results.push(await stats());
    const ms = elapsed(start);
    for (const result of results) {
      verifyStats(result, expected);
    }
    return { ops: calls, ms, check: `${calls} × ${JSON.stringify(expected)}` };
  };
  return {
    // The engine's four reads (count, held rows, two index counts) in one transaction, unvalidated.
    'raw-stats': async (calls) => {
      // Opened per run and closed after it: an open connection would block deleting the database.
      const db = await openDB(fixture().engineName);
      try {
        return await run(calls, async () => {
          const at = now();
          const tx = db.transaction('messages');
          const [total, held, later, dueOrHeld] = await Promise.all([
            tx.store.count(),
            tx.store.index('by-lock').getAll(IDBKeyRange.lowerBound(at, true)),
            tx.store.index('by-retry').count(IDBKeyRange.lowerBound(at, true)),
            tx.store.index('by-due').count(IDBKeyRange.upperBound([at, []])),
          ]);
          return adjust(total, held as Row[], later, dueOrHeld, at);
        });
      } finally {
        db.close();
      }
    },
    'engine-stats': async (calls) => {
      const session = await fixture().engine.connect();
      try {
        return await run(calls, () => session.stats());
      } finally {
        await session.close();
      }
    },
    'dexie-stats': async (calls) => {
      const db = fixture().dexie;
      return run(calls, () =>
        db.transaction('r', db.messages, async () => {
          const at = now();
          const [total, held, later, dueOrHeld] = await Promise.all([
            db.messages.count(),
            db.messages.where('lockedUntil').above(at).toArray(),
            db.messages.where('retryAt').above(at).count(),
            db.messages.where('due').belowOrEqual(at).count(),
          ]);
          return adjust(total, held, later, dueOrHeld, at);
        }),
      );
    },
  };
}

/** Held rows are counted as active only: take them out of the deferred and due counts. */
function adjust(
  total: number,
  held: Row[],
  later: number,
  dueOrHeld: number,
  at: number,
): QueueStats {
  let heldLater = 0;
  let heldDue = 0;
  for (const row of held) {
    if (row.retryAt !== null && row.retryAt > at) heldLater++;
    if (row.due !== undefined && row.due <= at) heldDue++;
  }
  return { total, active: held.length, deferred: later - heldLater, due: dueOrHeld - heldDue };
}

// ---------------------------------------------------------------------------------------------

/** The rows of every table that run in a window (or in Node). */
export const idbRows: Record<string, Record<string, Workload>> = {
  'enqueue-one': {
    'raw-strict': rawEnqueue(1, 'strict'),
    'engine-strict': engineEnqueue(1, 'strict'),
    'raw-relaxed': rawEnqueue(1, 'relaxed'),
    'engine-relaxed': engineEnqueue(1, 'relaxed'),
    dexie: dexieEnqueue(1),
  },
  'enqueue-batch': {
    'raw-strict': rawEnqueue(BATCH, 'strict'),
    'engine-strict': engineEnqueue(BATCH, 'strict'),
    'raw-relaxed': rawEnqueue(BATCH, 'relaxed'),
    'engine-relaxed': engineEnqueue(BATCH, 'relaxed'),
    dexie: dexieEnqueue(BATCH),
  },
  drain: {
    'raw-strict': rawDrain('one-per-tx', 'strict'),
    'raw-cursor-strict': rawDrain('one-per-tx', 'strict', 'cursor'),
    'engine-strict': engineDrain('strict'),
    'engine-concurrent-strict': engineDrain('strict', 'concurrent'),
    'engine-concurrent-relaxed': engineDrain('relaxed', 'concurrent'),
    'engine-claim-messages-strict': engineClaimMessagesDrain('strict'),
    'engine-claim-messages-relaxed': engineClaimMessagesDrain('relaxed'),
    'raw-batch-read-strict': rawDrain('batch-read', 'strict'),
    'raw-one-tx-strict': rawDrainOneTx('strict'),
    dexie: dexieDrain,
  },
};
