/**
 * The Worker the tests run against, in workerd: under the vitest plugin (as `main`) and, bundled,
 * under miniflare's Node API for the restart tests. It exports the plain `QueueShard`, a
 * `HookedShard` whose due hook records its calls, and a small JSON API for the Node-side tests.
 */
import { ManualClock, type StorageSession } from '@mailspool/core';
import {
  type DueEvent,
  DurableObjectEngine,
  type MessageChange,
  type OutboxEntry,
  QueueShard,
} from '../src/index.js';
import type {
  OperationArgs,
  OperationName,
  OperationResult,
  ShardCall,
} from '../src/operations.js';
import type { Wire } from '../src/wire.js';

/** One call of a shard's wire protocol, as the engine sends it, for tests of the wire itself. */
export async function callShard<K extends OperationName>(
  shard: { call(calls: ShardCall[], answerBytes: number): Promise<Wire<unknown>[]> },
  op: K,
  ...args: OperationArgs<K>
): Promise<Wire<OperationResult<K>>> {
  const [answer] = await shard.call([{ op, args } as unknown as ShardCall], 32 * 1024 * 1024);
  return answer as Wire<OperationResult<K>>;
}

export { QueueShard };

export interface Env {
  QUEUE: DurableObjectNamespace<QueueShard>;
  HOOKED: DurableObjectNamespace<HookedShard>;
  PROBED: DurableObjectNamespace<ProbedShard>;
  JOURNAL: DurableObjectNamespace<JournalShard>;
  /** Moves every HookedShard's clock forward (the restart test: "time passed while it was down"). */
  SKEW_MS?: string;
}

/** One call of the due hook, as recorded. */
export interface HookCall {
  /** The shard's name as the event gave it. */
  name: string | null;
  attempt: number;
  due: number;
  ids: string[];
  at: number;
  failed: boolean;
}

/**
 * A shard whose hook writes each call to a table, fails when told to, and whose clock the test
 * moves (`test_skew` + `SKEW_MS`) instead of sleeping. Its backoff is the default one scaled from
 * seconds to hours, so a retry alarm never fires on its own during a test.
 */
export class HookedShard extends QueueShard<Env> {
  // No constructor, and nothing the base constructor reaches (clockOffset(), to arm the alarm)
  // may use a field: fields are set only after it returns.
  #tables(): SqlStorage {
    const sql = this.ctx.storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS test_config (key TEXT PRIMARY KEY, value INTEGER)');
    sql.exec(
      'CREATE TABLE IF NOT EXISTS test_hook_log (n INTEGER PRIMARY KEY AUTOINCREMENT, call TEXT)',
    );
    return sql;
  }

  #config(key: string): number {
    return (
      this.#tables()
        .exec<{ value: number }>('SELECT value FROM test_config WHERE key = ?', key)
        .toArray()[0]?.value ?? 0
    );
  }

  #setConfig(key: string, value: number): void {
    this.#tables().exec(
      'INSERT INTO test_config (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
  }

  protected override clockOffset(): number {
    return this.#config('skew') + Number(this.env.SKEW_MS ?? 0);
  }

  /** `test_nameless`: the instance starts as the runtime starts one for an alarm, unnamed. */
  protected override runtimeName(): string | undefined {
    return this.#config('nameless') > 0 ? undefined : super.runtimeName();
  }

  /** Test control: instances started from now on get no name from the runtime. */
  testStartNameless(): void {
    this.#setConfig('nameless', 1);
  }

  protected override retryDelay(attempt: number): number {
    return super.retryDelay(attempt) * 3600;
  }

  protected override async onDue(event: DueEvent): Promise<void> {
    const failing = this.#config('fail');
    const call: HookCall = {
      name: event.name ?? null,
      attempt: event.attempt,
      due: event.due,
      ids: event.ids,
      at: event.at,
      failed: failing > 0,
    };
    this.#tables().exec('INSERT INTO test_hook_log (call) VALUES (?)', JSON.stringify(call));
    if (failing > 0) {
      this.#setConfig('fail', failing - 1);
      throw new Error('the relayer is down (test)');
    }
    // A relayer that takes `claim` messages per wake-up (through the shard's own wire method).
    const claim = this.#config('claim');
    if (claim > 0) await callShard(this, 'claimDue', claim, 3_600_000, event.at);
    // A relayer on the shard's own local engine: claims what is due here and "delivers" it (a
    // delete), storing one new message per delivery, as a relayer stores a bounce.
    const drain = this.#config('drain');
    if (drain > 0) {
      const engine = this.localEngine({ clock: new ManualClock(event.at) });
      if (engine === undefined) throw new Error('the shard does not know its name');
      const session = await engine.connect();
      try {
        for (const lease of await session.claimDue({ limit: drain, ttl: 60_000 })) {
          await session.commitAttempt(lease, {
            delete: true,
            store: [
              { meta: { bounceOf: lease.id }, contents: 'dsn', retryAt: event.at + 86_400_000 },
            ],
          });
        }
      } finally {
        await session.close();
      }
    }
  }

  /** Test control: each hook call relays up to `n` due messages through `localEngine()`. */
  testDrainPerWake(n: number): void {
    this.#setConfig('drain', n);
  }

  testCommitStats(): { groups: number; calls: number; waiting: number } {
    return { ...this.commitStats };
  }

  /** Open while a test holds commits (see testHoldCommits); resolved by testReleaseCommits. */
  #hold: { promise: Promise<void>; release: () => void } | undefined;

  /** Test control: each group's commit stays open until {@link testReleaseCommits}. */
  testHoldCommits(): void {
    let release = () => {};
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#hold = { promise, release };
  }

  testReleaseCommits(): void {
    this.#hold?.release();
    this.#hold = undefined;
  }

  protected override async groupCommitted(): Promise<void> {
    await super.groupCommitted();
    await this.#hold?.promise;
  }

  testShardName(): string | null {
    return this.shardName ?? null;
  }

  /** Test control: each hook call claims `n` due messages, like a relayer draining slowly. */
  testClaimPerWake(n: number): void {
    this.#setConfig('claim', n);
  }

  /** Test control: the shard's clock runs `ms` ahead of the wall clock. */
  testSkew(ms: number): void {
    this.#setConfig('skew', ms);
  }

  /** Test control: the next `n` hook calls throw. */
  testFailNext(n: number): void {
    this.#setConfig('fail', n);
  }

  testHookCalls(): HookCall[] {
    return this.#tables()
      .exec<{ call: string }>('SELECT call FROM test_hook_log ORDER BY n')
      .toArray()
      .map((row) => JSON.parse(row.call) as HookCall);
  }

  /** The alarm, in the shard's (skewed) time; `null` when none is set. */
  async testAlarm(): Promise<number | null> {
    const alarm = await this.ctx.storage.getAlarm();
    return alarm === null ? null : alarm + this.clockOffset();
  }
}

/** What {@link JournalShard} records of each change. */
export interface JournalRecord {
  kind: MessageChange['kind'];
  ended: boolean;
  token: number | null;
  previous: Record<string, unknown> | null;
  next: Record<string, unknown> | null;
}

/**
 * A shard with no due hook that uses the records and outbox extension points: every change
 * keeps a record (expiring an hour after the message ends) and queues one outbox entry on the
 * message's stream, due an hour later; deliveries are written to a table, and fail when told.
 * Its clock is moved by `testSkew`, and its outbox backoff is scaled from seconds to hours, so
 * no alarm fires on its own during a test.
 */
export class JournalShard extends QueueShard<Env> {
  #sql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS test_config (key TEXT PRIMARY KEY, value INTEGER)');
    sql.exec(
      'CREATE TABLE IF NOT EXISTS test_delivered (n INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT, body TEXT, attempts INTEGER)',
    );
    return sql;
  }

  #config(key: string): number {
    return (
      this.#sql()
        .exec<{ value: number }>('SELECT value FROM test_config WHERE key = ?', key)
        .toArray()[0]?.value ?? 0
    );
  }

  #setConfig(key: string, value: number): void {
    this.#sql().exec(
      'INSERT INTO test_config (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
  }

  protected override clockOffset(): number {
    return this.#config('skew');
  }

  protected override outboxRetryDelay(attempt: number): number {
    return super.outboxRetryDelay(attempt) * 3600;
  }

  protected override onMessageChange(change: MessageChange): void {
    if (this.#config('refuse') > 0) throw new Error('the observer refuses (test)');
    const record: JournalRecord = {
      kind: change.kind,
      ended: change.ended,
      token: change.lease?.token ?? null,
      previous: change.previousMeta() as Record<string, unknown> | null,
      next: (change.meta as Record<string, unknown> | undefined) ?? null,
    };
    const body = JSON.stringify(record);
    this.keepRecord(change.id, body, change.ended ? this.shardTime() + 3_600_000 : null);
    this.enqueueOutbox(change.id, body, 3_600_000);
  }

  protected override async deliverOutboxEntry(entry: OutboxEntry): Promise<void> {
    const failing = this.#config('fail');
    if (failing > 0) {
      this.#setConfig('fail', failing - 1);
      throw new Error('the receiver is down (test)');
    }
    this.#sql().exec(
      'INSERT INTO test_delivered (stream, body, attempts) VALUES (?, ?, ?)',
      entry.stream,
      entry.body,
      entry.attempts,
    );
  }

  /** The record of `id` as JSON text (`{ data, expiresAt }`), or `null`. */
  testRecord(id: string): string | null {
    const stored = this.readRecord(id);
    return stored === undefined
      ? null
      : JSON.stringify({ data: JSON.parse(stored.data), expiresAt: stored.expiresAt });
  }

  /** Rows of the record table, expired or not (what pruning has left). */
  testRecordRows(): number {
    return this.ctx.storage.sql
      .exec<{ n: number }>('SELECT count(*) AS n FROM message_records')
      .one().n;
  }

  testOutboxRows(): { stream: string; attempts: number; due_at: number }[] {
    return this.ctx.storage.sql
      .exec<{ stream: string; attempts: number; due_at: number }>(
        'SELECT stream, attempts, due_at FROM outbox ORDER BY seq',
      )
      .toArray();
  }

  /** What was delivered, in order: `{ stream, body, attempts }[]` as JSON text. */
  testDelivered(): string {
    return JSON.stringify(
      this.#sql()
        .exec<{ stream: string; body: string; attempts: number }>(
          'SELECT stream, body, attempts FROM test_delivered ORDER BY n',
        )
        .toArray()
        .map((row) => ({ ...row, body: JSON.parse(row.body) as JournalRecord })),
    );
  }

  testSkew(ms: number): void {
    this.#setConfig('skew', ms);
  }

  testFailNext(n: number): void {
    this.#setConfig('fail', n);
  }

  testRefuse(on: boolean): void {
    this.#setConfig('refuse', on ? 1 : 0);
  }

  async testAlarm(): Promise<number | null> {
    const alarm = await this.ctx.storage.getAlarm();
    return alarm === null ? null : alarm + this.clockOffset();
  }
}

// ---- the JSON API used by the Node-side (miniflare) tests ------------------------------------------

interface Command {
  namespace: 'QUEUE' | 'HOOKED';
  name: string;
  shards: number;
  now: number;
  op: string;
  args?: unknown[];
}

async function run(session: StorageSession, op: string, args: unknown[]): Promise<unknown> {
  const call = (session as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op];
  if (op === 'snapshot') {
    const ids = (await session.getAllMessages()).sort();
    const messages: Record<string, { meta: unknown; contents: string | null }> = {};
    for (const id of ids) {
      let contents: string | null = null;
      try {
        contents = new TextDecoder().decode(await session.getMessageContents(id));
      } catch {
        contents = null;
      }
      messages[id] = { meta: await session.getMessageMeta(id), contents };
    }
    return {
      ids,
      messages,
      active: (await session.getActiveMessages()).sort(),
      deferred: (await session.getDeferredMessages()).sort(),
      stats: await session.stats(),
    };
  }
  if (typeof call !== 'function') throw new TypeError(`no operation ${op}`);
  return call.apply(session, args);
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/hook-calls' || url.pathname === '/alarm') {
      const name = url.searchParams.get('name') ?? '';
      const stub = env.HOOKED.get(env.HOOKED.idFromName(name));
      const body = url.pathname === '/alarm' ? await stub.testAlarm() : await stub.testHookCalls();
      return Response.json(body);
    }
    const command = (await request.json()) as Command;
    const engine = new DurableObjectEngine({
      namespace: env[command.namespace],
      shards: command.shards,
      name: command.name,
      clock: new ManualClock(command.now),
    });
    const session = await engine.connect();
    try {
      return Response.json({ ok: (await run(session, command.op, command.args ?? [])) ?? null });
    } catch (error) {
      const { name, message, code } = error as { name?: string; message?: string; code?: string };
      return Response.json({ error: { name, message, code } });
    } finally {
      await session.close();
    }
  },
};

/** Armed write faults, by shard id (module state: the constructor reaches `storeSql`). */
const writeFaults = new Map<string, { at: number; writes: number }>();

/**
 * The shard as users deploy it, with two probes for the conformance suite's hooks: a write fault
 * injected into its SQL storage (the N-th INSERT, UPDATE or DELETE throws, inside the call's
 * transaction, which then rolls back), and its footprint read from its own tables.
 */
export class ProbedShard extends QueueShard<Env> {
  protected override storeSql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    const key = this.ctx.id.toString();
    const exec = (query: string, ...bindings: unknown[]) => {
      const fault = writeFaults.get(key);
      if (fault !== undefined && /^\s*(INSERT|UPDATE|DELETE)\b/i.test(query)) {
        if (++fault.writes === fault.at) {
          writeFaults.delete(key);
          throw new Error('storage write failed (injected fault)');
        }
      }
      return sql.exec(query, ...bindings);
    };
    return new Proxy(sql, {
      get: (target, prop) => (prop === 'exec' ? exec : Reflect.get(target, prop, target)),
    });
  }

  /** Test control: the `write`-th write from now on fails, once; `null` disarms. */
  testFailAtWrite(write: number | null): void {
    const key = this.ctx.id.toString();
    if (write === null) writeFaults.delete(key);
    else writeFaults.set(key, { at: write, writes: 0 });
  }

  /** Rows of the message, contents and upload tables, and the bytes of contents. */
  testFootprint(): { rows: number; bytes: number } {
    const sql = this.ctx.storage.sql;
    const count = (table: string) =>
      sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n;
    const bytes = sql
      .exec<{ n: number }>('SELECT coalesce(sum(length(data)), 0) AS n FROM chunks')
      .one().n;
    return { rows: count('messages') + count('chunks') + count('uploads'), bytes };
  }
}
