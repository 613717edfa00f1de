/**
 * Internal (used by queue-shard.ts): every operation of one queue shard, synchronously, over the
 * shard's SQLite database. The caller runs each write inside one `transactionSync`, so each is
 * atomic and leaves the database unchanged when it throws.
 *
 * Per-message operations load the row as core's `MessageRecord` and apply core's pure rules
 * (`lockRecord`, `writableRecord`, `assertCurrent`, `renewRecord`, `unlockRecord`) to it, exactly
 * as the memory engine does. Lists, counts and claims are SQL built from the fragments in
 * schema.ts, which mirror `isActive` / `isDue` / `isDeferred` / `isWaiting` term for term; they
 * read the `messages` table only, never the contents.
 */
import {
  type DeleteManyResult,
  ErrorCode,
  type Lease,
  MailspoolError,
  type MessageId,
  type MessageMeta,
  type MetaValue,
  type QueueStats,
} from '@mailspool/core';
import {
  type AttemptChange,
  applyAttempt,
  assertCurrent,
  assertMetaSize,
  claimedRecord,
  DEFAULT_PRIORITY_RANK,
  dueAt,
  isDue,
  lockRecord,
  type MessageRecord,
  notFound,
  partitionByLease,
  renewRecord,
  storedRecord,
  unlockRecord,
  withMeta,
  withMetaKey,
  withRetry,
  writableRecord,
} from '@mailspool/core/engine';
import {
  ACTIVE,
  CLAIMABLE_AT,
  COMPLETE,
  DEFERRED,
  DUE,
  DUE_AT,
  DUE_OF_RANK,
  MAX_PRIORITY_RANK,
  UNLOCKED,
  WAITING,
} from '@mailspool/core/sql';
import { CHUNK_BYTES } from './schema.js';

/** Contents as they arrive at a shard: inline bytes, or an upload staged by earlier calls. */
export type ContentsSource =
  | { readonly bytes: Uint8Array }
  | { readonly upload: string; readonly size: number };

/**
 * One message of a `store` call (validated by the client's `BaseSession`). Its meta travels as
 * the JSON text the shard stores: serialising an object for RPC and then again as JSON cost more
 * than the rest of a store (measured in bench/).
 */
export interface StoreItem {
  readonly id: MessageId;
  readonly metaJson: string;
  readonly retryAt: number | null;
  /** The priority's rank (0 high, 1 normal, 2 bulk). */
  readonly priority: number;
  readonly contents: ContentsSource;
}

/** What `storeOnce` answers: the message the key names, and whether it existed already. */
export interface StoredOnce {
  readonly id: MessageId;
  /** The fingerprint recorded with the key (the first request's, for a duplicate). */
  readonly fingerprint: string;
  readonly duplicate: boolean;
}

/** A piece of contents read from a shard. `changed` means the contents were rewritten since `version`. */
export type ContentsPiece =
  | { readonly size: number; readonly version: number; readonly bytes: Uint8Array }
  | { readonly changed: true };

/** A candidate of `peekDue`, or a claimed lease with its due time, for merging across shards. */
export interface DueKey {
  readonly id: MessageId;
  readonly dueAt: number;
  /** The priority's rank: claims across shards merge by rank, then due time, then id. */
  readonly priority: number;
}
export interface ClaimedLease {
  readonly lease: Lease;
  readonly priority: number;
  readonly dueAt: number;
}

/** A claimed message with its meta, and its contents unless they did not fit the answer. */
export interface ClaimedWithMessage extends ClaimedLease {
  readonly meta: MessageMeta;
  readonly contents: Uint8Array | null;
}

/** Which ids `list` returns. */
export type ListKind = 'all' | 'active' | 'deferred';

/**
 * A change to one message, as a shard's subclass sees it (`QueueShard.onMessageChange`): told
 * inside the change's own transaction, before the change is applied, so whatever the subclass
 * writes then (a record, an outbox entry) commits with it or not at all.
 */
export interface MessageChange {
  readonly id: MessageId;
  /** `attempt`: a `commitAttempt`; `delete`: `deleteMessage` or `deleteMessages`. */
  readonly kind: 'attempt' | 'delete';
  /** True when the message leaves the queue. */
  readonly ended: boolean;
  /** The lease the change is made under; `undefined` for a delete without one. */
  readonly lease: Lease | undefined;
  /** The meta an attempt writes (`undefined`: unchanged, or the message ends). */
  readonly meta: MessageMeta | undefined;
  /** The retry time an attempt sets (`undefined`: unchanged). */
  readonly retryAt: number | undefined;
  /** The caller's time of the change (epoch ms); `undefined` for deletes, which carry none. */
  readonly now: number | undefined;
  /** The message's meta before the change, read when asked (never its contents); `null`: none yet. */
  previousMeta(): MessageMeta | null;
}

/** Called with each {@link MessageChange}; throwing rolls the change back. */
export type ChangeObserver = (change: MessageChange) => void;

/** A stored record (see the `message_records` migration). */
export interface StoredRecord {
  readonly data: string;
  /** `null` while its message is queued. */
  readonly expiresAt: number | null;
}

/** One outbox entry, as handed to `QueueShard.deliverOutboxEntry`. */
export interface OutboxEntry {
  readonly seq: number;
  readonly stream: string;
  readonly body: string;
  /** Shard time it was queued (epoch ms). */
  readonly createdAt: number;
  /** Failed deliveries so far. */
  readonly attempts: number;
}

type Row = {
  id: string;
  created_at: number;
  meta: string | null;
  size: number | null;
  retry_at: number | null;
  locked_until: number | null;
  token: number;
  version: number;
  priority: number;
};

const COLUMNS = 'id, created_at, meta, size, retry_at, locked_until, token, version, priority';

/**
 * The columns of a lock view: everything the lock rules read, with meta reduced to whether it is
 * set. Lock, claim, renew, release, unlock and fenced deletes never look inside meta, and parsing
 * it for each of 50 claimed or deleted rows was most of their cost (measured in bench/).
 */
const LOCK_COLUMNS =
  'id, created_at, meta IS NOT NULL AS has_meta, size, retry_at, locked_until, token, priority';

type LockRow = Omit<Row, 'meta' | 'version'> & { has_meta: number };

/**
 * Stands in for meta that was not parsed: in a lock view (`meta IS NOT NULL`), or in a stored
 * record whose meta arrived as JSON text. It is never written as meta: `#save` and `#insert`
 * refuse it, so it can't overwrite real meta.
 */
const META_NOT_LOADED: MessageMeta = Object.freeze({});

function toLockRecord(row: LockRow): MessageRecord {
  return {
    id: row.id,
    createdAt: row.created_at,
    meta: row.has_meta ? META_NOT_LOADED : null,
    size: row.size,
    retryAt: row.retry_at,
    lockedUntil: row.locked_until,
    token: row.token,
    priority: row.priority,
  };
}

/** The owner of staged chunks; message ids can't contain ':', so the two never clash. */
export function uploadOwner(upload: string): string {
  if (typeof upload !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(upload)) {
    throw new TypeError('an upload id must be 1-64 characters of [A-Za-z0-9-]');
  }
  return `upload:${upload}`;
}

function corrupt(id: string, why: string, cause?: unknown): MailspoolError {
  return new MailspoolError(ErrorCode.CORRUPT, `message ${id}: ${why}`, { cause });
}

function parseMeta(id: string, text: string | null): MessageMeta | null {
  if (text === null) return null;
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch (error) {
    throw corrupt(id, 'stored meta is not JSON', error);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw corrupt(id, 'stored meta is not an object');
  }
  return meta as MessageMeta;
}

function toRecord(row: Row): MessageRecord {
  return {
    id: row.id,
    createdAt: row.created_at,
    meta: parseMeta(row.id, row.meta),
    size: row.size,
    retryAt: row.retry_at,
    lockedUntil: row.locked_until,
    token: row.token,
    priority: row.priority,
  };
}

/**
 * An ArrayBuffer holding exactly `bytes[start, end)`: what SQLite binds as a BLOB. Contents that
 * arrived over RPC own their buffer, so a one-chunk message is bound as is, without a copy.
 */
function blob(bytes: Uint8Array, start: number, end: number): ArrayBuffer {
  const whole =
    start === 0 &&
    end >= bytes.byteLength &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength;
  return whole ? (bytes.buffer as ArrayBuffer) : (bytes.slice(start, end).buffer as ArrayBuffer);
}

/** The size `source` writes (checked again against what is staged when it is written). */
function sourceSize(source: ContentsSource): number {
  if ('bytes' in source) {
    if (!(source.bytes instanceof Uint8Array)) throw new TypeError('contents must be a Uint8Array');
    return source.bytes.byteLength;
  }
  if (!Number.isSafeInteger(source.size) || source.size < 0) {
    throw new TypeError('upload size must be >= 0');
  }
  return source.size;
}

/** Contents chunks joined into `expected` bytes; `CORRUPT` when they don't add up to it. */
function joinChunks(id: MessageId, pieces: readonly ArrayBuffer[], expected: number): Uint8Array {
  // One chunk (any message up to 1 MiB): SQLite's buffer is ours already, no copy.
  if (pieces.length === 1 && pieces[0]!.byteLength === expected) return new Uint8Array(pieces[0]!);
  const bytes = new Uint8Array(expected);
  let at = 0;
  for (const data of pieces) {
    if (at + data.byteLength > expected) throw corrupt(id, 'contents longer than size');
    bytes.set(new Uint8Array(data), at);
    at += data.byteLength;
  }
  if (at !== expected) throw corrupt(id, 'contents shorter than size');
  return bytes;
}

/** SQLite's answer to an INSERT of an id that exists. */
function isDuplicateId(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed: messages\.id/.test(error.message);
}

/** The operations of one shard over its SQL storage. */
export class ShardStore {
  readonly #sql: SqlStorage;
  readonly #observe: ChangeObserver | undefined;

  /** `observe`, when given, is told of every change to a message (see {@link MessageChange}). */
  constructor(sql: SqlStorage, observe?: ChangeObserver) {
    this.#sql = sql;
    this.#observe = observe;
  }

  #tell(
    id: MessageId,
    kind: MessageChange['kind'],
    lease: Lease | undefined,
    change: Partial<Pick<MessageChange, 'ended' | 'meta' | 'retryAt' | 'now'>>,
  ): void {
    if (this.#observe === undefined) return;
    const sql = this.#sql;
    this.#observe({
      id,
      kind,
      lease,
      ended: change.ended ?? false,
      meta: change.meta,
      retryAt: change.retryAt,
      now: change.now,
      previousMeta: () =>
        parseMeta(
          id,
          sql
            .exec<{ meta: string | null }>('SELECT meta FROM messages WHERE id = ?', id)
            .toArray()[0]?.meta ?? null,
        ),
    });
  }

  // ---- rows ------------------------------------------------------------------------------------

  #row(id: MessageId): Row | undefined {
    return this.#sql.exec<Row>(`SELECT ${COLUMNS} FROM messages WHERE id = ?`, id).toArray()[0];
  }

  #record(id: MessageId): MessageRecord | undefined {
    const row = this.#row(id);
    return row === undefined ? undefined : toRecord(row);
  }

  /** The record as the lock rules need it, meta not loaded (see {@link LOCK_COLUMNS}). */
  #lockView(id: MessageId): MessageRecord | undefined {
    const row = this.#sql
      .exec<LockRow>(`SELECT ${LOCK_COLUMNS} FROM messages WHERE id = ?`, id)
      .toArray()[0];
    return row === undefined ? undefined : toLockRecord(row);
  }

  /** Inserts `record`; `metaJson`, when given, is its meta already as JSON (a store's item). */
  #insert(record: MessageRecord, metaJson?: string): void {
    if (metaJson === undefined && record.meta === META_NOT_LOADED) {
      throw new Error(`#insert of ${record.id} without its meta`);
    }
    this.#sql.exec(
      'INSERT INTO messages (id, created_at, meta, size, retry_at, locked_until, token, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      record.id,
      record.createdAt,
      metaJson ?? (record.meta === null ? null : JSON.stringify(record.meta)),
      record.size,
      record.retryAt,
      record.lockedUntil,
      record.token,
      record.priority,
    );
  }

  /** Writes back the fields the rules change (contents and their size are written separately). */
  #save(record: MessageRecord): void {
    if (record.meta === META_NOT_LOADED) throw new Error(`#save of a lock view of ${record.id}`);
    this.#sql.exec(
      'UPDATE messages SET meta = ?, retry_at = ?, locked_until = ?, token = ? WHERE id = ?',
      record.meta === null ? null : JSON.stringify(record.meta),
      record.retryAt,
      record.lockedUntil,
      record.token,
      record.id,
    );
  }

  /**
   * Writes back only the lock columns: what lock, claim, renew, release and unlock change. Cheaper
   * than `#save` (no meta re-serialised and rewritten), which the benchmarks showed on claims.
   */
  #saveLock(record: MessageRecord): void {
    this.#sql.exec(
      'UPDATE messages SET locked_until = ?, token = ? WHERE id = ?',
      record.lockedUntil,
      record.token,
      record.id,
    );
  }

  #deleteRow(id: MessageId): void {
    this.#sql.exec('DELETE FROM messages WHERE id = ?', id);
    this.#sql.exec('DELETE FROM chunks WHERE owner = ?', id);
  }

  // ---- contents --------------------------------------------------------------------------------

  /**
   * Writes the chunks of `id` from `source`, replacing any it had (`fresh`: the message row was
   * just inserted, so it has none); returns the size written.
   */
  #putContents(id: MessageId, source: ContentsSource, fresh: boolean): number {
    const size = sourceSize(source);
    if (!fresh) this.#sql.exec('DELETE FROM chunks WHERE owner = ?', id);
    if ('bytes' in source) {
      const { bytes } = source;
      for (let offset = 0, seq = 0; offset < bytes.byteLength; offset += CHUNK_BYTES, seq++) {
        this.#sql.exec(
          'INSERT INTO chunks (owner, seq, data) VALUES (?, ?, ?)',
          id,
          seq,
          blob(bytes, offset, offset + CHUNK_BYTES),
        );
      }
      return size;
    }
    const owner = uploadOwner(source.upload);
    const staged = this.#sql
      .exec<{ n: number; bytes: number; first: number | null; last: number | null }>(
        'SELECT count(*) AS n, coalesce(sum(length(data)), 0) AS bytes, min(seq) AS first, max(seq) AS last FROM chunks WHERE owner = ?',
        owner,
      )
      .one();
    const chunks = Math.ceil(size / CHUNK_BYTES);
    const complete =
      staged.n === chunks &&
      staged.bytes === size &&
      (chunks === 0 || (staged.first === 0 && staged.last === chunks - 1));
    if (!complete) {
      // The client stages every piece before committing, so this means the upload expired
      // (abandoned uploads are dropped after an hour) or the client is broken: retry.
      throw new MailspoolError(
        ErrorCode.UNAVAILABLE,
        `staged contents are incomplete (${staged.bytes} of ${size} bytes); upload again`,
      );
    }
    this.#sql.exec('UPDATE chunks SET owner = ? WHERE owner = ?', id, owner);
    this.#sql.exec('DELETE FROM uploads WHERE owner = ?', owner);
    return size;
  }

  /** Stages `bytes` at `offset` of an upload (idempotent: a retried piece overwrites itself). */
  stage(upload: string, offset: number, bytes: Uint8Array, startedAt: number): void {
    const owner = uploadOwner(upload);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % CHUNK_BYTES !== 0) {
      throw new TypeError(`a staged piece must start at a multiple of ${CHUNK_BYTES} bytes`);
    }
    if (!(bytes instanceof Uint8Array)) throw new TypeError('a staged piece must be a Uint8Array');
    this.#sql.exec(
      'INSERT OR IGNORE INTO uploads (owner, started_at) VALUES (?, ?)',
      owner,
      startedAt,
    );
    const first = offset / CHUNK_BYTES;
    for (let at = 0, seq = first; at < bytes.byteLength; at += CHUNK_BYTES, seq++) {
      this.#sql.exec(
        'INSERT OR REPLACE INTO chunks (owner, seq, data) VALUES (?, ?, ?)',
        owner,
        seq,
        blob(bytes, at, at + CHUNK_BYTES),
      );
    }
  }

  /** Drops a staged upload (after a failed commit); no-op when unknown. */
  discard(upload: string): void {
    const owner = uploadOwner(upload);
    this.#sql.exec('DELETE FROM chunks WHERE owner = ?', owner);
    this.#sql.exec('DELETE FROM uploads WHERE owner = ?', owner);
  }

  /** Drops uploads started before `before` (wall-clock ms): their client gave up. */
  dropUploadsBefore(before: number): void {
    const stale = this.#sql
      .exec<{ owner: string }>('SELECT owner FROM uploads WHERE started_at < ?', before)
      .toArray();
    for (const { owner } of stale) {
      this.#sql.exec('DELETE FROM chunks WHERE owner = ?', owner);
      this.#sql.exec('DELETE FROM uploads WHERE owner = ?', owner);
    }
  }

  /**
   * Reads up to `length` bytes from `offset` (both multiples of the chunk size). With `version`,
   * answers `{ changed: true }` when the contents were rewritten since that version was read.
   */
  readContents(
    id: MessageId,
    offset: number,
    length: number,
    version: number | null,
  ): ContentsPiece {
    if (offset % CHUNK_BYTES !== 0 || length % CHUNK_BYTES !== 0 || length <= 0) {
      throw new TypeError(`contents are read in multiples of ${CHUNK_BYTES} bytes`);
    }
    // The row and its chunks in one statement (a read per message is the drain's commonest call).
    const rows = this.#sql
      .exec<{ size: number | null; version: number; data: ArrayBuffer | null }>(
        `SELECT m.size AS size, m.version AS version, c.data AS data FROM messages m
           LEFT JOIN chunks c ON c.owner = m.id AND c.seq >= ?2 AND c.seq < ?3
         WHERE m.id = ?1 ORDER BY c.seq`,
        id,
        offset / CHUNK_BYTES,
        (offset + length) / CHUNK_BYTES,
      )
      .toArray();
    const row = rows[0];
    if (row === undefined) throw notFound(id);
    if (row.size === null) throw notFound(id, 'contents of message');
    if (version !== null && row.version !== version) return { changed: true };
    const { size } = row;
    const expected = Math.max(0, Math.min(size, offset + length) - offset);
    const pieces = rows.flatMap(({ data }) => (data === null ? [] : [data]));
    return { size, version: row.version, bytes: joinChunks(id, pieces, expected) };
  }

  // ---- the contract's operations ---------------------------------------------------------------

  claimId(id: MessageId, now: number): boolean {
    if (this.#row(id) !== undefined) return false;
    this.#insert(claimedRecord(id, now));
    return true;
  }

  /**
   * Inserts each message row, then its chunks. A taken id fails the row's INSERT (the primary
   * key), which throws and so rolls the caller's transaction back: no batch is stored in part.
   * Relying on the key instead of reading each id first saved a query per message.
   */
  store(items: readonly StoreItem[], now: number): void {
    for (const item of items) {
      const size = sourceSize(item.contents);
      if (typeof item.metaJson !== 'string') throw new TypeError('metaJson must be a string');
      try {
        const rank = item.priority ?? DEFAULT_PRIORITY_RANK;
        if (!Number.isSafeInteger(rank) || rank < 0 || rank > 2) {
          throw new TypeError('priority must be a rank 0-2');
        }
        const record = storedRecord(item.id, now, META_NOT_LOADED, size, item.retryAt, rank);
        this.#insert(record, item.metaJson);
      } catch (error) {
        if (isDuplicateId(error)) throw new TypeError(`id ${item.id} is taken`);
        throw error;
      }
      this.#putContents(item.id, item.contents, true);
    }
  }

  /**
   * Stores `item` unless `key` was used within `retentionMs` before `now`, in one transaction
   * with the key, so concurrent or repeated calls with one key store one message. Expired keys
   * are dropped a few at a time on the way (bounded work per call).
   */
  storeOnce(
    key: string,
    fingerprint: string,
    item: StoreItem,
    now: number,
    retentionMs: number,
  ): StoredOnce {
    this.#sql.exec(
      'DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT 50)',
      now - retentionMs,
    );
    const previous = this.#sql
      .exec<{ message_id: string; fingerprint: string }>(
        'SELECT message_id, fingerprint FROM idempotency WHERE key = ?',
        key,
      )
      .toArray()[0];
    if (previous) {
      // The repeat's contents are not needed: drop a staged upload now rather than in an hour.
      if ('upload' in item.contents) this.discard(item.contents.upload);
      return { id: previous.message_id, fingerprint: previous.fingerprint, duplicate: true };
    }
    this.store([item], now);
    this.#sql.exec(
      'INSERT INTO idempotency (key, message_id, fingerprint, created_at) VALUES (?, ?, ?, ?)',
      key,
      item.id,
      fingerprint,
      now,
    );
    return { id: item.id, fingerprint, duplicate: false };
  }

  getMeta(id: MessageId): MessageMeta {
    const record = this.#record(id);
    if (record === undefined) throw notFound(id);
    return record.meta ?? {};
  }

  setMeta(id: MessageId, meta: MessageMeta, lease: Lease | undefined): void {
    const record = writableRecord(this.#record(id), id, lease);
    // Meta crossed the RPC boundary after the client's checks: the size is checked again here.
    assertMetaSize(meta);
    this.#save(withMeta(record, meta));
  }

  setMetaKey(id: MessageId, key: string, value: MetaValue | undefined, lease: Lease | undefined) {
    this.#save(withMetaKey(writableRecord(this.#record(id), id, lease), key, value));
  }

  writeContents(id: MessageId, source: ContentsSource): void {
    if (this.#row(id) === undefined) throw notFound(id);
    const size = this.#putContents(id, source, false);
    this.#sql.exec('UPDATE messages SET size = ?, version = version + 1 WHERE id = ?', size, id);
  }

  setRetry(id: MessageId, at: number, lease: Lease | undefined): void {
    const record = writableRecord(this.#record(id), id, lease);
    this.#save(withRetry(record, at));
  }

  lock(id: MessageId, ttl: number, now: number): Lease | null {
    const record = this.#lockView(id);
    if (record === undefined) throw notFound(id);
    const locked = lockRecord(record, ttl, now);
    if (!locked) return null;
    this.#saveLock(locked.record);
    return locked.lease;
  }

  unlock(id: MessageId): boolean {
    const record = this.#lockView(id);
    if (record === undefined || record.lockedUntil === null) return false;
    this.#saveLock(unlockRecord(record));
    return true;
  }

  renew(lease: Lease, ttl: number, now: number): Lease {
    const renewed = renewRecord(this.#lockView(lease.id), lease, ttl, now);
    this.#saveLock(renewed.record);
    return renewed.lease;
  }

  release(lease: Lease): void {
    const record = this.#lockView(lease.id);
    assertCurrent(record, lease);
    this.#saveLock(unlockRecord(record));
  }

  remove(id: MessageId, lease: Lease | undefined): boolean {
    const record = this.#lockView(id);
    if (lease !== undefined) assertCurrent(record, lease);
    if (record === undefined) return false;
    this.#tell(id, 'delete', lease, { ended: true });
    this.#deleteRow(id);
    return true;
  }

  /**
   * Applies an attempt's outcome to the leased message and stores `items`, while `lease` is
   * current (`STALE_LEASE` otherwise). Runs inside the caller's one transaction.
   */
  commitAttempt(
    lease: Lease,
    change: AttemptChange,
    items: readonly StoreItem[],
    now: number,
  ): void {
    // A delete needs only the lock; an update writes the whole record back, meta included.
    const record = change.delete ? this.#lockView(lease.id) : this.#record(lease.id);
    assertCurrent(record, lease);
    this.#tell(lease.id, 'attempt', lease, {
      ended: change.delete,
      meta: change.meta,
      retryAt: change.retryAt,
      now,
    });
    if (change.meta !== undefined) assertMetaSize(change.meta);
    const next = applyAttempt(record, change);
    if (next === undefined) this.#deleteRow(lease.id);
    else this.#save(next);
    if (items.length > 0) this.store(items, now);
  }

  removeMany(leases: readonly Lease[]): DeleteManyResult {
    const result = partitionByLease(
      leases,
      leases.map((lease) => this.#lockView(lease.id)),
    );
    const byId = new Map(leases.map((lease) => [lease.id, lease]));
    for (const id of result.deleted) {
      this.#tell(id, 'delete', byId.get(id)!, { ended: true });
      this.#deleteRow(id);
    }
    return result;
  }

  list(kind: ListKind, now: number, dueBy: number | null): MessageId[] {
    const rows =
      kind === 'all'
        ? this.#sql.exec<{ id: string }>('SELECT id FROM messages')
        : kind === 'active'
          ? this.#sql.exec<{ id: string }>(`SELECT id FROM messages WHERE ${ACTIVE}`, now)
          : dueBy === null
            ? this.#sql.exec<{ id: string }>(`SELECT id FROM messages WHERE ${DEFERRED}`, now)
            : this.#sql.exec<{ id: string }>(
                `SELECT id FROM messages WHERE ${DEFERRED} AND retry_at <= ?2`,
                now,
                dueBy,
              );
    return rows.toArray().map((row) => row.id);
  }

  /** The rows `claimDue` would take now, oldest due first (the order core's `compareDue` gives). */
  #dueRows(limit: number, now: number): LockRow[] {
    // One walk of the priority index per rank, highest first: with the rank fixed the index
    // gives due order, so no claim sorts the backlog (SQLite would otherwise pick the due index
    // and sort every due row by priority).
    const rows: LockRow[] = [];
    for (let rank = 0; rank <= MAX_PRIORITY_RANK && rows.length < limit; rank++) {
      rows.push(
        ...this.#sql
          .exec<LockRow>(
            `SELECT ${LOCK_COLUMNS} FROM messages ${DUE_OF_RANK}`,
            now,
            limit - rows.length,
            rank,
          )
          .toArray(),
      );
    }
    return rows;
  }

  /** The keys of the `limit` oldest due messages, without locking them (for merging shards). */
  peekDue(limit: number, now: number): DueKey[] {
    return this.#dueRows(limit, now).map((row) => ({
      id: row.id,
      dueAt: row.retry_at ?? row.created_at,
      priority: row.priority,
    }));
  }

  claimDue(limit: number, ttl: number, now: number): ClaimedLease[] {
    const claimed: ClaimedLease[] = [];
    for (const row of this.#dueRows(limit, now)) {
      const record = toLockRecord(row);
      // The SQL above and core's rule must agree; if they ever don't, fail loudly (and roll back).
      if (!isDue(record, now)) throw new Error(`claimDue selected ${row.id}, which is not due`);
      const locked = lockRecord(record, ttl, now)!;
      this.#saveLock(locked.record);
      claimed.push({ lease: locked.lease, dueAt: dueAt(record), priority: record.priority });
    }
    return claimed;
  }

  /**
   * `claimDue` that also answers each message's meta and contents, read in the same transaction,
   * while their total stays within `answerBytes` (the batch's answer budget): a message past it
   * comes back with `contents: null`, for the client to read under its lease.
   */
  claimDueMessages(
    limit: number,
    ttl: number,
    now: number,
    answerBytes: number,
  ): { claimed: ClaimedWithMessage[]; bytes: number } {
    const claimed: ClaimedWithMessage[] = [];
    let left = answerBytes;
    for (const row of this.#dueRows(limit, now)) {
      const record = toLockRecord(row);
      if (!isDue(record, now)) throw new Error(`claimDue selected ${row.id}, which is not due`);
      const locked = lockRecord(record, ttl, now)!;
      this.#saveLock(locked.record);
      const meta = this.getMeta(row.id);
      const size = row.size ?? 0;
      let contents: Uint8Array | null = null;
      if (size <= left) {
        contents = this.#wholeContents(row.id, size);
        left -= size;
      }
      claimed.push({
        lease: locked.lease,
        dueAt: dueAt(record),
        priority: record.priority,
        meta,
        contents,
      });
    }
    return { claimed, bytes: answerBytes - left };
  }

  /** All of `id`'s contents (`size` bytes), from its chunks. */
  #wholeContents(id: MessageId, size: number): Uint8Array {
    const pieces = this.#sql
      .exec<{ data: ArrayBuffer }>('SELECT data FROM chunks WHERE owner = ? ORDER BY seq', id)
      .toArray()
      .map((row) => row.data);
    return joinChunks(id, pieces, size);
  }

  /** The record of `id` (meta included), or `null`. */
  inspect(id: MessageId): MessageRecord | null {
    return this.#record(id) ?? null;
  }

  /**
   * `nextDueAt`: the first unlocked complete row of the due index, and the locked rows (few: in
   * flight) from the lock index, each counted from the end of its lock.
   */
  nextDueAt(now: number): number | null {
    const unlocked = this.#sql
      .exec<{ at: number }>(
        `SELECT ${DUE_AT} AS at FROM messages WHERE ${COMPLETE} AND ${UNLOCKED} ORDER BY ${DUE_AT} LIMIT 1`,
        now,
      )
      .toArray()[0]?.at;
    const locked = this.#sql
      .exec<{ at: number | null }>(
        `SELECT min(${CLAIMABLE_AT}) AS at FROM messages WHERE locked_until > ?1 AND ${COMPLETE}`,
        now,
      )
      .one().at;
    const times = [unlocked, locked].filter((t): t is number => typeof t === 'number');
    return times.length === 0 ? null : Math.min(...times);
  }

  stats(now: number): QueueStats {
    const row = this.#sql
      .exec<{ total: number; active: number; deferred: number; due: number }>(
        `SELECT count(*) AS total,
           coalesce(sum(${ACTIVE}), 0) AS active,
           coalesce(sum(${WAITING}), 0) AS deferred,
           coalesce(sum(${DUE}), 0) AS due
         FROM messages`,
        now,
      )
      .one();
    return { total: row.total, active: row.active, deferred: row.deferred, due: row.due };
  }

  // ---- alarm support -----------------------------------------------------------------------------

  /**
   * When the shard next has something for a relayer: the earliest due time of an unlocked,
   * complete message, or the earliest lock expiry after `now` (a lapsed lock makes its message
   * claimable again), whichever comes first. With `futureOnly`, due times ≤ `now` are skipped
   * (the hook was already told about them). `null` when nothing is pending.
   */
  nextWake(now: number, futureOnly: boolean): number | null {
    const due = this.#sql
      .exec<{ at: number }>(
        `SELECT ${DUE_AT} AS at FROM messages WHERE ${COMPLETE} AND ${UNLOCKED}${futureOnly ? ` AND ${DUE_AT} > ?1` : ''} ORDER BY ${DUE_AT} LIMIT 1`,
        now,
      )
      .toArray()[0]?.at;
    const expiry = this.#sql
      .exec<{ at: number | null }>(
        'SELECT min(locked_until) AS at FROM messages WHERE locked_until > ?1',
        now,
      )
      .one().at;
    const times = [due, expiry].filter((t): t is number => typeof t === 'number');
    return times.length === 0 ? null : Math.min(...times);
  }

  /** How many messages are due now, and the ids of the oldest `max` of them. */
  dueSummary(now: number, max: number): { count: number; ids: MessageId[] } {
    const { count } = this.#sql
      .exec<{ count: number }>(`SELECT count(*) AS count FROM messages WHERE ${DUE}`, now)
      .one();
    return {
      count,
      ids: count === 0 || max === 0 ? [] : this.#dueRows(max, now).map((row) => row.id),
    };
  }

  // ---- records and outbox (written by a subclass, see QueueShard.onMessageChange) --------------

  /** Keeps `data` as the record of `id`, replacing any, until `expiresAt` (`null`: no expiry yet). */
  keepRecord(id: MessageId, data: string, expiresAt: number | null): void {
    if (typeof data !== 'string') throw new TypeError('a record must be a string');
    this.#sql.exec(
      'INSERT INTO message_records (id, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at',
      id,
      data,
      expiresAt,
    );
  }

  /** The record of `id` unless it expired by `now`. */
  readRecord(id: MessageId, now: number): StoredRecord | undefined {
    const row = this.#sql
      .exec<{ data: string; expires_at: number | null }>(
        'SELECT data, expires_at FROM message_records WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)',
        id,
        now,
      )
      .toArray()[0];
    return row === undefined ? undefined : { data: row.data, expiresAt: row.expires_at };
  }

  /** Drops at most `limit` records expired by `now`; returns how many. */
  pruneRecords(now: number, limit: number): number {
    return this.#sql.exec(
      'DELETE FROM message_records WHERE id IN (SELECT id FROM message_records WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?)',
      now,
      limit,
    ).rowsWritten;
  }

  /** Appends an outbox entry to `stream`, first tried at `dueAt`. */
  enqueue(stream: string, body: string, createdAt: number, dueAt: number): void {
    if (typeof stream !== 'string' || typeof body !== 'string') {
      throw new TypeError('an outbox entry needs a string stream and body');
    }
    this.#sql.exec(
      'INSERT INTO outbox (stream, body, created_at, due_at) VALUES (?, ?, ?, ?)',
      stream,
      body,
      createdAt,
      dueAt,
    );
  }

  /** The first entry of each stream, when due by `now`: oldest due first, at most `limit`. */
  outboxDue(now: number, limit: number): OutboxEntry[] {
    return this.#sql
      .exec<{ seq: number; stream: string; body: string; created_at: number; attempts: number }>(
        `SELECT seq, stream, body, created_at, attempts FROM outbox
         WHERE seq IN (SELECT min(seq) FROM outbox GROUP BY stream) AND due_at <= ?
         ORDER BY due_at, seq LIMIT ?`,
        now,
        limit,
      )
      .toArray()
      .map((row) => ({
        seq: row.seq,
        stream: row.stream,
        body: row.body,
        createdAt: row.created_at,
        attempts: row.attempts,
      }));
  }

  /** Drops a delivered (or abandoned) outbox entry. */
  outboxDone(seq: number): void {
    this.#sql.exec('DELETE FROM outbox WHERE seq = ?', seq);
  }

  /** Counts a failed delivery of an outbox entry and sets its next try. */
  outboxRetry(seq: number, dueAt: number): void {
    this.#sql.exec(
      'UPDATE outbox SET attempts = attempts + 1, due_at = ? WHERE seq = ?',
      dueAt,
      seq,
    );
  }

  /**
   * When the alarm next has housekeeping to do: the first due time among the streams' first
   * outbox entries, or the first record expiry, whichever is earlier; `null` for neither.
   */
  nextHousekeeping(): number | null {
    const outbox = this.#sql
      .exec<{ at: number | null }>(
        'SELECT min(due_at) AS at FROM outbox WHERE seq IN (SELECT min(seq) FROM outbox GROUP BY stream)',
      )
      .one().at;
    const expiry = this.#sql
      .exec<{ at: number | null }>(
        'SELECT min(expires_at) AS at FROM message_records WHERE expires_at IS NOT NULL',
      )
      .one().at;
    const times = [outbox, expiry].filter((t): t is number => typeof t === 'number');
    return times.length === 0 ? null : Math.min(...times);
  }

  getState(key: string): number {
    return (
      this.#sql
        .exec<{ value: number }>('SELECT value FROM shard_state WHERE key = ?', key)
        .toArray()[0]?.value ?? 0
    );
  }

  setState(key: string, value: number): void {
    this.#sql.exec(
      'INSERT INTO shard_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
  }

  /** The shard's name as first learned (see the `shard_identity` migration), or `undefined`. */
  getName(): string | undefined {
    return this.#sql
      .exec<{ value: string }>("SELECT value FROM shard_identity WHERE key = 'name'")
      .toArray()[0]?.value;
  }

  setName(name: string): void {
    this.#sql.exec(
      "INSERT INTO shard_identity (key, value) VALUES ('name', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      name,
    );
  }
}
