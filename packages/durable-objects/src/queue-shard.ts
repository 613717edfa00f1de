/**
 * `QueueShard`: one shard of a mailspool queue, as a SQLite-backed Durable Object.
 *
 * Every change to the shard's messages happens inside this object, one synchronous SQLite
 * transaction per call, so locks, leases and claims are single-writer by construction. Clients
 * reach it through {@link DurableObjectEngine} over Workers RPC; its public methods are that
 * wire protocol (they answer {@link Wire} values and never throw across the boundary).
 *
 * Alarms: when a due hook exists (an `onDue` override, or a `MAILSPOOL_ON_DUE` service binding),
 * the shard keeps one alarm at the moment it next has work for a relayer (see `ShardStore.nextWake`),
 * re-arms it after every change and whenever the object starts, and calls the hook when it fires.
 * A hook that throws is retried with exponential backoff.
 */

import { DurableObject } from 'cloudflare:workers';
import type { EngineOptions, MessageId } from '@mailspool/core';
import { ShardLocalEngine } from './engine.js';
import { OPERATIONS, type ReadLater, type ShardCall } from './operations.js';
import { shardIndexOfName } from './routing.js';
import { CHUNK_BYTES, migrate } from './schema.js';
import {
  type MessageChange,
  type OutboxEntry,
  ShardStore,
  type StoredRecord,
} from './shard-store.js';
import { answerSync, type Wire } from './wire.js';

/** The service binding a shard calls on its alarm when no subclass overrides `onDue`. */
export const DUE_HOOK_BINDING = 'MAILSPOOL_ON_DUE';

/** The furthest ahead a shard sets its alarm (30 days); later wake-ups are re-armed from there. */
export const MAX_ALARM_DELAY_MS = 30 * 24 * 60 * 60 * 1000;

/** How many ids a {@link DueEvent} lists at most. */
export const DUE_EVENT_IDS = 100;

/** What the due hook receives when a shard's alarm fires. */
export interface DueEvent {
  /** The shard's Durable Object id (hex). */
  readonly shard: string;
  /**
   * The shard's name (`<prefix>:<index>`): the runtime's `ctx.id.name`, or, for an instance the
   * runtime started without one (an alarm after a restart), the name the shard stored the first
   * time it learned it. `undefined` only for a shard never reached through `idFromName`.
   */
  readonly name: string | undefined;
  /** How many messages `claimDue` would take now on this shard. */
  readonly due: number;
  /**
   * The due ids in the order `claimDue` takes them (higher priority first, then oldest due), at
   * most {@link DUE_EVENT_IDS}.
   */
  readonly ids: MessageId[];
  /** 1 for a first call, n for the n-th try after the hook threw. */
  readonly attempt: number;
  /** The shard's time when the alarm ran (epoch ms). */
  readonly at: number;
}

/** A service bound as `MAILSPOOL_ON_DUE`: a `WorkerEntrypoint` with an `onDue` method. */
export interface DueHookService {
  onDue(event: DueEvent): unknown;
}

/** Expired records dropped per alarm (bounded work; the alarm comes back for the rest). */
const PRUNE_PER_ALARM = 200;
/** Outbox entries handed out per round, rounds per alarm, and deliveries running at once. */
const OUTBOX_PER_ROUND = 20;
const OUTBOX_ROUNDS = 5;
const OUTBOX_CONCURRENCY = 4;

/** Most calls one group commit runs (see `QueueShard.#group`). */
const MAX_GROUP = 64;

/** A call's entry in {@link OPERATIONS}, typed loosely for the dispatcher; `undefined` if none. */
type AnyOperation =
  | { readonly write: false; readonly run: (store: ShardStore, ...args: unknown[]) => unknown }
  | {
      readonly write: true;
      readonly run: (store: ShardStore, ...args: unknown[]) => unknown;
      readonly changed: (result: unknown) => boolean;
    };

function operationOf(call: ShardCall): AnyOperation | undefined {
  if (typeof call !== 'object' || call === null || !Array.isArray(call.args)) return undefined;
  return Object.hasOwn(OPERATIONS, call.op)
    ? (OPERATIONS[call.op] as unknown as AnyOperation)
    : undefined;
}

interface QueuedWrite {
  readonly run: () => { value: unknown; changed: boolean };
  readonly resolve: (value: unknown) => void;
}

const FAILURES = 'hook_failures';
const RETRY_AT = 'hook_retry_at';
/** Alarms in a row whose hook left due mail untouched (see `alarm`). */
const IDLE = 'hook_idle';

/**
 * One queue shard. Export it from your Worker (`export { QueueShard } from
 * '@mailspool/durable-objects'`, or a subclass that overrides {@link QueueShard.onDue}) and bind
 * it with a `new_sqlite_classes` migration; see the package README.
 */
export class QueueShard<Env = unknown> extends DurableObject<Env> {
  readonly #store: ShardStore;
  readonly #hooked: boolean;
  /** A subclass overrides `onMessageChange`: it keeps records or an outbox, so the alarm runs. */
  readonly #observed: boolean;
  /** The wake time the alarm is set for (`null`: none); `undefined` until first armed. */
  #armed: number | null | undefined;
  /** Counts committed changes, so the alarm can tell whether its hook made progress. */
  #changes = 0;
  /**
   * While the alarm handler runs: the earliest wake-up a change asked for meanwhile (`null`:
   * none yet). The handler arms last, from what it saw when it began; a message stored while it
   * awaited would otherwise lose the wake-up its commit set. `undefined` outside the handler.
   */
  #wakeDuringAlarm: number | null | undefined;
  /** `<queue>:<index>`, once known (see {@link QueueShard.shardName}). */
  #name: string | undefined;
  /** Writes waiting for the next group commit, and whether one is committing now. */
  readonly #queued: QueuedWrite[] = [];
  #committing = false;
  readonly #commits = { groups: 0, calls: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#observed = this.onMessageChange !== QueueShard.prototype.onMessageChange;
    this.#store = new ShardStore(
      this.storeSql(),
      this.#observed ? (change) => this.onMessageChange(change) : undefined,
    );
    this.#hooked = this.onDue !== QueueShard.prototype.onDue || this.#binding() !== undefined;
    // No call is served before the schema is current and the alarm matches the stored state,
    // so after a reset or a deploy no due message waits for a wake-up that was lost.
    void ctx.blockConcurrencyWhile(async () => {
      ctx.storage.transactionSync(() => {
        migrate(ctx.storage.sql);
        this.#name = this.#store.getName();
      });
      const told = this.runtimeName();
      if (told !== undefined && told !== this.#name) this.rememberName(told);
      await this.#rearm();
    });
  }

  // ---- extension points --------------------------------------------------------------------------

  /**
   * The SQL storage the shard keeps messages in: `ctx.storage.sql`. A test subclass may wrap it
   * (to fail a write on purpose, say). Called by the constructor: an override may not use fields
   * of the subclass.
   */
  protected storeSql(): SqlStorage {
    return this.ctx.storage.sql;
  }

  /**
   * Called when the alarm finds due messages. Override it in a subclass to wake your relayer
   * (for instance `await this.env.RELAYER.drain()`); the default calls the `MAILSPOOL_ON_DUE`
   * service binding's `onDue(event)` when it exists. Throw to have it retried with backoff.
   */
  protected async onDue(event: DueEvent): Promise<void> {
    await this.#binding()?.onDue(event);
  }

  /**
   * Told of every change to a message (an attempt's commit, a delete), synchronously inside the
   * change's own transaction and before it is applied: whatever it writes with
   * {@link QueueShard.keepRecord} or {@link QueueShard.enqueueOutbox} commits with the change or
   * not at all, and throwing rolls the change back (so it must not throw for anything but a
   * broken invariant). It reads meta only when it calls `change.previousMeta()`, never contents.
   * The default does nothing and costs nothing.
   */
  protected onMessageChange(_change: MessageChange): void {}

  /**
   * Delivers one outbox entry (see {@link QueueShard.enqueueOutbox}); resolve when it was
   * delivered, throw to have it tried again after `outboxRetryDelay(attempts + 1)`. Entries of
   * one stream are handed over one at a time, in order. The default throws: a subclass that
   * queues entries delivers them.
   */
  protected async deliverOutboxEntry(entry: OutboxEntry): Promise<void> {
    throw new Error(`no outbox delivery for stream ${entry.stream}: override deliverOutboxEntry`);
  }

  /** Delay before the `attempt`-th retry of an outbox entry (default: `retryDelay`). */
  protected outboxRetryDelay(attempt: number): number {
    return this.retryDelay(attempt);
  }

  /**
   * Keeps `data` as the record of message `id` until `expiresAt` (shard time; `null`: until
   * replaced), replacing any. Call it from {@link QueueShard.onMessageChange} (or inside a
   * `transactionSync`), so that it commits with what it describes. Expired records are dropped
   * by the alarm, a bounded number per run, and never read back.
   */
  protected keepRecord(id: MessageId, data: string, expiresAt: number | null): void {
    this.#store.keepRecord(id, data, expiresAt);
  }

  /** The record of `id` (see {@link QueueShard.keepRecord}), unless it has expired. */
  protected readRecord(id: MessageId): StoredRecord | undefined {
    return this.#store.readRecord(id, this.#now());
  }

  /**
   * Queues `body` on the outbox stream `stream`, due after `delayMs` (default: at once):
   * delivered at least once by the alarm through {@link QueueShard.deliverOutboxEntry}, in order
   * within the stream, retried with backoff until it succeeds. Call it like
   * {@link QueueShard.keepRecord}.
   */
  protected enqueueOutbox(stream: string, body: string, delayMs = 0): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new TypeError('delayMs must be >= 0');
    const now = this.#now();
    this.#store.enqueue(stream, body, now, now + delayMs);
  }

  /** The shard's time (epoch ms): the wall clock plus {@link QueueShard.clockOffset}. */
  protected shardTime(): number {
    return this.#now();
  }

  /**
   * The name the runtime gave this instance (`ctx.id.name`): set when a request reached it through
   * `idFromName`, missing when the runtime started it for an alarm. Tests override it to start an
   * instance as an alarm would.
   */
  protected runtimeName(): string | undefined {
    return this.ctx.id.name;
  }

  /**
   * Delay before the `attempt`-th retry of a failed hook, and before due mail the hook left
   * untouched is offered again: 1 s doubling up to 5 min.
   */
  protected retryDelay(attempt: number): number {
    return Math.min(1000 * 2 ** Math.max(0, attempt - 1), 5 * 60 * 1000);
  }

  /**
   * How far the shard's alarm clock runs ahead of the wall clock, in ms (default 0). Message times
   * come from the callers' clocks; only alarms read the shard's own time, `Date.now()` plus this.
   * Tests override it to move a shard through time without sleeping.
   */
  protected clockOffset(): number {
    return 0;
  }

  #now(): number {
    return Date.now() + this.clockOffset();
  }

  /**
   * The shard's name (`<queue>:<index>`), known even in an instance that the runtime started
   * without `ctx.id.name` (an alarm after a restart): the shard stores it the first time it
   * learns it. `undefined` for a shard that was never reached through `idFromName`.
   */
  protected get shardName(): string | undefined {
    return this.#name;
  }

  /**
   * How many group commits this instance made and how many write calls they held (since it
   * started; `calls / groups` is the average group size), and how many writes wait for the next.
   */
  protected get commitStats(): {
    readonly groups: number;
    readonly calls: number;
    readonly waiting: number;
  } {
    return { ...this.#commits, waiting: this.#queued.length };
  }

  /**
   * Resolves when the group just run is durable: `storage.sync()`. Until then, arriving writes
   * wait for the next group. Tests override it to hold a commit open while they queue writes.
   */
  protected groupCommitted(): Promise<void> {
    return this.ctx.storage.sync();
  }

  /**
   * Stores the shard's name, for a subclass that found it another way (for example by matching
   * `ctx.id` against `idFromName` of the names it expects). Read back on every start.
   */
  protected rememberName(name: string): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('name must be a string');
    this.ctx.storage.transactionSync(() => this.#store.setName(name));
    this.#name = name;
  }

  /**
   * An engine over this shard alone, called in-process with no RPC: what a due hook uses to
   * relay the shard's own due mail. Its claims, lists and stats see only this shard, an id of
   * another shard answers as unknown, and new messages (an attempt's bounce) are stored here.
   * `undefined` while the shard does not know its name (see {@link QueueShard.shardName}).
   */
  protected localEngine(options: EngineOptions = {}): ShardLocalEngine | undefined {
    const index = shardIndexOfName(this.#name);
    return index === undefined ? undefined : new ShardLocalEngine(this, index, options);
  }

  #binding(): DueHookService | undefined {
    const binding = (this.env as Record<string, unknown> | undefined)?.[DUE_HOOK_BINDING];
    return binding !== undefined && binding !== null ? (binding as DueHookService) : undefined;
  }

  // ---- the wire protocol (called by DurableObjectEngine) -----------------------------------------

  /**
   * The one RPC method: runs `calls` in order, each as its own transaction with its own answer
   * (one failing changes nothing for the others), and re-arms the alarm once for all of them.
   * Calls that write run in the next group commit (see `#group`); a batch of reads only is
   * answered at once. `readContents` calls share `answerBytes`: each reads at most what is left
   * of it (at least a chunk), and one that finds less than a chunk left answers
   * {@link ReadLater}, so the whole answer stays within the budget the client chose (below the
   * RPC size limit).
   */
  call(calls: readonly ShardCall[], answerBytes: number): Promise<Wire<unknown>[]> {
    if (!Array.isArray(calls)) return Promise.resolve([]);
    const run = () => this.#run(calls, answerBytes);
    return calls.some((call) => operationOf(call)?.write === true)
      ? this.#group(run)
      : Promise.resolve(run().value);
  }

  #run(
    calls: readonly ShardCall[],
    answerBytes: number,
  ): { value: Wire<unknown>[]; changed: boolean } {
    let left = Number.isSafeInteger(answerBytes) ? answerBytes : 0;
    let changed = false;
    const value = calls.map((call): Wire<unknown> => {
      const operation = operationOf(call);
      if (operation === undefined) {
        return answerSync(() => {
          throw new TypeError(`unknown shard operation ${String((call as { op?: unknown })?.op)}`);
        });
      }
      if (call.op === 'readContents') {
        if (left < CHUNK_BYTES) return { ok: { later: true } satisfies ReadLater };
        const [id, offset, length, version] = call.args;
        const budget = left - (left % CHUNK_BYTES);
        const wire = answerSync(() =>
          this.#store.readContents(id, offset, Math.min(length, budget), version),
        );
        if ('ok' in wire && 'bytes' in wire.ok) left -= wire.ok.bytes.byteLength;
        return wire;
      }
      if (call.op === 'claimDueMessages') {
        // The claimed contents share the answer budget with the batch's contents reads.
        const [limit, ttl, now] = call.args;
        const wire = answerSync(() =>
          this.ctx.storage.transactionSync(() =>
            this.#store.claimDueMessages(limit, ttl, now, Math.max(0, left)),
          ),
        );
        if ('ok' in wire) {
          left -= wire.ok.bytes;
          if (wire.ok.claimed.length > 0) changed = true;
        }
        return wire;
      }
      const run = () => operation.run(this.#store, ...call.args);
      if (!operation.write) return answerSync(run);
      const wire = answerSync(() => this.ctx.storage.transactionSync(run));
      if ('ok' in wire && operation.changed(wire.ok)) changed = true;
      return wire;
    });
    return { value, changed };
  }

  // ---- alarms ----------------------------------------------------------------------------------

  /**
   * Runs the due hook when messages are due, then arms the next wake-up. Every way out leaves
   * one: nothing due → the next due time or lock expiry; the hook threw → a retry with backoff;
   * the hook made progress (it changed the shard, or fewer messages are due than before) but
   * mail is still due → now, so a backlog is handed on alarm by alarm; the hook left due mail
   * untouched → again after a growing delay (`retryDelay`), or earlier when something else
   * becomes due. Due mail is never left waiting for a wake-up that will not come.
   */
  override async alarm(): Promise<void> {
    if (!this.#hooked && !this.#observed) {
      this.#armed = null;
      return;
    }
    this.ctx.storage.transactionSync(() => this.#store.pruneRecords(this.#now(), PRUNE_PER_ALARM));
    // If the due part fails unexpectedly, due mail still gets a wake-up (the runtime also
    // retries a throwing alarm).
    let next = this.#hooked ? this.#store.nextWake(this.#now(), false) : null;
    this.#wakeDuringAlarm = null;
    try {
      if (this.#hooked) next = await this.#dueAlarm();
    } finally {
      // After the due hook, so that notifications never hold up due mail; the wake-up is armed
      // after both, from what each left and what changes made meanwhile asked for.
      await this.#deliverOutbox();
      let asked: number | null | undefined = this.#wakeDuringAlarm;
      this.#wakeDuringAlarm = undefined;
      // A hook that failed after changing the shard still backs off.
      if (asked != null && this.#store.getState(FAILURES) > 0) {
        asked = Math.max(asked, this.#store.getState(RETRY_AT));
      }
      await this.#arm(
        earliest(earliest(next, this.#store.nextHousekeeping()), asked ?? null),
        true,
      );
    }
  }

  /**
   * The due part of the alarm: calls the hook when mail is due and answers when due mail next
   * needs a wake-up (`null`: never), as the rules above say.
   */
  async #dueAlarm(): Promise<number | null> {
    const now = this.#now();
    const { count, ids } = this.#store.dueSummary(now, DUE_EVENT_IDS);
    if (count === 0) return this.#store.nextWake(now, false);
    const failures = this.#store.getState(FAILURES);
    // A shard with records or an outbox is also woken for them, so it can be woken while a
    // failed hook backs off: the hook then waits its turn.
    const backoff = this.#store.getState(RETRY_AT);
    if (this.#observed && failures > 0 && now < backoff) return backoff;
    const before = this.#changes;
    try {
      await this.onDue({
        shard: this.ctx.id.toString(),
        name: this.#name,
        due: count,
        ids,
        attempt: failures + 1,
        at: now,
      });
    } catch (error) {
      const retryAt = now + this.retryDelay(failures + 1);
      this.ctx.storage.transactionSync(() => {
        this.#store.setState(FAILURES, failures + 1);
        this.#store.setState(RETRY_AT, retryAt);
      });
      console.warn(`mailspool: due hook failed (attempt ${failures + 1}); retrying`, error);
      return retryAt;
    }
    const later = this.#now();
    const left = this.#store.dueSummary(later, 0).count;
    const progressed = this.#changes !== before || left < count;
    const idleBefore = this.#store.getState(IDLE);
    const idle = progressed ? 0 : idleBefore + 1;
    if (failures > 0 || idle !== idleBefore) {
      this.ctx.storage.transactionSync(() => {
        this.#store.setState(FAILURES, 0);
        this.#store.setState(RETRY_AT, 0);
        this.#store.setState(IDLE, idle);
      });
    }
    if (left === 0 || progressed) return this.#store.nextWake(later, false);
    const again = now + this.retryDelay(idle);
    const sooner = this.#store.nextWake(later, true);
    return sooner === null ? again : Math.min(again, sooner);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  /** The next wake-up for due mail (`ShardStore.nextWake`) or for housekeeping, whichever first. */
  #wake(now: number, futureOnly: boolean): number | null {
    return earliest(this.#store.nextWake(now, futureOnly), this.#store.nextHousekeeping());
  }

  /**
   * Hands due outbox entries to `deliverOutboxEntry`, the first of each stream, a few at once,
   * and records each outcome (delivered: dropped; failed: retried later). Bounded rounds, and
   * none after a round with a failure: what is left is due again at once (the next alarm comes
   * right back for it) or waits for its backoff.
   */
  async #deliverOutbox(): Promise<void> {
    for (let round = 0; round < OUTBOX_ROUNDS; round++) {
      const entries = this.#store.outboxDue(this.#now(), OUTBOX_PER_ROUND);
      if (entries.length === 0) return;
      let next = 0;
      let failed = false;
      const worker = async (): Promise<void> => {
        while (next < entries.length) {
          const entry = entries[next++]!;
          let delivered = false;
          try {
            await this.deliverOutboxEntry(entry);
            delivered = true;
          } catch (error) {
            failed = true;
            console.warn(
              `mailspool: outbox entry ${entry.seq} (${entry.stream}) failed (attempt ${entry.attempts + 1}); retrying`,
              error,
            );
          }
          this.ctx.storage.transactionSync(() => {
            if (delivered) this.#store.outboxDone(entry.seq);
            else {
              const at = this.#now() + this.outboxRetryDelay(entry.attempts + 1);
              this.#store.outboxRetry(entry.seq, at);
            }
          });
        }
      };
      await Promise.all(
        Array.from({ length: Math.min(OUTBOX_CONCURRENCY, entries.length) }, worker),
      );
      // A failure most likely means the receiver is down: leave the rest to their backoff
      // rather than wait on it again in this alarm.
      if (failed) return;
    }
  }

  /**
   * Group commit. A write that arrives while no group is committing runs at once. Writes that
   * arrive while one is (from any session or caller) wait, and then all run together in one
   * synchronous turn, each in its own transaction with its own answer, so the runtime commits
   * them as one. Every caller is answered once its group is durable. A call waits at most for the
   * commit in flight, and a group holds at most `MAX_GROUP` calls.
   */
  #group<T>(run: () => { value: T; changed: boolean }): Promise<T> {
    return new Promise<T>((resolve) => {
      this.#queued.push({ run, resolve: resolve as (value: unknown) => void });
      if (!this.#committing) void this.#commitGroups();
    });
  }

  async #commitGroups(): Promise<void> {
    this.#committing = true;
    try {
      while (this.#queued.length > 0) {
        const group = this.#queued.splice(0, MAX_GROUP);
        this.#commits.groups++;
        this.#commits.calls += group.length;
        let changed = false;
        const answers = group.map((call) => {
          const result = call.run();
          changed ||= result.changed;
          return result.value;
        });
        if (changed) {
          this.#changes++;
          await this.#rearm();
        }
        // Answered at once: the output gate holds every answer until the writes before it are
        // durable, so no caller learns of a write a crash could undo. `sync()` only tells when
        // this group's commit is done and the next group may run.
        group.forEach((call, i) => {
          call.resolve(answers[i]);
        });
        try {
          await this.groupCommitted();
        } catch (error) {
          // A failed commit breaks the object: the runtime resets it and its callers see the
          // RPC fail (UNAVAILABLE), so there is nothing left to answer here.
          console.warn('mailspool: a shard commit failed', error);
        }
      }
    } finally {
      this.#committing = false;
    }
  }

  /** Arms the alarm for the current state, respecting a failed hook's backoff. */
  async #rearm(): Promise<void> {
    if (!this.#hooked && !this.#observed) return;
    const now = this.#now();
    if (!this.#hooked) {
      await this.#arm(this.#store.nextHousekeeping(), this.#armed === undefined);
      return;
    }
    let next = this.#wake(now, false);
    if (next !== null && this.#store.getState(FAILURES) > 0) {
      next = Math.max(next, this.#store.getState(RETRY_AT));
    }
    if (this.#wakeDuringAlarm !== undefined) {
      this.#wakeDuringAlarm = earliest(this.#wakeDuringAlarm, next);
    }
    await this.#arm(next, this.#armed === undefined);
  }

  /** Sets the alarm for wake time `next` (the shard's time; `null`: none), unless already so. */
  async #arm(next: number | null, force: boolean): Promise<void> {
    if (!force && next === this.#armed) return;
    this.#armed = next;
    try {
      if (next === null) await this.ctx.storage.deleteAlarm();
      // A time already past fires at once. A wake-up further away than MAX_ALARM_DELAY_MS (a
      // message parked with a retry time at the end of time, say) is set at that horizon
      // instead: the runtime refuses alarms past 2189, and an early alarm only re-arms itself.
      else {
        const horizon = Date.now() + MAX_ALARM_DELAY_MS;
        await this.ctx.storage.setAlarm(Math.min(next - this.clockOffset(), horizon));
      }
    } catch (error) {
      // The write is committed; a failed alarm write is retried by the next change or start.
      this.#armed = undefined;
      console.warn('mailspool: could not set the shard alarm', error);
    }
  }
}

/** The earlier of two wake times; `null` means none. */
function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
