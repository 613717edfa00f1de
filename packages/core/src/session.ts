// Sessions are AsyncDisposable (`await using`). The declarations carry the lib they need, so a
// consumer whose `lib` lacks ESNext.Disposable (and skipLibCheck off) still typechecks them.
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * `BaseSession`: the public half of every session. It checks that the session is open, validates
 * and normalises every argument, reads the clock, and then calls a protected `_primitive` that
 * the engine implements against its store (abstract-level's pattern). Engines therefore never
 * re-validate and always receive well-formed ids, copied meta, bytes and an explicit `now`.
 */
import { type Clock, systemClock } from './clock.js';
import { ErrorCode, isMailspoolError, MailspoolError } from './errors.js';
import { assertMessageId, describe, newMessageId } from './ids.js';
import { describeRecord, type MessageRecord, notFound, PRIORITY_RANK } from './record.js';
import type {
  AttemptOutcome,
  ChangeEvent,
  ClaimDueOptions,
  ClaimedMessage,
  DeleteManyResult,
  FenceOptions,
  Lease,
  MessageContents,
  MessageId,
  MessageInfo,
  MessageMeta,
  MetaValue,
  QueueStats,
  StorageSession,
  StoreMessageInput,
} from './types.js';
import {
  assertLimit,
  assertMetaKey,
  assertTime,
  assertTtl,
  fenceOf,
  normalizeContents,
  normalizeLease,
  normalizeMeta,
  normalizeMetaValue,
  normalizeMetaWithJson,
} from './validate.js';

/** The default and minimum contents limit the contract promises: 25 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

/** How many random ids `claimMessageId` tries before giving up (a collision of 128-bit ids is already absurd). */
const CLAIM_ATTEMPTS = 8;

/**
 * Where new messages belong, for engines that place them (shards; see `BaseSession._newId`):
 * one object per call that makes ids, shared by all of them. `near` is set for the messages an
 * attempt stores (`commitAttempt`'s `store`, a bounce): the id of the message leased.
 */
export interface IdPlacement {
  readonly near?: MessageId;
}

/** A message validated and ready to write, as `_storeMessages` receives it. */
export interface PreparedMessage {
  readonly id: MessageId;
  readonly meta: MessageMeta;
  /** `meta` as JSON (made by the size check; for engines that store meta as JSON). */
  readonly metaJson: string;
  /** The engine's own bytes: a copy of the caller's, exactly their length, safe to keep. */
  readonly contents: Uint8Array;
  readonly retryAt: number | null;
  /** The priority's rank (`PRIORITY_RANK`): 0 is claimed first. */
  readonly priority: number;
}

/** The leased message's part of a validated {@link AttemptOutcome}, as `_commitAttempt` receives it. */
export interface AttemptChange {
  readonly delete: boolean;
  readonly meta: MessageMeta | undefined;
  readonly retryAt: number | undefined;
  /** Drop the lock (always false with `delete`). */
  readonly release: boolean;
}

/** Which ids `_listMessages` returns. */
export type ListKind = 'all' | 'active' | 'deferred';

/** What every `BaseSession` needs from its engine. */
export interface SessionConfig {
  /** Where time comes from; the wall clock by default. */
  readonly clock?: Clock;
  /** Largest contents in bytes (`TOO_LARGE` above); 25 MiB by default. */
  readonly maxMessageBytes?: number;
  /**
   * Called with each change once the primitive that made it has committed (never for a call that
   * failed, never with an empty `ids`). Engines with `subscribe()` pass their listener registry
   * here instead of emitting themselves.
   */
  readonly onChange?: (event: ChangeEvent) => void;
}

/** Symbol.asyncDispose where the runtime has it; a registered symbol stands in elsewhere. */
const asyncDispose: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose);

/**
 * Base class of engine sessions. Subclasses implement the `_` primitives; each must be atomic
 * (one transaction) and must leave the store unchanged when it throws.
 */
export abstract class BaseSession implements StorageSession {
  readonly #clock: Clock;
  readonly #maxMessageBytes: number;
  readonly #onChange: ((event: ChangeEvent) => void) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(config: SessionConfig = {}) {
    this.#clock = config.clock ?? systemClock;
    this.#maxMessageBytes = config.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#onChange = config.onChange;
  }

  // ---- primitives an engine implements -------------------------------------------------------

  /**
   * Generates an id; engines that place messages (shards) override it to route by id. Every id
   * made for one call (a `storeMessages` batch, an attempt's `store`) gets the same `placement`,
   * so an engine can keep them together; `placement.near` is the leased message of an attempt.
   */
  protected _newId(_placement: IdPlacement): MessageId {
    return newMessageId();
  }
  /** Creates an empty record for `id`; `false` when the id is taken. */
  protected abstract _claimMessageId(id: MessageId, now: number): Promise<boolean>;
  /** Stores all messages in one atomic step. */
  protected abstract _storeMessages(
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void>;
  /** The meta, `{}` when none was written. `NOT_FOUND`. */
  protected abstract _getMessageMeta(id: MessageId): Promise<MessageMeta>;
  /** Replaces the meta. `NOT_FOUND`, or `STALE_LEASE` when `lease` is given and not current. */
  protected abstract _setMessageMeta(
    id: MessageId,
    meta: MessageMeta,
    lease: Lease | undefined,
  ): Promise<void>;
  /** Sets (or with `undefined` deletes) one key, atomically. Same errors as `_setMessageMeta`, plus `TOO_LARGE`. */
  protected abstract _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ): Promise<void>;
  /** The contents. `NOT_FOUND` (also while none were written). */
  protected abstract _getMessageContents(id: MessageId): Promise<Uint8Array>;
  /** Writes the contents (the engine copies them if it keeps the array). `NOT_FOUND`. */
  protected abstract _setMessageContents(id: MessageId, contents: Uint8Array): Promise<void>;
  /** Sets the retry time. `NOT_FOUND`, `STALE_LEASE`. */
  protected abstract _setMessageRetry(
    id: MessageId,
    at: number,
    lease: Lease | undefined,
  ): Promise<void>;
  /** Locks with the next token, or `null` when an unexpired lock is held. `NOT_FOUND`. */
  protected abstract _lockMessage(id: MessageId, ttl: number, now: number): Promise<Lease | null>;
  /** Drops any lock; `false` (and no change) when unlocked or unknown. */
  protected abstract _unlockMessage(id: MessageId): Promise<boolean>;
  /** Extends a current lease. `STALE_LEASE`. */
  protected abstract _renewLease(lease: Lease, ttl: number, now: number): Promise<Lease>;
  /** Drops the lock of a current lease. `STALE_LEASE`. */
  protected abstract _releaseLease(lease: Lease): Promise<void>;
  /**
   * Deletes the record and its contents; `false` for an unknown id without a lease, `STALE_LEASE`
   * with a lease that is not current.
   */
  protected abstract _deleteMessage(id: MessageId, lease: Lease | undefined): Promise<boolean>;
  /**
   * Applies `change` to the leased message and stores `messages`, in one atomic step, while
   * `lease` is current (`STALE_LEASE` otherwise, changing nothing).
   */
  protected abstract _commitAttempt(
    lease: Lease,
    change: AttemptChange,
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void>;
  /** Deletes those whose lease is current, in one step. */
  protected abstract _deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult>;
  /** Lists ids by state (see the rules in record.ts). */
  protected abstract _listMessages(
    kind: ListKind,
    now: number,
    dueBy: number | undefined,
  ): Promise<MessageId[]>;
  /** Leases up to `limit` due messages, oldest due first, atomically. */
  protected abstract _claimDue(limit: number, ttl: number, now: number): Promise<Lease[]>;
  /**
   * Like `_claimDue`, and reads each claimed message's meta and contents in the same step. The
   * default claims, then reads each message (two steps; a message deleted in between is left
   * out): engines override it to do both in one transaction.
   */
  protected async _claimDueMessages(
    limit: number,
    ttl: number,
    now: number,
  ): Promise<ClaimedMessage[]> {
    const leases = await this._claimDue(limit, ttl, now ?? this.currentTime());
    const claimed = await Promise.all(
      leases.map(async (lease) => {
        try {
          const [meta, contents] = await Promise.all([
            this._getMessageMeta(lease.id),
            this._getMessageContents(lease.id),
          ]);
          return { ...lease, meta, contents };
        } catch (error) {
          // Deleted between the claim and the read (an operator's unfenced delete): nothing to
          // deliver. Any other failure is the caller's to see.
          if (isMailspoolError(error, ErrorCode.NOT_FOUND)) return undefined;
          throw error;
        }
      }),
    );
    return claimed.filter((message) => message !== undefined);
  }
  /** Counts by state. */
  protected abstract _stats(now: number): Promise<QueueStats>;
  /** The record of `id` (meta included, contents not), or `undefined` when there is none. */
  protected abstract _inspect(id: MessageId): Promise<MessageRecord | undefined>;
  /** See `nextDueAt()`; the rule is `claimableAt` in record.ts, minimised over the store. */
  protected abstract _nextDueAt(now: number): Promise<number | null>;
  /** Releases what the session holds; called once. */
  protected abstract _close(): Promise<void>;

  // ---- the public contract --------------------------------------------------------------------

  /** `true` once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = this._close();
    }
    return this.#closing;
  }

  async [asyncDispose](): Promise<void> {
    await this.close();
  }

  async getActiveMessages(): Promise<MessageId[]> {
    this.assertOpen();
    return this._listMessages('active', this.currentTime(), undefined);
  }

  async getDeferredMessages(dueBy?: number): Promise<MessageId[]> {
    this.assertOpen();
    if (dueBy !== undefined) assertTime(dueBy, 'dueBy');
    return this._listMessages('deferred', this.currentTime(), dueBy);
  }

  async getAllMessages(): Promise<MessageId[]> {
    this.assertOpen();
    return this._listMessages('all', this.currentTime(), undefined);
  }

  async claimMessageId(): Promise<MessageId> {
    this.assertOpen();
    const now = this.currentTime();
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const id = this._newId({});
      if (await this._claimMessageId(id, now)) {
        this.changed('stored', [id]);
        return id;
      }
    }
    throw new MailspoolError(ErrorCode.UNAVAILABLE, `no free id after ${CLAIM_ATTEMPTS} attempts`);
  }

  async setMessageMeta(id: MessageId, meta: MessageMeta, options?: FenceOptions): Promise<void> {
    this.assertOpen();
    assertMessageId(id);
    const normalized = normalizeMeta(meta);
    await this._setMessageMeta(id, normalized, fenceOf(id, options));
    this.changed('updated', [id]);
  }

  async setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    options?: FenceOptions,
  ): Promise<void> {
    this.assertOpen();
    assertMessageId(id);
    assertMetaKey(key);
    const normalized = value === undefined ? undefined : normalizeMetaValue(value, key);
    await this._setMessageMetaKey(id, key, normalized, fenceOf(id, options));
    this.changed('updated', [id]);
  }

  async getMessageMeta(id: MessageId): Promise<MessageMeta> {
    this.assertOpen();
    assertMessageId(id);
    return this._getMessageMeta(id);
  }

  async getMessageMetaKey(id: MessageId, key: string): Promise<MetaValue | undefined> {
    this.assertOpen();
    assertMessageId(id);
    assertMetaKey(key);
    const meta = await this._getMessageMeta(id);
    return Object.hasOwn(meta, key) ? meta[key] : undefined;
  }

  async setMessageContents(id: MessageId, contents: MessageContents): Promise<void> {
    this.assertOpen();
    assertMessageId(id);
    await this._setMessageContents(id, ownedContents(contents, this.#maxMessageBytes));
    this.changed('updated', [id]);
  }

  async getMessageContents(id: MessageId): Promise<Uint8Array> {
    this.assertOpen();
    assertMessageId(id);
    return this._getMessageContents(id);
  }

  async setMessageRetry(id: MessageId, at: number, options?: FenceOptions): Promise<void> {
    this.assertOpen();
    assertMessageId(id);
    assertTime(at, 'at');
    await this._setMessageRetry(id, at, fenceOf(id, options));
    this.changed('updated', [id]);
  }

  async lockMessage(id: MessageId, ttl: number): Promise<boolean> {
    this.assertOpen();
    assertMessageId(id);
    assertTtl(ttl);
    const lease = await this._lockMessage(id, ttl, this.currentTime());
    if (lease === null) return false;
    this.changed('updated', [id]);
    return true;
  }

  async unlockMessage(id: MessageId): Promise<void> {
    this.assertOpen();
    assertMessageId(id);
    if (await this._unlockMessage(id)) this.changed('updated', [id]);
  }

  async deleteMessage(id: MessageId, options?: FenceOptions): Promise<void> {
    this.assertOpen();
    assertMessageId(id);
    if (await this._deleteMessage(id, fenceOf(id, options))) this.changed('deleted', [id]);
  }

  async storeMessage(input: StoreMessageInput): Promise<MessageId> {
    const [id] = await this.storeMessages([input]);
    return id!;
  }

  async storeMessages(inputs: readonly StoreMessageInput[]): Promise<MessageId[]> {
    this.assertOpen();
    if (!Array.isArray(inputs))
      throw new TypeError(`storeMessages needs an array, got ${describe(inputs)}`);
    // Validate everything before writing anything: a batch is stored whole or not at all.
    const placement: IdPlacement = {};
    const prepared = inputs.map((input) => this.prepareMessage(input, placement));
    const ids = prepared.map((message) => message.id);
    if (prepared.length > 0) {
      await this._storeMessages(prepared, this.currentTime());
      this.changed('stored', ids);
    }
    return ids;
  }

  async acquireLease(id: MessageId, ttl: number): Promise<Lease | null> {
    this.assertOpen();
    assertMessageId(id);
    assertTtl(ttl);
    const lease = await this._lockMessage(id, ttl, this.currentTime());
    if (lease !== null) this.changed('updated', [id]);
    return lease;
  }

  async renewLease(lease: Lease, ttl: number): Promise<Lease> {
    this.assertOpen();
    const normalized = normalizeLease(lease);
    assertTtl(ttl);
    const renewed = await this._renewLease(normalized, ttl, this.currentTime());
    this.changed('updated', [renewed.id]);
    return renewed;
  }

  async releaseLease(lease: Lease): Promise<void> {
    this.assertOpen();
    const normalized = normalizeLease(lease);
    await this._releaseLease(normalized);
    this.changed('updated', [normalized.id]);
  }

  async claimDue(options: ClaimDueOptions): Promise<Lease[]> {
    const { limit, ttl, now } = this.#claimOptions(options);
    if (limit === 0) return [];
    const leases = await this._claimDue(limit, ttl, now ?? this.currentTime());
    this.changed(
      'updated',
      leases.map((lease) => lease.id),
    );
    return leases;
  }

  async claimDueMessages(options: ClaimDueOptions): Promise<ClaimedMessage[]> {
    const { limit, ttl, now } = this.#claimOptions(options);
    if (limit === 0) return [];
    const claimed = await this._claimDueMessages(limit, ttl, now ?? this.currentTime());
    this.changed(
      'updated',
      claimed.map((message) => message.id),
    );
    return claimed;
  }

  #claimOptions(options: ClaimDueOptions): { limit: number; ttl: number; now?: number } {
    this.assertOpen();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`claimDue needs { limit, ttl, now? }, got ${describe(options)}`);
    }
    const { limit, ttl, now } = options;
    assertLimit(limit);
    assertTtl(ttl);
    if (now !== undefined) assertTime(now, 'now');
    return { limit, ttl, now };
  }

  async commitAttempt(lease: Lease, outcome: AttemptOutcome): Promise<MessageId[]> {
    this.assertOpen();
    const normalized = normalizeLease(lease);
    if (typeof outcome !== 'object' || outcome === null) {
      throw new TypeError(`commitAttempt needs an outcome object, got ${describe(outcome)}`);
    }
    const { delete: remove = false, meta, retryAt, keepLease = false, store = [] } = outcome;
    if (typeof remove !== 'boolean' || typeof keepLease !== 'boolean') {
      throw new TypeError('outcome.delete and outcome.keepLease must be booleans');
    }
    if (remove && (meta !== undefined || retryAt !== undefined || keepLease)) {
      throw new TypeError(
        'an outcome that deletes the message can not also set meta, retryAt or keepLease',
      );
    }
    if (retryAt !== undefined) assertTime(retryAt, 'outcome.retryAt');
    const change: AttemptChange = {
      delete: remove,
      meta: meta === undefined ? undefined : normalizeMeta(meta),
      retryAt,
      release: !remove && !keepLease,
    };
    if (!Array.isArray(store))
      throw new TypeError(`outcome.store must be an array, got ${describe(store)}`);
    const placement: IdPlacement = { near: normalized.id };
    const messages = store.map((input) => this.prepareMessage(input, placement));
    await this._commitAttempt(normalized, change, messages, this.currentTime());
    const stored = messages.map((message) => message.id);
    this.changed(remove ? 'deleted' : 'updated', [normalized.id]);
    this.changed('stored', stored);
    return stored;
  }

  async deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult> {
    this.assertOpen();
    if (!Array.isArray(leases))
      throw new TypeError(`deleteMessages needs an array of leases, got ${describe(leases)}`);
    const normalized = leases.map(normalizeLease);
    const ids = new Set<string>();
    for (const lease of normalized) {
      if (ids.has(lease.id)) throw new TypeError(`deleteMessages got two leases for ${lease.id}`);
      ids.add(lease.id);
    }
    if (normalized.length === 0) return { deleted: [], stale: [] };
    const result = await this._deleteMessages(normalized);
    this.changed('deleted', result.deleted);
    return result;
  }

  async stats(): Promise<QueueStats> {
    this.assertOpen();
    return this._stats(this.currentTime());
  }

  async inspect(id: MessageId): Promise<MessageInfo> {
    this.assertOpen();
    assertMessageId(id);
    const record = await this._inspect(id);
    if (record === undefined) throw notFound(id);
    return describeRecord(record, this.currentTime());
  }

  async nextDueAt(): Promise<number | null> {
    this.assertOpen();
    return this._nextDueAt(this.currentTime());
  }

  // ---- helpers --------------------------------------------------------------------------------

  /**
   * Announces a committed change to the engine's listeners (`SessionConfig.onChange`); for
   * engine-specific methods of subclasses. Nothing is announced for an empty `ids`.
   */
  protected changed(type: ChangeEvent['type'], ids: readonly MessageId[]): void {
    if (ids.length > 0) this.#onChange?.({ type, ids });
  }

  /** Rejects with `SESSION_CLOSED` after `close()`; for engine-specific methods of subclasses. */
  protected assertOpen(): void {
    if (this.#closed) throw new MailspoolError(ErrorCode.SESSION_CLOSED, 'the session is closed');
  }

  /** The clock's time, checked to be a finite number; for engine-specific methods of subclasses. */
  protected currentTime(): number {
    const now = this.#clock.now();
    assertTime(now, 'clock.now()');
    return now;
  }

  /**
   * Validates one message to store (`TypeError`, `TOO_LARGE`) and gives it a new id; for
   * engine-specific store methods of subclasses.
   */
  protected prepareMessage(input: StoreMessageInput, placement: IdPlacement = {}): PreparedMessage {
    if (typeof input !== 'object' || input === null) {
      throw new TypeError(
        `a message to store must be { meta, contents, retryAt? }, got ${describe(input)}`,
      );
    }
    const { meta, json: metaJson } = normalizeMetaWithJson(input.meta);
    const contents = ownedContents(input.contents, this.#maxMessageBytes);
    if (input.retryAt !== undefined) assertTime(input.retryAt, 'retryAt');
    const priority = input.priority ?? 'normal';
    if (!Object.hasOwn(PRIORITY_RANK, priority)) {
      throw new TypeError(`priority must be 'high', 'normal' or 'bulk', got ${describe(priority)}`);
    }
    return {
      id: this._newId(placement),
      meta,
      metaJson,
      contents,
      retryAt: input.retryAt ?? null,
      priority: PRIORITY_RANK[priority],
    };
  }
}

/**
 * The contents as bytes the engine may keep: strings are encoded (a new array), caller's arrays
 * copied, so a caller that reuses its buffer never changes stored mail and a view never drags a
 * larger buffer into storage.
 */
function ownedContents(contents: unknown, maxBytes: number): Uint8Array {
  const bytes = normalizeContents(contents, maxBytes);
  return typeof contents === 'string' ? bytes : new Uint8Array(bytes);
}
