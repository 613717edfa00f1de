/** The shard itself: its schema and indexes, errors crossing RPC with their codes, routing by id. */

import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { isMailspoolError, ManualClock } from '@mailspool/core';
import { CLAIMABLE_AT, COMPLETE, DUE_AT, DUE_OF_RANK, UNLOCKED } from '@mailspool/core/sql';
import { describe, expect, it } from 'vitest';
import { DurableObjectEngine, type QueueShard } from '../src/index.js';
import { INDEXED_COMPLETE, INDEXED_DUE_AT, migrate } from '../src/schema.js';
import { callShard, type Env } from './worker.js';

const { QUEUE } = env as unknown as Env;

function shardStub(name: string, index = 0) {
  return QUEUE.get(QUEUE.idFromName(`${name}:${index}`));
}

function plan(sql: SqlStorage, query: string, ...args: unknown[]): string {
  return sql
    .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, ...args)
    .toArray()
    .map((row) => row.detail)
    .join('; ');
}

describe('QueueShard schema', () => {
  it('is migrated once at start; migrating again changes nothing', async () => {
    const stub = shardStub(`schema-${crypto.randomUUID()}`);
    const result = await runInDurableObject(stub, (_instance: QueueShard, state) => {
      const sql = state.storage.sql;
      const version = sql.exec('SELECT version FROM schema_version').one().version;
      const again = state.storage.transactionSync(() => migrate(sql));
      const tables = sql
        .exec<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name",
        )
        .toArray()
        .map((row) => row.name)
        .filter((name) => !name.startsWith('_cf') && !name.startsWith('sqlite_'));
      return { version, again, tables };
    });
    expect(result.version).toBe(5);
    expect(result.again).toBe(5);
    expect(result.tables).toEqual([
      'chunks',
      'idempotency',
      'idempotency_age',
      'message_records',
      'message_records_expiry',
      'messages',
      'messages_due',
      'messages_lock',
      'messages_priority_due',
      'outbox',
      'outbox_stream',
      'schema_version',
      'shard_identity',
      'shard_state',
      'uploads',
    ]);
  });

  it('claims and nextDueAt, built from @mailspool/core/sql, walk the priority and due indexes and never touch contents; lock reads use the lock index', async () => {
    const stub = shardStub(`plan-${crypto.randomUUID()}`);
    const plans = await runInDurableObject(stub, (_instance: QueueShard, state) => {
      const sql = state.storage.sql;
      return {
        due: plan(sql, `SELECT id FROM messages ${DUE_OF_RANK}`, 1, 5, 1),
        nextUnlocked: plan(
          sql,
          `SELECT ${DUE_AT} FROM messages WHERE ${COMPLETE} AND ${UNLOCKED} ORDER BY ${DUE_AT} LIMIT 1`,
          1,
        ),
        nextLocked: plan(
          sql,
          `SELECT min(${CLAIMABLE_AT}) FROM messages WHERE locked_until > ?1 AND ${COMPLETE}`,
          1,
        ),
        expiry: plan(sql, 'SELECT min(locked_until) FROM messages WHERE locked_until > ?1', 1),
      };
    });
    // The fragments must equal the partial index's frozen expressions for SQLite to use it.
    expect([DUE_AT, COMPLETE]).toEqual([INDEXED_DUE_AT, INDEXED_COMPLETE]);
    // Claims walk the priority index (rank, due time, id); nextDueAt the due index.
    for (const [walk, index] of [
      [plans.due, 'messages_priority_due'],
      [plans.nextUnlocked, 'messages_due'],
    ] as const) {
      expect(walk).toContain(index);
      expect(walk).not.toContain('TEMP B-TREE'); // no sort: the index gives the order
      expect(walk).not.toContain('chunks');
    }
    expect(plans.nextLocked).toContain('messages_lock');
    expect(plans.expiry).toContain('messages_lock');
  });
});

describe('errors across RPC', () => {
  it('a shard answers with encoded errors, and the engine rethrows them with their codes', async () => {
    const name = `errors-${crypto.randomUUID()}`;
    const clock = new ManualClock();
    const s = await new DurableObjectEngine({ namespace: QUEUE, shards: 1, name, clock }).connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x' });
    const lease = (await s.acquireLease(id, 100))!;
    clock.advance(100);
    await s.acquireLease(id, 100);

    // On the wire: plain data with the code, never a thrown class.
    const wire = await callShard(shardStub(name), 'setRetry', id, 5, lease);
    expect(wire).toEqual({
      error: { mailspool: 1, code: 'STALE_LEASE', message: expect.any(String) },
    });
    expect(await callShard(shardStub(name), 'getMeta', 's0.missing')).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    expect(
      await callShard(shardStub(name), 'stage', 'not an id!', 0, new Uint8Array(1)),
    ).toMatchObject({
      error: { code: 'TYPE_ERROR' },
    });

    // Through the engine: a MailspoolError with the same code (judged by code, not class).
    const error = await s.setMessageRetry(id, 5, { lease }).catch((e: unknown) => e);
    expect(isMailspoolError(error, 'STALE_LEASE')).toBe(true);
    await expect(s.getMessageMeta('s0.missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a store naming a taken id is refused whole (the primary key decides) and changes nothing', async () => {
    const name = `taken-${crypto.randomUUID()}`;
    const stub = shardStub(name);
    const item = (id: string, text: string) => ({
      id,
      metaJson: JSON.stringify({ text }),
      retryAt: null,
      priority: 1,
      contents: { bytes: new TextEncoder().encode(text) },
    });
    expect(await callShard(stub, 'store', [item('s0.first', 'one')], 1)).toEqual({ ok: undefined });
    // A batch whose second item collides: the first item must not be stored either.
    expect(
      await callShard(stub, 'store', [item('s0.second', 'two'), item('s0.first', 'again')], 2),
    ).toEqual({
      error: expect.objectContaining({
        code: 'TYPE_ERROR',
        message: expect.stringMatching(/taken/),
      }),
    });
    const s = await new DurableObjectEngine({ namespace: QUEUE, shards: 1, name }).connect();
    expect(await s.getAllMessages()).toEqual(['s0.first']);
    expect(new TextDecoder().decode(await s.getMessageContents('s0.first'))).toBe('one');
    expect(await s.getMessageMeta('s0.first')).toEqual({ text: 'one' });
  });
  it('an unreachable namespace rejects with UNAVAILABLE', async () => {
    const broken = {
      idFromName: (name: string) => QUEUE.idFromName(name),
      get: () => ({
        getMeta: () =>
          Promise.reject(new Error('Durable Object reset because its code was updated.')),
      }),
    };
    const s = await new DurableObjectEngine({ namespace: broken, shards: 1 }).connect();
    await expect(s.getMessageMeta('s0.x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // A stub that throws as it is called (here: has no such method) fails the call, alone or
    // batched, instead of leaving it pending.
    await expect(s.storeMessage({ meta: {}, contents: 'x' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    const reads = await Promise.allSettled([
      s.getMessageContents('s0.a'),
      s.getMessageContents('s0.b'),
    ]);
    expect(reads.map((r) => r.status === 'rejected' && r.reason.code)).toEqual([
      'UNAVAILABLE',
      'UNAVAILABLE',
    ]);
  });
});

describe('routing', () => {
  it('ids carry their shard; adding shards later moves nothing and loses nothing', async () => {
    const name = `grow-${crypto.randomUUID()}`;
    const clock = new ManualClock();
    const small = await new DurableObjectEngine({
      namespace: QUEUE,
      shards: 2,
      name,
      clock,
    }).connect();
    const before: string[] = [];
    for (let n = 0; n < 8; n++)
      before.push(await small.storeMessage({ meta: { n }, contents: `m${n}` }));
    expect(before.every((id) => /^s[01]\./.test(id))).toBe(true);

    const big = await new DurableObjectEngine({
      namespace: QUEUE,
      shards: 6,
      name,
      clock,
    }).connect();
    for (const [n, id] of before.entries()) {
      expect(await big.getMessageMeta(id)).toEqual({ n });
    }
    const after: string[] = [];
    for (let n = 0; n < 30; n++) after.push(await big.storeMessage({ meta: {}, contents: 'new' }));
    expect(new Set(after.map((id) => id.split('.')[0])).size).toBeGreaterThan(2);
    expect((await big.getAllMessages()).sort()).toEqual([...before, ...after].sort());
    expect((await big.stats()).total).toBe(38);
    expect(await big.claimDue({ limit: 100, ttl: 1000 })).toHaveLength(38);
  });

  it('ids the engine cannot have made answer like any unknown id', async () => {
    const s = await new DurableObjectEngine({
      namespace: QUEUE,
      shards: 2,
      name: `unknown-${crypto.randomUUID()}`,
    }).connect();
    for (const id of ['plain', 's7.beyond', 's01.leading-zero']) {
      await expect(s.getMessageMeta(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(s.lockMessage(id, 10)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await s.deleteMessage(id);
      await s.unlockMessage(id);
      await expect(s.releaseLease({ id, token: 1, expiresAt: 0 })).rejects.toMatchObject({
        code: 'STALE_LEASE',
      });
    }
  });

  it('passes a location hint through to the namespace', async () => {
    const hints: unknown[] = [];
    const namespace = {
      idFromName: (name: string) => QUEUE.idFromName(name),
      get: (id: DurableObjectId, options?: { locationHint?: string }) => {
        hints.push(options?.locationHint);
        return QUEUE.get(id, options as DurableObjectNamespaceGetDurableObjectOptions);
      },
    };
    const name = `hint-${crypto.randomUUID()}`;
    const s = await new DurableObjectEngine({
      namespace,
      shards: 2,
      name,
      locationHint: 'weur',
    }).connect();
    const id = await s.storeMessage({ meta: { hinted: true }, contents: 'x' });
    expect(await s.getMessageMeta(id)).toEqual({ hinted: true });
    expect(hints.length).toBeGreaterThan(0);
    expect(hints.every((hint) => hint === 'weur')).toBe(true);
  });

  it('rejects bad options with TypeErrors', () => {
    const make = (options: object) => () =>
      new DurableObjectEngine({ namespace: QUEUE, shards: 1, ...options });
    expect(make({ shards: 0 })).toThrow(TypeError);
    expect(make({ shards: 1.5 })).toThrow(TypeError);
    expect(make({ shards: 5000 })).toThrow(TypeError);
    expect(make({ name: '' })).toThrow(TypeError);
    expect(make({ rpcPieceBytes: 1000 })).toThrow(TypeError);
    expect(make({ rpcPieceBytes: 64 * 1024 * 1024 })).toThrow(TypeError);
    expect(make({ namespace: {} })).toThrow(TypeError);
    expect(make({}).call(null).supports).toEqual({
      persistent: true,
      shared: true,
      changeEvents: false,
      maxMessageBytes: 25 * 1024 * 1024,
    });
  });
});
