/** Contents far beyond one SQLite row (2 MB) and one RPC message's comfort: chunked, staged, read in pieces. */

import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { ManualClock } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, DurableObjectEngine, type QueueShard } from '../src/index.js';
import { callShard, type Env } from './worker.js';

const { QUEUE } = env as unknown as Env;
const MiB = 1024 * 1024;

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  return bytes;
}

async function digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function leftovers(name: string, shard: number) {
  const stub = QUEUE.get(QUEUE.idFromName(`${name}:${shard}`));
  return runInDurableObject(stub, (_instance: QueueShard, state) => ({
    uploads: state.storage.sql.exec('SELECT count(*) AS n FROM uploads').one().n,
    staged: state.storage.sql
      .exec("SELECT count(*) AS n FROM chunks WHERE owner LIKE 'upload:%'")
      .one().n,
  }));
}

describe('large contents', () => {
  it('a 25 MiB message round-trips byte for byte (stored whole, then rewritten)', async () => {
    const name = `large-${crypto.randomUUID()}`;
    const engine = new DurableObjectEngine({ namespace: QUEUE, shards: 2, name });
    const s = await engine.connect();
    const original = randomBytes(25 * MiB);
    const id = await s.storeMessage({ meta: { size: original.byteLength }, contents: original });
    const back = await s.getMessageContents(id);
    expect(back.byteLength).toBe(25 * MiB);
    expect(firstDifference(back, original)).toBe(-1);
    expect(await digest(back)).toBe(await digest(original));

    // setMessageContents takes the staged path too, and replaces every old chunk.
    const rewritten = randomBytes(25 * MiB - 3);
    await s.setMessageContents(id, rewritten);
    expect(firstDifference(await s.getMessageContents(id), rewritten)).toBe(-1);
    expect(await leftovers(name, Number(id.slice(1, id.indexOf('.'))))).toEqual({
      uploads: 0,
      staged: 0,
    });
    await s.close();
  }, 120_000);

  it('one more byte than the limit is TOO_LARGE and stores nothing', async () => {
    const engine = new DurableObjectEngine({
      namespace: QUEUE,
      shards: 1,
      name: `limit-${crypto.randomUUID()}`,
    });
    const s = await engine.connect();
    await expect(
      s.storeMessage({ meta: {}, contents: new Uint8Array(25 * MiB + 1) }),
    ).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(await s.getAllMessages()).toEqual([]);
  });

  it('with 1 MiB pieces, a batch mixing large and small contents is stored atomically on one shard', async () => {
    const name = `pieces-${crypto.randomUUID()}`;
    const clock = new ManualClock();
    const engine = new DurableObjectEngine({
      namespace: QUEUE,
      shards: 4,
      name,
      clock,
      rpcPieceBytes: MiB,
    });
    const s = await engine.connect();
    const big = randomBytes(3 * MiB + 17);
    const middle = randomBytes(MiB);
    const ids = await s.storeMessages([
      { meta: { n: 0 }, contents: 'small' },
      { meta: { n: 1 }, contents: big },
      { meta: { n: 2 }, contents: middle },
      { meta: { n: 3 }, contents: new Uint8Array(0) },
    ]);
    expect(new Set(ids.map((id) => id.split('.')[0])).size).toBe(1);
    expect(new TextDecoder().decode(await s.getMessageContents(ids[0]!))).toBe('small');
    expect(firstDifference(await s.getMessageContents(ids[1]!), big)).toBe(-1);
    expect(firstDifference(await s.getMessageContents(ids[2]!), middle)).toBe(-1);
    expect((await s.getMessageContents(ids[3]!)).byteLength).toBe(0);
    // A view into a larger buffer sends only its own bytes.
    const backing = randomBytes(4 * MiB);
    const view = backing.subarray(MiB + 5, 2 * MiB + 9);
    const viewId = await s.storeMessage({ meta: {}, contents: view });
    expect(firstDifference(await s.getMessageContents(viewId), view)).toBe(-1);
  }, 60_000);

  it('a failed commit after staging leaves nothing staged behind', async () => {
    const name = `discard-${crypto.randomUUID()}`;
    const engine = new DurableObjectEngine({
      namespace: QUEUE,
      shards: 1,
      name,
      rpcPieceBytes: MiB,
    });
    const s = await engine.connect();
    const id = await s.claimMessageId();
    await s.deleteMessage(id);
    await expect(s.setMessageContents(id, randomBytes(3 * MiB))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await leftovers(name, 0)).toEqual({ uploads: 0, staged: 0 });
  });

  it('a read split over pieces notices contents rewritten under it', async () => {
    const name = `torn-${crypto.randomUUID()}`;
    const engine = new DurableObjectEngine({ namespace: QUEUE, shards: 1, name });
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: {}, contents: randomBytes(2 * CHUNK_BYTES) });
    const stub = QUEUE.get(QUEUE.idFromName(`${name}:0`));
    const first = await callShard(stub, 'readContents', id, 0, CHUNK_BYTES, null);
    expect(first).toMatchObject({ ok: { size: 2 * CHUNK_BYTES, version: 0 } });
    await s.setMessageContents(id, 'new');
    expect(await callShard(stub, 'readContents', id, CHUNK_BYTES, CHUNK_BYTES, 0)).toEqual({
      ok: { changed: true },
    });
    expect(new TextDecoder().decode(await s.getMessageContents(id))).toBe('new');
  });
});
