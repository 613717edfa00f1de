/**
 * Internal (used by memory.ts in Node and by page.ts in Chromium): the queue both memory suites
 * measure. `n` messages with 8 KiB contents each (the bench method's (bench/README.md) meta); the last fifth deferred
 * an hour, a tenth of the queue locked for an hour, the rest due (`queueShape`, ../idb/messages.ts).
 */
import type { QueueStats, StorageSession } from '@mailspool/core';
import { makeBodies, makeMeta, queueShape } from '../idb/messages.js';
import { verify } from '../lib/harness.js';

/** Contents per message in the memory suites. */
export const CONTENTS = 8192;
/** Messages per `storeMessages` call while seeding. */
export const SEED_BATCH = 1000;
/** How long the deferred fifth waits and the locked tenth stays locked. */
export const HOUR = 3_600_000;

/**
 * Stores messages `from`…`from + count - 1` of a queue of `n` in one `storeMessages` call (those
 * in the last fifth deferred to `later`). Each body's header carries its index (messages.ts).
 */
export async function storeBatch(
  session: StorageSession,
  from: number,
  count: number,
  n: number,
  later: number,
): Promise<void> {
  const deferredFrom = n - queueShape(n).deferred;
  const bodies = makeBodies(count, from, CONTENTS);
  await session.storeMessages(
    bodies.map((contents, k) => ({
      meta: makeMeta(from + k),
      contents,
      ...(from + k >= deferredFrom ? { retryAt: later } : {}),
    })),
  );
}

/** Locks a tenth of the queue (the oldest due messages) for an hour; throws unless it got them. */
export async function lockTenth(session: StorageSession, n: number): Promise<void> {
  const { active } = queueShape(n);
  const locked = await session.claimDue({ limit: active, ttl: HOUR });
  verify(locked.length === active, `locked ${locked.length}, expected ${active}`);
}

/** Seeds the whole queue of `n` (batches of SEED_BATCH) and returns the stats it must report. */
export async function seedQueue(session: StorageSession, n: number): Promise<QueueStats> {
  const later = Date.now() + HOUR;
  for (let from = 0; from < n; from += SEED_BATCH) {
    await storeBatch(session, from, Math.min(SEED_BATCH, n - from), n, later);
  }
  await lockTenth(session, n);
  return queueShape(n);
}
