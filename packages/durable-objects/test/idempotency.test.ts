/** storeMessageOnce: one message per idempotency key, also under concurrent retries, and only within the retention window. */

import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { ManualClock } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { DurableObjectEngine } from '../src/index.js';
import type { Env } from './worker.js';

const { QUEUE } = env as unknown as Env;

function engine(clock = new ManualClock(), shards = 4, idempotencyRetentionMs?: number) {
  const name = `idem-${crypto.randomUUID()}`;
  return new DurableObjectEngine({
    namespace: QUEUE,
    shards,
    name,
    clock,
    ...(idempotencyRetentionMs ? { idempotencyRetentionMs } : {}),
  });
}

describe('storeMessageOnce', () => {
  it('stores once per key: a repeat answers the first id and stores nothing', async () => {
    const session = await engine().connect();
    const first = await session.storeMessageOnce('key-1', 'fp-a', {
      meta: { n: 1 },
      contents: 'one',
    });
    expect(first.duplicate).toBe(false);
    const again = await session.storeMessageOnce('key-1', 'fp-b', {
      meta: { n: 2 },
      contents: 'two',
    });
    expect(again).toEqual({ id: first.id, fingerprint: 'fp-a', duplicate: true });
    expect(await session.getAllMessages()).toEqual([first.id]);
    expect(await session.getMessageMeta(first.id)).toEqual({ n: 1 });
    const other = await session.storeMessageOnce('key-2', 'fp-a', {
      meta: { n: 3 },
      contents: 'three',
    });
    expect(other.duplicate).toBe(false);
    expect((await session.getAllMessages()).sort()).toEqual([first.id, other.id].sort());
  });

  it('30 concurrent calls with one key through separate clients store exactly one message', async () => {
    const clock = new ManualClock();
    const first = engine(clock);
    const sessions = await Promise.all(Array.from({ length: 30 }, () => first.connect()));
    const results = await Promise.all(
      sessions.map((s, n) =>
        s.storeMessageOnce('same-key', 'fp', { meta: { n }, contents: `body ${n}` }),
      ),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(await sessions[0]!.getAllMessages()).toHaveLength(1);
    expect((await sessions[0]!.stats()).due).toBe(1);
  });

  it('a key is forgotten after the retention window: the same key then stores a new message', async () => {
    const clock = new ManualClock();
    const session = await engine(clock, 2, 60_000).connect();
    const first = await session.storeMessageOnce('k', 'fp', { meta: {}, contents: 'x' });
    clock.advance(59_999);
    expect((await session.storeMessageOnce('k', 'fp', { meta: {}, contents: 'x' })).duplicate).toBe(
      true,
    );
    clock.advance(2);
    const later = await session.storeMessageOnce('k', 'fp', { meta: {}, contents: 'x' });
    expect(later.duplicate).toBe(false);
    expect(later.id).not.toBe(first.id);
  });

  it('a repeat with contents too large for one RPC leaves no staged upload behind', async () => {
    const name = `idem-big-${crypto.randomUUID()}`;
    const big = new DurableObjectEngine({
      namespace: QUEUE,
      shards: 1,
      name,
      rpcPieceBytes: 1024 * 1024,
    });
    const session = await big.connect();
    const contents = new Uint8Array(1536 * 1024).fill(7);
    const first = await session.storeMessageOnce('big', 'fp', { meta: {}, contents });
    const again = await session.storeMessageOnce('big', 'fp', { meta: {}, contents });
    expect(again).toEqual({ id: first.id, fingerprint: 'fp', duplicate: true });
    const staged = await runInDurableObject(
      QUEUE.get(QUEUE.idFromName(`${name}:0`)),
      (_shard, state) =>
        state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM uploads').one().n,
    );
    expect(staged).toBe(0);
    expect((await session.getMessageContents(first.id)).byteLength).toBe(contents.byteLength);
  });

  it('bad keys and bad input reject with TypeError and store nothing', async () => {
    const session = await engine().connect();
    await expect(
      session.storeMessageOnce('has space', 'fp', { meta: {}, contents: 'x' }),
    ).rejects.toBeInstanceOf(TypeError);
    await expect(
      session.storeMessageOnce('', 'fp', { meta: {}, contents: 'x' }),
    ).rejects.toBeInstanceOf(TypeError);
    await expect(
      session.storeMessageOnce('k', 'fp', { meta: { bad: Number.NaN }, contents: 'x' }),
    ).rejects.toBeInstanceOf(TypeError);
    // The key was not burnt by the failed call.
    expect((await session.storeMessageOnce('k', 'fp', { meta: {}, contents: 'x' })).duplicate).toBe(
      false,
    );
    expect(await session.getAllMessages()).toHaveLength(1);
  });
});
