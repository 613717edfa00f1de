/**
 * Calls a session issues in the same turn go to their shard as one `call` RPC, each with its own
 * transaction and answer. The RPCs are recorded (the operations each carried) by wrapping the
 * namespace the engine gets, so each test can tell one round trip from fifty.
 */

import { env } from 'cloudflare:workers';
import { type Lease, ManualClock } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { DurableObjectEngine, type ShardNamespace } from '../src/index.js';
import type { Env } from './worker.js';

const { QUEUE } = env as unknown as Env;
const MIB = 1024 * 1024;

/**
 * The namespace, with every RPC recorded as the list of operations it carried (and `failBatch`
 * to lose every RPC of more than one call in transport).
 */
function counted(options: { failBatch?: boolean } = {}) {
  const calls: string[][] = [];
  const namespace: ShardNamespace = {
    idFromName: (name) => QUEUE.idFromName(name),
    get(id) {
      const stub = QUEUE.get(id) as unknown as Record<string, (...args: unknown[]) => unknown>;
      return new Proxy(stub, {
        get(target, method: string) {
          return (...args: unknown[]) => {
            const ops = (args[0] as { op: string }[]).map((call) => call.op);
            calls.push(ops);
            if (ops.length > 1 && options.failBatch) {
              return Promise.reject(new Error('network gone'));
            }
            return target[method]!(...args);
          };
        },
      });
    },
  };
  return { namespace, calls };
}

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Where `actual` first differs from the pattern `bytes(size, seed)` makes (-1: identical). */
function mismatch(actual: Uint8Array, size: number, seed: number): number {
  if (actual.byteLength !== size) return Math.min(actual.byteLength, size);
  const expected = bytes(size, seed);
  for (let i = 0; i < size; i++) if (actual[i] !== expected[i]) return i;
  return -1;
}

async function engineWith(rpcPieceBytes?: number, failBatch?: boolean) {
  const { namespace, calls } = counted({ failBatch });
  const clock = new ManualClock();
  const engine = new DurableObjectEngine({
    namespace,
    shards: 1,
    name: `batch-${crypto.randomUUID()}`,
    clock,
    ...(rpcPieceBytes ? { rpcPieceBytes } : {}),
  });
  return { session: await engine.connect(), calls, clock };
}

describe('same-turn calls share one round trip', () => {
  it('50 stores and then 50 reads issued together: one batch each, every message whole', async () => {
    const { session, calls } = await engineWith();
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        session.storeMessage({ meta: { i }, contents: bytes(10_240, i) }),
      ),
    );
    expect(calls).toEqual([Array(50).fill('store')]);
    const contents = await Promise.all(ids.map((id) => session.getMessageContents(id)));
    expect(calls).toEqual([Array(50).fill('store'), Array(50).fill('readContents')]);
    expect(contents.map((body, i) => mismatch(body, 10_240, i))).toEqual(Array(50).fill(-1));
    expect(await Promise.all(ids.map((id) => session.getMessageMetaKey(id, 'i')))).toEqual(
      ids.map((_, i) => i),
    );
  });

  it('a call alone is one RPC of one operation; the fan-outs of one turn share an RPC per shard', async () => {
    const { session, calls } = await engineWith();
    const id = await session.storeMessage({ meta: {}, contents: 'one' });
    expect(new TextDecoder().decode(await session.getMessageContents(id))).toBe('one');
    expect(calls).toEqual([['store'], ['readContents']]);
    calls.length = 0;
    await Promise.all([session.stats(), session.getAllMessages(), session.getDeferredMessages()]);
    expect(calls).toEqual([['stats', 'list', 'list']]);
  });

  it('reads beyond the answer budget are asked again alone, and come back whole', async () => {
    // Budget 1 MiB: the first 600 KiB read leaves less than a chunk, so the others answer
    // "later" and are read alone; a 3 MiB message continues in further pieces.
    const { session, calls } = await engineWith(MIB);
    const sizes = [600 * 1024, 600 * 1024, 3 * MIB + 5, 10];
    const ids = await session.storeMessages(
      sizes.map((size, i) => ({ meta: {}, contents: bytes(size, i) })),
    );
    calls.length = 0;
    const contents = await Promise.all(ids.map((id) => session.getMessageContents(id)));
    expect(contents.map((body, i) => mismatch(body, sizes[i]!, i))).toEqual([-1, -1, -1, -1]);
    expect(calls[0]).toEqual(Array(4).fill('readContents'));
    // Each later trip carries at least one piece forward (the first read of a batch always gets a
    // chunk): 4.2 MiB in 1 MiB trips, plus the small ones.
    expect(calls.flat().every((op) => op === 'readContents')).toBe(true);
    expect(calls.length).toBeLessThanOrEqual(8);
  });

  it('stores are split so that no batch carries more than one RPC piece of contents', async () => {
    const { session, calls } = await engineWith(MIB);
    const ids = await Promise.all(
      [0, 1, 2].map((i) => session.storeMessage({ meta: {}, contents: bytes(600 * 1024, i) })),
    );
    expect(calls).toEqual([['store'], ['store'], ['store']]);
    calls.length = 0;
    await Promise.all(
      [0, 1, 2, 3].map((i) => session.storeMessage({ meta: {}, contents: bytes(300 * 1024, i) })),
    );
    // 3 × 300 KiB fit one piece; the fourth goes in a second trip.
    expect(calls).toEqual([['store', 'store', 'store'], ['store']]);
    expect((await session.stats()).total).toBe(ids.length + 4);
  });

  it('each call of a batch has its own transaction: a stale commit fails alone', async () => {
    const { session, calls, clock } = await engineWith();
    await session.storeMessages(
      Array.from({ length: 4 }, (_, i) => ({ meta: { i }, contents: `m${i}` })),
    );
    const leases = await session.claimDue({ limit: 4, ttl: 1000 });
    // Lease 0 expires and is taken over: its holder's commit must fail, the others must land.
    clock.advance(1000);
    const taken = (await session.acquireLease(leases[0]!.id, 1000))!;
    calls.length = 0;
    const results = await Promise.allSettled(
      leases.map((lease: Lease) => session.commitAttempt(lease, { delete: true })),
    );
    expect(calls).toEqual([Array(4).fill('commitAttempt')]);
    expect(results.map((r) => r.status)).toEqual([
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'STALE_LEASE' });
    expect(await session.getAllMessages()).toEqual([taken.id]);
  });

  it('a batch lost in transport rejects each of its calls with UNAVAILABLE and stores nothing', async () => {
    const { session, calls } = await engineWith(undefined, true);
    const results = await Promise.allSettled(
      [0, 1, 2].map((i) => session.storeMessage({ meta: {}, contents: `m${i}` })),
    );
    expect(calls).toEqual([['store', 'store', 'store']]);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'UNAVAILABLE' });
    }
    expect((await session.stats()).total).toBe(0);
  });
});
