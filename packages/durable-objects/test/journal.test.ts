/**
 * The records and outbox extension points (`onMessageChange`, `keepRecord`, `enqueueOutbox`,
 * `deliverOutboxEntry`), on JournalShard (test/worker.ts): what a subclass writes there commits
 * in the same transaction as the change it describes or not at all; records expire and are
 * pruned by the alarm; outbox entries are delivered at least once, in order per stream, with
 * backoff. Time moves by skewing the shard's clock and running the alarm by hand.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { isMailspoolError, ManualClock } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { DurableObjectEngine } from '../src/index.js';
import { MIGRATIONS } from '../src/schema.js';
import type { Env, JournalRecord } from './worker.js';

const { JOURNAL } = env as unknown as Env;
const HOUR = 3_600_000;

type Stub = DurableObjectStub<import('./worker.js').JournalShard>;

async function recordOf(
  stub: Stub,
  id: string,
): Promise<{ data: JournalRecord; expiresAt: number | null } | null> {
  const text = await stub.testRecord(id);
  return text === null ? null : JSON.parse(text);
}

async function deliveredBy(
  stub: Stub,
): Promise<{ stream: string; body: JournalRecord; attempts: number }[]> {
  return JSON.parse(await stub.testDelivered());
}

function setup() {
  const name = `journal-${crypto.randomUUID()}`;
  const clock = new ManualClock(Date.now());
  const engine = new DurableObjectEngine({ namespace: JOURNAL, shards: 1, name, clock });
  const stub = JOURNAL.get(JOURNAL.idFromName(`${name}:0`));
  return { clock, engine, stub };
}

describe('records and outbox', () => {
  it('an ending commit keeps its record and outbox entry in the same step; a stale or refused commit writes neither', async () => {
    const { engine, stub } = setup();
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: { attempts: 0, to: 'a@example.org' }, contents: 'x' });
    const [lease] = await s.claimDue({ limit: 1, ttl: 60_000 });
    expect(await recordOf(stub, id)).toBeNull();

    // The observer throws: the whole commit is rolled back, the message is still there.
    await stub.testRefuse(true);
    await expect(s.commitAttempt(lease!, { delete: true })).rejects.toThrow(/refuses/);
    expect(await s.getAllMessages()).toEqual([id]);
    expect(await recordOf(stub, id)).toBeNull();
    expect(await stub.testOutboxRows()).toEqual([]);
    await stub.testRefuse(false);

    // A takeover: the old lease's commit is STALE_LEASE and writes no record.
    await s.releaseLease(lease!);
    const [current] = await s.claimDue({ limit: 1, ttl: 60_000 });
    const stale = await s.commitAttempt(lease!, { delete: true }).catch((error) => error);
    expect(isMailspoolError(stale, 'STALE_LEASE')).toBe(true);
    expect(await recordOf(stub, id)).toBeNull();

    await s.commitAttempt(current!, { delete: true });
    expect(await s.getAllMessages()).toEqual([]);
    const record = await recordOf(stub, id);
    expect(record?.data).toEqual({
      kind: 'attempt',
      ended: true,
      token: current!.token,
      previous: { attempts: 0, to: 'a@example.org' },
      next: null,
    });
    expect(record?.expiresAt).toBeGreaterThan(Date.now());
    expect((await stub.testOutboxRows()).map((row) => row.stream)).toEqual([id]);
  });

  it('deferring commits, unfenced and batch deletes are told too; records are read until they expire, then pruned by the alarm', async () => {
    const { engine, stub } = setup();
    const s = await engine.connect();
    const a = await s.storeMessage({ meta: { n: 1 }, contents: 'a' });
    const b = await s.storeMessage({ meta: { n: 2 }, contents: 'b' });
    const c = await s.storeMessage({ meta: { n: 3 }, contents: 'c' });
    const leases = await s.claimDue({ limit: 3, ttl: 60_000 });
    const leaseOf = (id: string) => leases.find((l) => l.id === id)!;
    await s.commitAttempt(leaseOf(a), { meta: { n: 1, attempts: 1 }, retryAt: Date.now() + HOUR });
    expect(await recordOf(stub, a)).toMatchObject({
      data: { kind: 'attempt', ended: false, previous: { n: 1 }, next: { n: 1, attempts: 1 } },
      expiresAt: null,
    });
    await s.deleteMessages([leaseOf(b)]);
    await s.releaseLease(leaseOf(c));
    await s.deleteMessage(c);
    expect(await recordOf(stub, b)).toMatchObject({ data: { kind: 'delete', ended: true } });
    expect(await recordOf(stub, c)).toMatchObject({
      data: { kind: 'delete', ended: true, token: null, previous: { n: 3 } },
    });

    // The alarm waits for the first record expiry or outbox entry (both an hour ahead; a's
    // record, its message still queued, has no expiry).
    const expiry = (await recordOf(stub, b))!.expiresAt!;
    const alarm = (await stub.testAlarm())!;
    expect(alarm).toBeLessThanOrEqual(expiry);
    expect(alarm).toBeGreaterThan(Date.now() + HOUR - 60_000);
    await stub.testSkew(HOUR + 60_000);
    expect(await recordOf(stub, b)).toBeNull(); // expired: never read back, even before pruning
    expect(await stub.testRecordRows()).toBe(3);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.testRecordRows()).toBe(1);
    expect(await recordOf(stub, a)).not.toBeNull();
    expect(await stub.testOutboxRows()).toEqual([]);
  });

  it('outbox entries are delivered in order per stream, retried with backoff through an outage, and none is lost or repeated', async () => {
    const { engine, stub } = setup();
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: { step: 0 }, contents: 'x' });
    const other = await s.storeMessage({
      meta: { other: true },
      contents: 'y',
      retryAt: Date.now() + 100 * HOUR,
    });
    // Three changes of `id` (two deferrals, then the end), one of `other`, while the receiver is down.
    await stub.testFailNext(1000);
    for (const step of [1, 2]) {
      const [lease] = await s.claimDue({ limit: 1, ttl: 60_000 });
      expect(lease!.id).toBe(id);
      await s.commitAttempt(lease!, { meta: { step }, retryAt: 0 });
    }
    const [last] = await s.claimDue({ limit: 1, ttl: 60_000 });
    await s.commitAttempt(last!, { delete: true });
    await s.deleteMessage(other);
    expect((await stub.testOutboxRows()).map((row) => row.stream)).toEqual([id, id, id, other]);

    // An alarm during the outage: each stream's first entry fails once; nothing is dropped and
    // the next try waits for its backoff (scaled to 1 h here).
    await stub.testSkew(HOUR + 1000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const rows = await stub.testOutboxRows();
    expect(rows.map((row) => [row.stream, row.attempts])).toEqual([
      [id, 1],
      [id, 0],
      [id, 0],
      [other, 1],
    ]);
    const due = Math.min(...rows.filter((row) => row.attempts === 1).map((row) => row.due_at));
    expect(await stub.testAlarm()).toBe(due);
    expect(due).toBeGreaterThanOrEqual(Date.now() + 2 * HOUR - 60_000);
    // Still down at the retry time: the backoff grows.
    await stub.testSkew(2 * HOUR + 2000);
    await runDurableObjectAlarm(stub);
    expect((await stub.testOutboxRows())[0]).toMatchObject({ attempts: 2 });
    expect(await deliveredBy(stub)).toEqual([]);

    // The receiver is back: every entry arrives once, `id`'s in the order of its changes.
    await stub.testFailNext(0);
    await stub.testSkew(10 * HOUR);
    for (let i = 0; i < 5 && (await stub.testOutboxRows()).length > 0; i++) {
      await runDurableObjectAlarm(stub);
    }
    expect(await stub.testOutboxRows()).toEqual([]);
    const delivered = await deliveredBy(stub);
    expect(delivered.map((d) => d.stream).sort()).toEqual([id, id, id, other].sort());
    expect(delivered.filter((d) => d.stream === id).map((d) => d.body.next)).toEqual([
      { step: 1 },
      { step: 2 },
      null,
    ]);
    expect(delivered.find((d) => d.stream === other)?.attempts).toBe(2);
  });

  it('a fresh shard is at the latest schema and arms no alarm before it has a record or an outbox entry', async () => {
    const { stub } = setup();
    const version = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql.exec<{ version: number }>('SELECT version FROM schema_version').one(),
    );
    expect(version.version).toBe(MIGRATIONS.length);
    expect(await stub.testAlarm()).toBeNull();
  });
});
