/**
 * Internal (used by queue-shard.ts and engine.ts): the operations a queue shard serves, listed
 * once. The shard dispatches every call through this table (`QueueShard.call`), and the client
 * engine sends every call as `{ op, args }` in a batch, typed by the same table: an operation is
 * written once here and once in `ShardStore`, never again.
 */
import type {
  DeleteManyResult,
  Lease,
  MessageId,
  MessageMeta,
  MetaValue,
  QueueStats,
} from '@mailspool/core';
import type { AttemptChange, MessageRecord } from '@mailspool/core/engine';
import type {
  ClaimedLease,
  ClaimedWithMessage,
  ContentsPiece,
  ContentsSource,
  DueKey,
  ListKind,
  ShardStore,
  StoredOnce,
  StoreItem,
} from './shard-store.js';

/** Staged uploads older than this (ms of wall time) are dropped: their client gave up. */
const UPLOAD_EXPIRY_MS = 60 * 60 * 1000;

interface ReadOperation<A extends unknown[], R> {
  readonly write: false;
  readonly run: (store: ShardStore, ...args: A) => R;
}

interface WriteOperation<A extends unknown[], R> {
  readonly write: true;
  readonly run: (store: ShardStore, ...args: A) => R;
  /** Whether a result is a change (a refused lock or an empty claim is not): re-arms the alarm. */
  readonly changed: (result: R) => boolean;
}

function read<A extends unknown[], R>(
  run: (store: ShardStore, ...args: A) => R,
): ReadOperation<A, R> {
  return { write: false, run };
}

/** An operation that writes: run in its own transaction, inside the shard's group commit. */
function write<A extends unknown[], R>(
  run: (store: ShardStore, ...args: A) => R,
  changed: (result: R) => boolean = () => true,
): WriteOperation<A, R> {
  return { write: true, run, changed };
}

export const OPERATIONS = {
  claimId: write(
    (s, id: MessageId, now: number): boolean => s.claimId(id, now),
    (claimed) => claimed,
  ),
  store: write((s, items: StoreItem[], now: number): void => s.store(items, now)),
  storeOnce: write(
    (
      s,
      key: string,
      fingerprint: string,
      item: StoreItem,
      now: number,
      retentionMs: number,
    ): StoredOnce => s.storeOnce(key, fingerprint, item, now, retentionMs),
    (stored) => !stored.duplicate,
  ),
  /** One piece of contents too large for a single RPC message; times are the shard's wall clock. */
  stage: write(
    (s, upload: string, offset: number, bytes: Uint8Array): void => {
      const wall = Date.now();
      if (offset === 0) s.dropUploadsBefore(wall - UPLOAD_EXPIRY_MS);
      s.stage(upload, offset, bytes, wall);
    },
    () => false,
  ),
  discardUpload: write(
    (s, upload: string): void => s.discard(upload),
    () => false,
  ),
  getMeta: read((s, id: MessageId): MessageMeta => s.getMeta(id)),
  setMeta: write((s, id: MessageId, meta: MessageMeta, lease: Lease | undefined): void =>
    s.setMeta(id, meta, lease),
  ),
  setMetaKey: write(
    (s, id: MessageId, key: string, value: MetaValue | undefined, lease: Lease | undefined): void =>
      s.setMetaKey(id, key, value, lease),
  ),
  /** A piece of contents; within a batch, bounded by the batch's answer budget (see the shard). */
  readContents: read(
    (s, id: MessageId, offset: number, length: number, version: number | null): ContentsPiece =>
      s.readContents(id, offset, length, version),
  ),
  writeContents: write((s, id: MessageId, contents: ContentsSource): void =>
    s.writeContents(id, contents),
  ),
  setRetry: write((s, id: MessageId, at: number, lease: Lease | undefined): void =>
    s.setRetry(id, at, lease),
  ),
  lock: write(
    (s, id: MessageId, ttl: number, now: number): Lease | null => s.lock(id, ttl, now),
    (lease) => lease !== null,
  ),
  unlock: write(
    (s, id: MessageId): boolean => s.unlock(id),
    (unlocked) => unlocked,
  ),
  renew: write((s, lease: Lease, ttl: number, now: number): Lease => s.renew(lease, ttl, now)),
  release: write((s, lease: Lease): void => s.release(lease)),
  remove: write(
    (s, id: MessageId, lease: Lease | undefined): boolean => s.remove(id, lease),
    (removed) => removed,
  ),
  commitAttempt: write(
    (s, lease: Lease, change: AttemptChange, items: StoreItem[], now: number): void =>
      s.commitAttempt(lease, change, items, now),
  ),
  removeMany: write((s, leases: Lease[]): DeleteManyResult => s.removeMany(leases)),
  list: read((s, kind: ListKind, now: number, dueBy: number | null): MessageId[] =>
    s.list(kind, now, dueBy),
  ),
  peekDue: read((s, limit: number, now: number): DueKey[] => s.peekDue(limit, now)),
  claimDue: write(
    (s, limit: number, ttl: number, now: number): ClaimedLease[] => s.claimDue(limit, ttl, now),
    (claimed) => claimed.length > 0,
  ),
  /**
   * `claimDue` with each message's meta and contents. The contents share the batch's answer
   * budget: `QueueShard.call` runs this operation with what is left of it (run from this table
   * alone, it would answer no contents).
   */
  claimDueMessages: write(
    (
      s,
      limit: number,
      ttl: number,
      now: number,
    ): { claimed: ClaimedWithMessage[]; bytes: number } => s.claimDueMessages(limit, ttl, now, 0),
    (result) => result.claimed.length > 0,
  ),
  stats: read((s, now: number): QueueStats => s.stats(now)),
  inspect: read((s, id: MessageId): MessageRecord | null => s.inspect(id)),
  nextDueAt: read((s, now: number): number | null => s.nextDueAt(now)),
} as const;

export type Operations = typeof OPERATIONS;
export type OperationName = keyof Operations;

/** The arguments of operation `K` (after the store). */
export type OperationArgs<K extends OperationName> = Operations[K]['run'] extends (
  store: ShardStore,
  ...args: infer A
) => unknown
  ? A
  : never;

/** What operation `K` answers. */
export type OperationResult<K extends OperationName> = ReturnType<Operations[K]['run']>;

/** One call in a shard batch: an operation and its arguments. */
export type ShardCall = {
  [K in OperationName]: { readonly op: K; readonly args: OperationArgs<K> };
}[OperationName];

/**
 * A `readContents` in a batch that found the batch's answer budget spent: not read; the client
 * asks again. Keeps one batch's answer within the budget however many reads it holds.
 */
export interface ReadLater {
  readonly later: true;
}
