// Sessions are AsyncDisposable (`await using`). The declarations carry the lib they need, so a
// consumer whose `lib` lacks ESNext.Disposable (and skipLibCheck off) still typechecks them.
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * The storage-session contract (slimta's, made precise): the types every engine implements.
 * See docs/contract.md for the seed → TypeScript mapping and the state diagram.
 */
import type { Clock } from './clock.js';

/** An opaque id: 1–128 characters of `[A-Za-z0-9._~-]`. Engines may encode routing in it. */
export type MessageId = string;

/** A meta value; it round-trips exactly (a number stays a number, an array stays an array). */
export type MetaValue = string | number | boolean | null | readonly string[];

/** Flat key/value meta of a message (the seed's `to_meta()` table). */
export type MessageMeta = Readonly<Record<string, MetaValue>>;

/** Contents as written: bytes, or a string stored as UTF-8. They are read back as bytes. */
export type MessageContents = Uint8Array | string;

/**
 * A lease: the right to act on a message until someone else locks it.
 * `token` strictly increases every time anyone locks the message and never goes back.
 */
export interface Lease {
  readonly id: MessageId;
  readonly token: number;
  /** Epoch ms at which the lock stops keeping others out (the lease may still be current after it). */
  readonly expiresAt: number;
}

/** The last argument of fenced writes. */
export interface FenceOptions {
  /** When given, the write happens only while this lease is current; otherwise `STALE_LEASE`. */
  readonly lease?: Lease;
}

/**
 * How urgent a message is. Among the messages due, `claimDue` takes every `high` one before any
 * `normal` one, and those before `bulk`: a password reset is not stuck behind a newsletter.
 */
export type Priority = 'high' | 'normal' | 'bulk';

/** One message for {@link StorageSession.storeMessage}. */
export interface StoreMessageInput {
  readonly meta: MessageMeta;
  readonly contents: MessageContents;
  /** First attempt no earlier than this (epoch ms). Absent: due at once. */
  readonly retryAt?: number;
  /** Default `'normal'`. */
  readonly priority?: Priority;
}

/** Arguments of {@link StorageSession.claimDue}. */
export interface ClaimDueOptions {
  /** At most this many leases (an integer ≥ 0). */
  readonly limit: number;
  /** Lock duration in ms (> 0). */
  readonly ttl: number;
  /** Judge "due" at this time instead of the clock's. */
  readonly now?: number;
}

/** A lease from `claimDueMessages`, with what a relayer needs to deliver the message. */
export interface ClaimedMessage extends Lease {
  readonly meta: MessageMeta;
  readonly contents: Uint8Array;
}

/**
 * A stored message's state in the contract (docs/contract.md): `claimed` (meta or contents not
 * written yet), `due` (`claimDue` would take it now), `deferred` (its retry time is in the
 * future) or `active` (someone holds an unexpired lock). A deleted message has no state: it is
 * not found.
 */
export type MessageState = 'claimed' | 'due' | 'deferred' | 'active';

/** What {@link StorageSession.inspect} tells about one message, without its contents. */
export interface MessageInfo {
  readonly id: MessageId;
  readonly state: MessageState;
  /** When the id was claimed (epoch ms). */
  readonly createdAt: number;
  /** The next attempt no earlier than this; `null` when never scheduled (due from `createdAt`). */
  readonly retryAt: number | null;
  /** End of the unexpired lock; `null` when the message is not `active`. */
  readonly lockedUntil: number | null;
  /** The last fencing token handed out (0 before the first lock). */
  readonly token: number;
  /** Contents length in bytes; `null` while no contents were written. */
  readonly size: number | null;
  readonly priority: Priority;
  /** The meta (`{}` before any was written); a copy the caller may change. */
  readonly meta: MessageMeta;
}

/**
 * What one delivery attempt decided, committed by {@link StorageSession.commitAttempt} in one
 * atomic step: the leased message is deleted or updated, and new messages (a bounce, say) are
 * stored, all or nothing.
 */
export interface AttemptOutcome {
  /** Delete the leased message (delivered, or finished with a bounce). Excludes `meta`, `retryAt` and `keepLease`. */
  readonly delete?: boolean;
  /** Replace the leased message's whole meta. */
  readonly meta?: MessageMeta;
  /** The leased message's next attempt, no earlier than this (epoch ms). */
  readonly retryAt?: number;
  /** Keep the lock after the commit (default: the lock is dropped, as by `releaseLease`). */
  readonly keepLease?: boolean;
  /** Messages to store in the same step; each due at once unless it has a `retryAt`. */
  readonly store?: readonly StoreMessageInput[];
}

/** Result of {@link StorageSession.deleteMessages}. */
export interface DeleteManyResult {
  /** Ids deleted because their lease was current. */
  readonly deleted: MessageId[];
  /** Ids left untouched because their lease was not current (or the message was gone). */
  readonly stale: MessageId[];
}

/** Counts by state, computed without loading contents. */
export interface QueueStats {
  /** Every stored id, in any state. */
  readonly total: number;
  /** Ids holding an unexpired lock. */
  readonly active: number;
  /** Unlocked ids whose retry time is still in the future. */
  readonly deferred: number;
  /** Unlocked, complete messages that `claimDue` would take now. */
  readonly due: number;
}

/** What the environment adds to an engine; the conformance suite reads it to decide what to test. */
export interface Capabilities {
  /** State survives a new engine instance on the same store (and a restart). */
  readonly persistent: boolean;
  /** Other tabs, workers, isolates or processes see the same state. */
  readonly shared: boolean;
  /** The engine offers `subscribe()` for change events. */
  readonly changeEvents: boolean;
  /** The largest contents, in bytes, the engine accepts. */
  readonly maxMessageBytes: number;
}

/** A change to stored messages, as delivered to `subscribe()` listeners. */
export interface ChangeEvent {
  /** `stored`: new ids; `updated`: meta, contents, retry or lock changed; `deleted`: gone. */
  readonly type: 'stored' | 'updated' | 'deleted';
  readonly ids: readonly MessageId[];
}

/** A listener of change events. */
export type ChangeListener = (event: ChangeEvent) => void;

/** Options every engine accepts. */
export interface EngineOptions {
  /** Where time comes from; defaults to the wall clock. */
  readonly clock?: Clock;
  /** Largest contents in bytes; at least 25 MiB by default. */
  readonly maxMessageBytes?: number;
}

/** A storage engine: connects sessions to one store. */
export interface StorageEngine {
  /** The capability manifest. */
  readonly supports: Capabilities;
  /** Opens a session. Rejects with `UNAVAILABLE` when the store can't be reached. */
  connect(): Promise<StorageSession>;
  /**
   * Present when `supports.changeEvents`: calls `listener` after every change made through any
   * session (of any tab or isolate where the engine is `shared`). Returns an unsubscribe function.
   */
  subscribe?(listener: ChangeListener): () => void;
}

/**
 * A session: cheap and short-lived. Every method rejects with `SESSION_CLOSED` after `close()`,
 * with `TypeError` for wrong arguments, and with `UNAVAILABLE` when the store can't be reached.
 * A rejected call changes nothing.
 */
export interface StorageSession extends AsyncDisposable {
  /** Closes the session; idempotent. */
  close(): Promise<void>;

  /** Ids holding an unexpired lock. */
  getActiveMessages(): Promise<MessageId[]>;
  /** Ids with a retry time and no unexpired lock; with `dueBy`, only those due by then. */
  getDeferredMessages(dueBy?: number): Promise<MessageId[]>;
  /** Every stored id in any state, claimed-but-empty ones included. */
  getAllMessages(): Promise<MessageId[]>;

  /** Reserves and returns a new random id (listed by `getAllMessages` at once). */
  claimMessageId(): Promise<MessageId>;
  /** Replaces the whole meta. `NOT_FOUND`, `STALE_LEASE`, `TOO_LARGE`. */
  setMessageMeta(id: MessageId, meta: MessageMeta, options?: FenceOptions): Promise<void>;
  /** Sets one meta key; `undefined` deletes it. `NOT_FOUND`, `STALE_LEASE`, `TOO_LARGE`. */
  setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    options?: FenceOptions,
  ): Promise<void>;
  /** The meta (`{}` before any was written). `NOT_FOUND`. */
  getMessageMeta(id: MessageId): Promise<MessageMeta>;
  /** One meta value, `undefined` when the key is absent. `NOT_FOUND`. */
  getMessageMetaKey(id: MessageId, key: string): Promise<MetaValue | undefined>;
  /** Writes the contents. `NOT_FOUND`, `TOO_LARGE`, `QUOTA_EXCEEDED`. */
  setMessageContents(id: MessageId, contents: MessageContents): Promise<void>;
  /** The bytes written. `NOT_FOUND` (also while no contents were written yet). */
  getMessageContents(id: MessageId): Promise<Uint8Array>;
  /** Next attempt no earlier than `at`; marks the message deferred. `NOT_FOUND`, `STALE_LEASE`. */
  setMessageRetry(id: MessageId, at: number, options?: FenceOptions): Promise<void>;

  /** Locks for `ttl` ms: `true` if locked now, `false` if someone holds an unexpired lock. `NOT_FOUND`. */
  lockMessage(id: MessageId, ttl: number): Promise<boolean>;
  /** Drops any lock (an administrator's override); no-op when unlocked or unknown. */
  unlockMessage(id: MessageId): Promise<void>;
  /** Removes every trace; idempotent. With a lease: `STALE_LEASE` unless it is current. */
  deleteMessage(id: MessageId, options?: FenceOptions): Promise<void>;

  /** Claim, meta and contents in one atomic step. `TOO_LARGE`, `QUOTA_EXCEEDED`. */
  storeMessage(input: StoreMessageInput): Promise<MessageId>;
  /** Many messages in one atomic step (one commit): all are stored or none. */
  storeMessages(inputs: readonly StoreMessageInput[]): Promise<MessageId[]>;

  /** A lease for `ttl` ms, or `null` when someone holds an unexpired lock. `NOT_FOUND`. */
  acquireLease(id: MessageId, ttl: number): Promise<Lease | null>;
  /** Extends a current lease to now + `ttl` (same token). `STALE_LEASE`. */
  renewLease(lease: Lease, ttl: number): Promise<Lease>;
  /** Drops the lock held by a current lease. `STALE_LEASE`. */
  releaseLease(lease: Lease): Promise<void>;
  /**
   * Atomically leases up to `limit` complete, unlocked, due messages: higher priority first,
   * then oldest due first.
   */
  claimDue(options: ClaimDueOptions): Promise<Lease[]>;
  /**
   * `claimDue`, and each lease carries its message's meta and contents, read in the same step
   * (one transaction, one round trip where the engine can): what a relayer's drain needs. All
   * `limit` messages' contents are in memory at once: for large mail, claim with `claimDue` and
   * read each message's contents when it is delivered.
   */
  claimDueMessages(options: ClaimDueOptions): Promise<ClaimedMessage[]>;
  /**
   * Commits an attempt's outcome in one atomic step while `lease` is current: deletes or updates
   * the leased message (meta, retry time, lock) and stores `outcome.store`. Resolves to the ids of
   * the stored messages. `STALE_LEASE` (nothing changed), `TypeError`, `TOO_LARGE`.
   */
  commitAttempt(lease: Lease, outcome: AttemptOutcome): Promise<MessageId[]>;
  /** Deletes each message whose lease is current, in one step; reports the stale ones. */
  deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult>;

  /** Counts by state, without loading contents. */
  stats(): Promise<QueueStats>;
  /** One message's state, times, token, size and meta, without loading contents. `NOT_FOUND`. */
  inspect(id: MessageId): Promise<MessageInfo>;
  /**
   * The earliest time at which a message can be claimed (its due time, or the end of its lock
   * when later), or `null` when no complete message is stored. At or before now when something
   * is due: the time to set a wake-up timer for.
   */
  nextDueAt(): Promise<number | null>;
}
