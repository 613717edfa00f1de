/**
 * Workbox background-sync's `Queue` rows. They run in the bench service worker (sw.ts): Workbox's
 * Queue can't be constructed in a window (bench/README.md). Each Queue gets a unique name and a
 * no-op `onSync`, so the browser's sync event never replays (drains) a queue under measurement.
 */
import { openDB } from 'idb';
import { Queue } from 'workbox-background-sync';
import { StorableRequest } from 'workbox-background-sync/StorableRequest.js';
import { type Sample, verify } from '../lib/harness.js';
import { makeBodies, makeMeta, SEED_BATCH, Tally } from './messages.js';
import type { Workload } from './workloads.js';

/** Workbox's own database (workbox-background-sync/lib/QueueDb.js): every queue shares it. */
const WORKBOX_DB = 'workbox-background-sync';

const request = (i: number, body: Uint8Array) =>
  new Request(`https://mail.example/send/${i}`, { method: 'POST', body: body as BufferSource });

const newQueue = (what: string, tag: number) =>
  new Queue(`bench-${what}-${tag}`, { onSync: async () => {} });

interface Entry {
  id?: number;
  queueName: string;
  requestData: { body?: ArrayBuffer };
  timestamp: number;
  metadata?: unknown;
}

/** Reads one queue's entries straight from Workbox's database, then deletes them. */
async function takeEntries(queueName: string): Promise<Entry[]> {
  const db = await openDB(WORKBOX_DB);
  try {
    const tx = db.transaction('requests', 'readwrite');
    const entries: Entry[] = [];
    let cursor = await tx.store.index('queueName').openCursor(IDBKeyRange.only(queueName));
    while (cursor) {
      entries.push(cursor.value as Entry);
      void cursor.delete();
      cursor = await cursor.continue();
    }
    await tx.done;
    return entries;
  } finally {
    db.close();
  }
}

/**
 * Writes `n` entries exactly as `Queue.pushRequest` would (StorableRequest.toObject), SEED_BATCH
 * per transaction: seeding through pushRequest (~200/s) would dominate the run.
 */
async function seed(queue: Queue, bodies: readonly Uint8Array[]): Promise<void> {
  await queue.size(); // makes Workbox create (or upgrade) its database first
  const db = await openDB(WORKBOX_DB);
  try {
    for (let from = 0; from < bodies.length; from += SEED_BATCH) {
      // A batch's requests are serialised together; ids (autoIncrement) keep the bodies' order.
      const batch = bodies.slice(from, from + SEED_BATCH);
      const entries: Entry[] = await Promise.all(
        batch.map(async (body, k) => ({
          queueName: queue.name,
          requestData: (
            await StorableRequest.fromRequest(request(from + k, body))
          ).toObject() as Entry['requestData'],
          timestamp: Date.now(),
          metadata: makeMeta(from + k),
        })),
      );
      const tx = db.transaction('requests', 'readwrite');
      for (const entry of entries) void tx.store.add(entry);
      await tx.done;
    }
  } finally {
    db.close();
  }
}

const pushOne: Workload = async (n, tag) => {
  const queue = newQueue('push', tag);
  const bodies = makeBodies(n, tag);
  const requests = bodies.map((body, i) => request(i, body));
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    await queue.pushRequest({ request: requests[i]!, metadata: makeMeta(i) });
  }
  const ms = performance.now() - start;
  const entries = await takeEntries(queue.name);
  verify(entries.length === n, `${entries.length} entries, expected ${n}`);
  const tally = new Tally(tag);
  for (const entry of entries) tally.add(entry.requestData.body!);
  return { ops: n, ms, check: tally.check(n) };
};

const shiftAll: Workload = async (n, tag) => {
  const queue = newQueue('shift', tag);
  await seed(queue, makeBodies(n, tag));
  verify((await queue.size()) === n, 'seeded queue size');
  const tally = new Tally(tag);
  const start = performance.now();
  for (;;) {
    const entry = await queue.shiftRequest();
    if (!entry) break;
    tally.add(await entry.request.arrayBuffer());
  }
  const ms = performance.now() - start;
  const left = await queue.size();
  verify(left === 0, `${left} entries left after drain`);
  return { ops: n, ms, check: tally.check(n) };
};

let statsQueue: { queue: Queue; n: number } | undefined;

export async function prepareWorkboxStats(n: number, tag: number): Promise<void> {
  const queue = newQueue('stats', tag);
  await seed(queue, makeBodies(n, tag));
  statsQueue = { queue, n };
}

export async function disposeWorkboxStats(): Promise<void> {
  if (statsQueue) await takeEntries(statsQueue.queue.name);
  statsQueue = undefined;
  // Workbox's database itself stays: Workbox keeps its connection open and ignores
  // versionchange, so deleting it would block until the worker stops.
}

const size: Workload = async (calls) => {
  const { queue, n } = statsQueue!;
  const sizes: number[] = [];
  const start = performance.now();
  for (let k = 0; k < calls; k++) sizes.push(await queue.size());
  const ms = performance.now() - start;
  for (const got of sizes) verify(got === n, `size ${got}, expected ${n}`);
  return { ops: calls, ms, check: `${calls} × total ${n}` } satisfies Sample;
};

export const workboxRows: Record<string, Record<string, Workload>> = {
  'enqueue-one': { workbox: pushOne },
  drain: { workbox: shiftAll },
  stats: { 'workbox-stats': size },
};
