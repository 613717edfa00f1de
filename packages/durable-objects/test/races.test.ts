/** Races between many clients, each with its own engine, session and stubs: one winner per lock, no message claimed twice. */

import { env } from 'cloudflare:workers';
import { runConformanceCase } from '@mailspool/conformance';
import { type Lease, ManualClock } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { DurableObjectEngine } from '../src/index.js';
import type { Env } from './worker.js';

const { QUEUE } = env as unknown as Env;

/** `count` independent clients of the queue `name` (separate engines, so separate stubs). */
async function clients(name: string, shards: number, count: number, clock: ManualClock) {
  return Promise.all(
    Array.from({ length: count }, () =>
      new DurableObjectEngine({ namespace: QUEUE, shards, name, clock }).connect(),
    ),
  );
}

describe('races over Workers RPC', () => {
  it('100 concurrent lockMessage calls on one id: exactly one wins, three rounds running', async () => {
    const clock = new ManualClock();
    const sessions = await clients(`race-lock-${crypto.randomUUID()}`, 4, 100, clock);
    const id = await sessions[0]!.storeMessage({ meta: {}, contents: 'x' });
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(sessions.map((s) => s.lockMessage(id, 1000)));
      expect(results.filter(Boolean)).toHaveLength(1);
      clock.advance(1000);
    }
  });

  it('100 concurrent acquireLease / lockMessage calls: one winner, whose lease alone is current', async () => {
    const clock = new ManualClock();
    const sessions = await clients(`race-lease-${crypto.randomUUID()}`, 4, 100, clock);
    const id = await sessions[0]!.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
    const results = await Promise.all(
      sessions.map((s, n) =>
        n % 2 === 0 ? s.acquireLease(id, 60_000) : s.lockMessage(id, 60_000),
      ),
    );
    const winners = results.filter((r) => r !== null && r !== false);
    expect(winners).toHaveLength(1);
    // Whoever won, a new lease after expiry gets a larger token and makes every older one stale.
    clock.advance(60_000);
    const next = (await sessions[1]!.acquireLease(id, 60_000))!;
    const winner = winners[0];
    if (typeof winner === 'object') {
      expect(next.token).toBeGreaterThan(winner.token);
      await expect(
        sessions[2]!.setMessageMetaKey(id, 'attempts', 1, { lease: winner }),
      ).rejects.toMatchObject({ code: 'STALE_LEASE' });
    }
    await sessions[3]!.setMessageMetaKey(id, 'attempts', 1, { lease: next });
    expect(await sessions[4]!.getMessageMetaKey(id, 'attempts')).toBe(1);
  });

  it('concurrent claimDue from 12 clients over 8 shards: every message once, none twice', async () => {
    const clock = new ManualClock();
    const name = `race-claim-${crypto.randomUUID()}`;
    const sessions = await clients(name, 8, 12, clock);
    // Batches land on one random shard each: 30 batches spread 300 messages over the 8 shards.
    const ids: string[] = [];
    for (let batch = 0; batch < 30; batch++) {
      ids.push(
        ...(await sessions[batch % 12]!.storeMessages(
          Array.from({ length: 10 }, (_, n) => ({ meta: { n }, contents: `m${batch}.${n}` })),
        )),
      );
      clock.advance(1);
    }
    expect(new Set(ids.map((id) => id.split('.')[0])).size).toBeGreaterThan(1);
    const seen = new Map<string, number>();
    let rounds = 0;
    while (seen.size < ids.length && rounds++ < 40) {
      const batches = await Promise.all(sessions.map((s) => s.claimDue({ limit: 7, ttl: 60_000 })));
      for (const lease of batches.flat()) seen.set(lease.id, (seen.get(lease.id) ?? 0) + 1);
    }
    expect([...seen.values()].filter((count) => count !== 1)).toEqual([]);
    expect([...seen.keys()].sort()).toEqual([...ids].sort());
    // Each round can take up to 12 × 7 = 84 messages: contention may shave some, never all.
    expect(rounds).toBeLessThanOrEqual(10);
    expect((await sessions[0]!.stats()).active).toBe(ids.length);
  });

  it('claimDue takes the oldest due messages across shards, in order', async () => {
    const clock = new ManualClock();
    const [s] = await clients(`order-${crypto.randomUUID()}`, 5, 1, clock);
    const stored: { id: string; at: number }[] = [];
    for (let n = 0; n < 25; n++) {
      const at = clock.now() + ((n * 7) % 25);
      stored.push({ id: await s!.storeMessage({ meta: { n }, contents: 'x', retryAt: at }), at });
    }
    clock.advance(100);
    const want = stored.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1)).map((m) => m.id);
    const got: Lease[] = [];
    for (let i = 0; i < 5; i++) got.push(...(await s!.claimDue({ limit: 5, ttl: 1000 })));
    expect(got.map((l) => l.id)).toEqual(want);
  });

  // Before, two concurrent claims could both pick the same shard's oldest message and the loser
  // came back empty while mail sat due on another shard.
  for (const shards of [1, 3, 8]) {
    it(`concurrent claims never come back short on ${shards} shard(s), 20 runs in a row`, async () => {
      for (let run = 0; run < 20; run++) {
        await runConformanceCase(
          'race: concurrent claimDue calls never come back short while enough mail is due',
          {
            name: `never short, ${shards} shards`,
            createEngine: ({ clock, store }) =>
              new DurableObjectEngine({ namespace: QUEUE, shards, name: store, clock }),
          },
        );
      }
    }, 120_000);
  }
});
