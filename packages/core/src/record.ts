/**
 * The state rules of the contract, as pure functions over one message's record. Engines keep a
 * `MessageRecord` per message in their own store and apply these rules inside their own
 * transaction, so the rules live in one place and every engine agrees on them.
 *
 * States (see docs/contract.md): claimed (no meta or no contents yet) → complete → due / deferred
 * → active (locked) → deleted. "Locked" and "leased" are one lock.
 */
import { ErrorCode, MailspoolError } from './errors.js';
import type {
  DeleteManyResult,
  Lease,
  MessageId,
  MessageInfo,
  MessageMeta,
  MessageState,
  MetaValue,
  Priority,
} from './types.js';
import { assertMetaSize, cloneMeta } from './validate.js';

/** What an engine stores per message, besides the contents bytes. */
export interface MessageRecord {
  readonly id: MessageId;
  /** When the id was claimed (epoch ms); the due time of a message never scheduled. */
  readonly createdAt: number;
  /** `null` until meta is written. */
  readonly meta: MessageMeta | null;
  /** Contents length in bytes; `null` until contents are written. */
  readonly size: number | null;
  /** Next attempt no earlier than this; `null` when never scheduled. */
  readonly retryAt: number | null;
  /** End of the lock; `null` when not locked (never, released or unlocked). */
  readonly lockedUntil: number | null;
  /** The last fencing token handed out for this message; 0 before the first lock. */
  readonly token: number;
  /** The priority's rank ({@link PRIORITY_RANK}): 0 is taken first. */
  readonly priority: number;
}

/** Each priority's rank, as records store it: `claimDue` takes the lowest rank first. */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { high: 0, normal: 1, bulk: 2 };
/** The rank of a message stored without a priority. */
export const DEFAULT_PRIORITY_RANK = PRIORITY_RANK.normal;
const PRIORITIES: readonly Priority[] = ['high', 'normal', 'bulk'];

/** The priority of a rank (an unknown rank reads as `normal`). */
export function priorityOf(rank: number): Priority {
  return PRIORITIES[rank] ?? 'normal';
}

/** A new record for a claimed id. */
export function claimedRecord(id: MessageId, now: number): MessageRecord {
  return {
    id,
    createdAt: now,
    meta: null,
    size: null,
    retryAt: null,
    lockedUntil: null,
    token: 0,
    priority: DEFAULT_PRIORITY_RANK,
  };
}

/** A new record for a message stored whole by `storeMessage(s)`. */
export function storedRecord(
  id: MessageId,
  now: number,
  meta: MessageMeta,
  size: number,
  retryAt: number | null,
  priority: number = DEFAULT_PRIORITY_RANK,
): MessageRecord {
  return { id, createdAt: now, meta, size, retryAt, lockedUntil: null, token: 0, priority };
}

/** Holds an unexpired lock. The lock expires exactly at `lockedUntil`. */
export function isActive(record: MessageRecord, now: number): boolean {
  return record.lockedUntil !== null && now < record.lockedUntil;
}

/** Meta and contents are both written. */
export function isComplete(record: MessageRecord): boolean {
  return record.meta !== null && record.size !== null;
}

/** The time from which a message is due: its retry time, or when it was claimed if never scheduled. */
export function dueAt(record: MessageRecord): number {
  return record.retryAt ?? record.createdAt;
}

/** What `claimDue` would take now: complete, no unexpired lock, due. */
export function isDue(record: MessageRecord, now: number): boolean {
  return isComplete(record) && !isActive(record, now) && dueAt(record) <= now;
}

/** Listed by `getDeferredMessages(dueBy)`: a retry time set (≤ `dueBy` when given) and no unexpired lock. */
export function isDeferred(record: MessageRecord, now: number, dueBy?: number): boolean {
  if (record.retryAt === null || isActive(record, now)) return false;
  return dueBy === undefined || record.retryAt <= dueBy;
}

/** Counted as `deferred` by `stats()`: no unexpired lock and a retry time still in the future. */
export function isWaiting(record: MessageRecord, now: number): boolean {
  return record.retryAt !== null && record.retryAt > now && !isActive(record, now);
}

/**
 * Locks the record for `ttl` ms with the next fencing token, or returns `null` when someone holds
 * an unexpired lock.
 */
export function lockRecord(
  record: MessageRecord,
  ttl: number,
  now: number,
): { record: MessageRecord; lease: Lease } | null {
  if (isActive(record, now)) return null;
  const token = record.token + 1;
  const lockedUntil = now + ttl;
  return {
    record: { ...record, token, lockedUntil },
    lease: { id: record.id, token, expiresAt: lockedUntil },
  };
}

/**
 * True while `lease` is current: its token is the latest and its lock was not released or
 * unlocked. Expiry alone does not end it (the fencing token, not the clock, decides).
 */
export function isCurrent(record: MessageRecord | undefined, lease: Lease): boolean {
  return record !== undefined && record.token === lease.token && record.lockedUntil !== null;
}

/** Throws `STALE_LEASE` unless `lease` is current on `record` (a missing record has no current lease). */
export function assertCurrent(
  record: MessageRecord | undefined,
  lease: Lease,
): asserts record is MessageRecord {
  if (record !== undefined && isCurrent(record, lease)) return;
  const why =
    record === undefined
      ? 'the message is gone'
      : record.token !== lease.token
        ? 'it was locked again'
        : 'it was released or unlocked';
  throw new MailspoolError(
    ErrorCode.STALE_LEASE,
    `lease ${lease.token} on ${lease.id} is no longer current: ${why}`,
  );
}

/** Extends a current lease to `now + ttl`, keeping its token. Throws `STALE_LEASE`. */
export function renewRecord(
  record: MessageRecord | undefined,
  lease: Lease,
  ttl: number,
  now: number,
): { record: MessageRecord; lease: Lease } {
  assertCurrent(record, lease);
  const lockedUntil = now + ttl;
  return {
    record: { ...record, lockedUntil },
    lease: { id: record.id, token: record.token, expiresAt: lockedUntil },
  };
}

/** Drops the lock (keeping the token, so no older lease can become current again). */
export function unlockRecord(record: MessageRecord): MessageRecord {
  return record.lockedUntil === null ? record : { ...record, lockedUntil: null };
}

/** Throws `NOT_FOUND` for a missing record; otherwise narrows it. */
export function assertFound(
  record: MessageRecord | undefined,
  id: MessageId,
): asserts record is MessageRecord {
  if (record === undefined) throw notFound(id);
}

/** The `NOT_FOUND` error for `id`. */
export function notFound(id: MessageId, what = 'message'): MailspoolError {
  return new MailspoolError(ErrorCode.NOT_FOUND, `${what} ${id} not found`);
}

/**
 * Checks a fenced or unfenced write: with a lease it must be current (`STALE_LEASE`), without
 * one the record must exist (`NOT_FOUND`). Returns the record to update.
 */
export function writableRecord(
  record: MessageRecord | undefined,
  id: MessageId,
  lease: Lease | undefined,
): MessageRecord {
  if (lease !== undefined) {
    assertCurrent(record, lease);
    return record;
  }
  assertFound(record, id);
  return record;
}

/** Orders records the way `claimDue` takes them: by priority rank, then oldest due, then id. */
export function compareDue(a: MessageRecord, b: MessageRecord): number {
  return a.priority - b.priority || dueAt(a) - dueAt(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The record with its whole meta replaced. */
export function withMeta(record: MessageRecord, meta: MessageMeta): MessageRecord {
  return { ...record, meta };
}

/**
 * The record with one meta key set (`undefined` deletes it), other keys kept. `TOO_LARGE` when
 * the meta would outgrow its limit. Engines apply it to the record read in the same transaction
 * as the write (a compare-and-swap), so writers of different keys never lose each other's update.
 */
export function withMetaKey(
  record: MessageRecord,
  key: string,
  value: MetaValue | undefined,
): MessageRecord {
  const meta: Record<string, MetaValue> = { ...(record.meta ?? {}) };
  if (value === undefined) delete meta[key];
  else meta[key] = value;
  assertMetaSize(meta);
  return { ...record, meta };
}

/** The record with its retry time set (the message becomes deferred until `at`). */
export function withRetry(record: MessageRecord, at: number): MessageRecord {
  return { ...record, retryAt: at };
}

/** The record once contents of `size` bytes are written. */
export function withContents(record: MessageRecord, size: number): MessageRecord {
  return { ...record, size };
}

/**
 * What an attempt's outcome does to the leased record (see `AttemptChange`): `undefined` when the
 * message is deleted, else the record with the new meta, retry time and lock. The caller has
 * checked the lease with {@link assertCurrent} in the same transaction.
 */
export function applyAttempt(
  record: MessageRecord,
  change: {
    readonly delete: boolean;
    readonly meta: MessageMeta | undefined;
    readonly retryAt: number | undefined;
    readonly release: boolean;
  },
): MessageRecord | undefined {
  if (change.delete) return undefined;
  let next = record;
  if (change.meta !== undefined) next = { ...next, meta: change.meta };
  if (change.retryAt !== undefined) next = { ...next, retryAt: change.retryAt };
  if (change.release) next = unlockRecord(next);
  return next;
}

/**
 * Splits `deleteMessages`' leases into those current on their record (to delete) and the stale
 * rest, in the leases' order. `records[n]` is the record of `leases[n]` read in the transaction
 * that deletes (`undefined` when gone).
 */
export function partitionByLease(
  leases: readonly Lease[],
  records: readonly (MessageRecord | undefined)[],
): DeleteManyResult {
  const deleted: MessageId[] = [];
  const stale: MessageId[] = [];
  leases.forEach((lease, n) => {
    if (isCurrent(records[n], lease)) deleted.push(lease.id);
    else stale.push(lease.id);
  });
  return { deleted, stale };
}

/** The contract's state of a stored message (see docs/contract.md). */
export function stateOf(record: MessageRecord, now: number): MessageState {
  if (isActive(record, now)) return 'active';
  if (!isComplete(record)) return 'claimed';
  return dueAt(record) <= now ? 'due' : 'deferred';
}

/**
 * When a complete message can next be claimed: its due time, or the end of its lock when that is
 * later. `null` for a message without meta or contents (never claimable).
 */
export function claimableAt(record: MessageRecord, now: number): number | null {
  if (!isComplete(record)) return null;
  const due = dueAt(record);
  return isActive(record, now) ? Math.max(due, record.lockedUntil!) : due;
}

/** What `inspect(id)` answers for `record` at `now` (the meta copied for the caller). */
export function describeRecord(record: MessageRecord, now: number): MessageInfo {
  return {
    id: record.id,
    state: stateOf(record, now),
    createdAt: record.createdAt,
    retryAt: record.retryAt,
    lockedUntil: isActive(record, now) ? record.lockedUntil : null,
    token: record.token,
    size: record.size,
    priority: priorityOf(record.priority),
    meta: record.meta === null ? {} : cloneMeta(record.meta),
  };
}
