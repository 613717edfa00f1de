/**
 * Internal (used by database.ts and session.ts): the IndexedDB schema, its versioned migrations
 * and the conversion between a core `MessageRecord` and the row stored for it.
 *
 * Layout (version 2):
 * - `messages` (keyPath `id`): one row per message, the `MessageRecord` of core's record.ts plus
 *   `due` (epoch ms, the record's `dueAt`), present only once meta and contents are both written.
 *   Indexes, all sparse (a row whose key path is `null` or missing is simply not indexed):
 *   - `by-due` on `[due, id]`: complete messages in the order `claimDue` takes them;
 *   - `by-lock` on `lockedUntil`: locked rows by lock end (active = `lockedUntil > now`);
 *   - `by-retry` on `retryAt`: scheduled rows by retry time (`getDeferredMessages`, `stats`).
 * - `contents` (out-of-line key = message id): the bytes, as a `Uint8Array`. Kept apart so that
 *   every query above walks small rows and never loads contents.
 *
 * Migrations only add: a version's step may create stores or indexes and rewrite rows, never
 * delete data. Version 1 (the first layout) had both stores but no indexes and no `due` field.
 */

import { ErrorCode, MailspoolError, type MessageId } from '@mailspool/core';
import {
  DEFAULT_PRIORITY_RANK,
  dueAt,
  isComplete,
  type MessageRecord,
} from '@mailspool/core/engine';
import type { DBSchema, IDBPDatabase, IDBPTransaction } from 'idb';

/** The schema version this code writes. */
export const DB_VERSION = 3;

export const MESSAGES = 'messages' as const;
export const CONTENTS = 'contents' as const;
export const BY_DUE = 'by-due' as const;
export const BY_LOCK = 'by-lock' as const;
export const BY_RETRY = 'by-retry' as const;
/** Complete messages by `[priority, due, id]`: the order `claimDue` takes them in. */
export const BY_PRIORITY = 'by-priority' as const;

/** A stored row: the record plus the sparse `due` index field. */
export interface MessageRow extends MessageRecord {
  readonly due?: number;
}

/** The row to store for `record`; `due` is recomputed on every write so it can never go stale. */
export function toRow(record: MessageRecord): MessageRow {
  const row: MessageRow = {
    id: record.id,
    createdAt: record.createdAt,
    meta: record.meta,
    size: record.size,
    retryAt: record.retryAt,
    lockedUntil: record.lockedUntil,
    token: record.token,
    priority: record.priority,
  };
  return isComplete(record) ? { ...row, due: dueAt(record) } : row;
}

const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);
const isTimeOrNull = (value: unknown): boolean => value === null || isTime(value);

/**
 * The record of a stored row, validated: a row written by something else (a bug, another
 * library, a hand edit in DevTools) rejects with `CORRUPT` instead of breaking a rule silently.
 */
export function fromRow(value: unknown, id?: MessageId): MessageRecord {
  const row = value as Partial<MessageRow> | null;
  if (
    typeof row !== 'object' ||
    row === null ||
    typeof row.id !== 'string' ||
    (id !== undefined && row.id !== id) ||
    !isTime(row.createdAt) ||
    !(row.meta === null || (typeof row.meta === 'object' && !Array.isArray(row.meta))) ||
    !isTimeOrNull(row.size) ||
    !isTimeOrNull(row.retryAt) ||
    !isTimeOrNull(row.lockedUntil) ||
    !Number.isSafeInteger(row.token) ||
    (row.token as number) < 0 ||
    !(row.priority === undefined || [0, 1, 2].includes(row.priority))
  ) {
    throw new MailspoolError(
      ErrorCode.CORRUPT,
      `stored row ${typeof row?.id === 'string' ? row.id : '?'} is not a valid message record`,
    );
  }
  return {
    id: row.id,
    createdAt: row.createdAt as number,
    meta: (row.meta ?? null) as MessageRecord['meta'],
    size: (row.size ?? null) as number | null,
    retryAt: (row.retryAt ?? null) as number | null,
    lockedUntil: (row.lockedUntil ?? null) as number | null,
    token: row.token as number,
    // Rows written before priorities existed are `normal`.
    priority: row.priority ?? DEFAULT_PRIORITY_RANK,
  };
}

/** Validates stored contents (`CORRUPT` unless bytes). */
export function fromContents(value: unknown, id: MessageId): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new MailspoolError(ErrorCode.CORRUPT, `stored contents of ${id} are not bytes`);
}

/** The schema as idb types it. Values read are still validated by {@link fromRow}. */
export interface OutboxSchema extends DBSchema {
  messages: {
    key: MessageId;
    value: MessageRow;
    indexes: {
      'by-due': [number, MessageId];
      'by-lock': number;
      'by-retry': number;
      'by-priority': [number, number, MessageId];
    };
  };
  contents: { key: MessageId; value: Uint8Array };
}

/** The names of the object stores. */
export type StoreName = 'messages' | 'contents';

type UpgradeTx = IDBPTransaction<OutboxSchema, StoreName[], 'versionchange'>;

/**
 * Brings a database from `oldVersion` to {@link DB_VERSION} inside the upgrade transaction.
 * Each step runs once, in order; none deletes data. Only IndexedDB requests are awaited, so the
 * upgrade transaction never auto-commits half-way.
 */
export async function migrate(
  db: IDBPDatabase<OutboxSchema>,
  oldVersion: number,
  tx: UpgradeTx,
): Promise<void> {
  if (oldVersion < 1) {
    db.createObjectStore(MESSAGES, { keyPath: 'id' });
    db.createObjectStore(CONTENTS);
  }
  if (oldVersion < 2) {
    const messages = tx.objectStore(MESSAGES);
    messages.createIndex(BY_DUE, ['due', 'id']);
    messages.createIndex(BY_LOCK, 'lockedUntil');
    messages.createIndex(BY_RETRY, 'retryAt');
    // Version 1 rows have no `due`: rewrite each one so complete messages enter `by-due`.
    // Rows that fail validation are left exactly as they were (reads report them CORRUPT).
    let cursor = await messages.openCursor();
    while (cursor) {
      let row: MessageRow | undefined;
      try {
        row = toRow(fromRow(cursor.value));
      } catch {
        row = undefined;
      }
      if (row?.due !== undefined) await cursor.update(row);
      cursor = await cursor.continue();
    }
  }
  if (oldVersion < 3) {
    const messages = tx.objectStore(MESSAGES);
    messages.createIndex(BY_PRIORITY, ['priority', 'due', 'id']);
    // Rows without a priority are `normal`: rewrite them so complete ones enter `by-priority`.
    let cursor = await messages.openCursor();
    while (cursor) {
      let row: MessageRow | undefined;
      try {
        row =
          (cursor.value as Partial<MessageRow>).priority === undefined
            ? toRow(fromRow(cursor.value))
            : undefined;
      } catch {
        row = undefined;
      }
      if (row !== undefined) await cursor.update(row);
      cursor = await cursor.continue();
    }
  }
}
