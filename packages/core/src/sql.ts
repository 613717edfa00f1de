/**
 * @mailspool/core/sql: the contract's record rules (record.ts) as SQL, for engines that keep
 * their records in a SQL table (the Durable Objects shard, a D1, SQLite or Postgres engine).
 * Build lists, counts and claims from these fragments instead of restating the rules: each is the
 * SQL form of one rule, and the conformance suite holds every engine to the same answers.
 *
 * The fragments assume a table with these columns (the record's fields, snake_case):
 *
 * | column | type | `MessageRecord` field |
 * |---|---|---|
 * | `id` | TEXT, primary key | `id` |
 * | `created_at` | INTEGER (epoch ms) | `createdAt` |
 * | `meta` | TEXT (JSON) or NULL | `meta` |
 * | `size` | INTEGER or NULL | `size` |
 * | `retry_at` | INTEGER or NULL | `retryAt` |
 * | `locked_until` | INTEGER or NULL | `lockedUntil` |
 * | `token` | INTEGER NOT NULL DEFAULT 0 | `token` |
 * | `priority` | INTEGER NOT NULL DEFAULT 1 | `priority` (the rank: 0 high, 1 normal, 2 bulk) |
 *
 * The current time is the numbered parameter `?1` in every fragment (SQLite, D1 and Durable
 * Objects syntax; for Postgres write `$1`: {@link forPostgres}). Fragments are parenthesised, so
 * they combine with `AND` / `OR` safely.
 */

/** `isActive(r, now)`: an unexpired lock (it expires exactly at `locked_until`). */
export const ACTIVE = '(locked_until IS NOT NULL AND locked_until > ?1)';
/** `!isActive(r, now)`: no lock, or one that has expired. */
export const UNLOCKED = '(locked_until IS NULL OR locked_until <= ?1)';
/** `isComplete(r)`: meta and contents are both written. */
export const COMPLETE = '(meta IS NOT NULL AND size IS NOT NULL)';
/** `dueAt(r)`: the retry time, or the claim time of a message never scheduled. */
export const DUE_AT = 'coalesce(retry_at, created_at)';
/** `isDue(r, now)`: what `claimDue` takes now. */
export const DUE = `(${COMPLETE} AND ${UNLOCKED} AND ${DUE_AT} <= ?1)`;
/** `compareDue`: the order `claimDue` takes messages in (priority rank, oldest due, id). */
export const DUE_ORDER = `priority, ${DUE_AT}, id`;
/** `isDeferred(r, now)` without `dueBy`: listed by `getDeferredMessages()`. */
export const DEFERRED = `(retry_at IS NOT NULL AND ${UNLOCKED})`;
/** `isWaiting(r, now)`: counted as `deferred` by `stats()`. */
export const WAITING = `(retry_at IS NOT NULL AND retry_at > ?1 AND ${UNLOCKED})`;
/** `claimableAt(r, now)` for a complete record: its due time, or its lock's end when later. */
export const CLAIMABLE_AT = `(CASE WHEN ${ACTIVE} THEN max(${DUE_AT}, locked_until) ELSE ${DUE_AT} END)`;
/**
 * `isCurrent(r, lease)` for the lease whose token is `?2` (a fenced write's WHERE clause, with
 * `id = ?3` or the like): the token is the latest and the lock was not released.
 */
export const CURRENT = '(token = ?2 AND locked_until IS NOT NULL)';

/** The lowest priority's rank (`bulk`); ranks run from 0 (`high`). */
export const MAX_PRIORITY_RANK = 2;

/**
 * The due messages of one priority rank (`?3`) in claim order, at most `?2`: the tail of a
 * `SELECT … FROM <table>`. Run it for rank 0, 1, 2 until the claim is full. With the rank fixed,
 * an index on `(priority, DUE_AT, id) WHERE COMPLETE` gives the order, so no claim sorts the
 * backlog; one query over all ranks (`ORDER BY DUE_ORDER`) is correct too, but SQLite then
 * sorts every due row.
 */
export const DUE_OF_RANK = `WHERE priority = ?3 AND ${DUE} ORDER BY ${DUE_AT}, id LIMIT ?2`;

/** The `claimDue` selection of one rank (see {@link DUE_OF_RANK}); lock each row it returns
 * in the same transaction ({@link lockRow}), so no other claim can take it. */
export function selectDue(table: string): string {
  return `SELECT id, ${DUE_AT} AS due_at FROM ${table} ${DUE_OF_RANK}`;
}

/**
 * `lockRecord` as one conditional statement: locks row `?3` until `?2` with the next token when
 * it is not held, and returns the new token (no row returned: someone holds an unexpired lock,
 * or there is no such id). Safe without a surrounding read: the condition is the compare-and-swap.
 */
export function lockRow(table: string): string {
  return `UPDATE ${table} SET locked_until = ?2, token = token + 1 WHERE id = ?3 AND ${UNLOCKED} RETURNING token`;
}

/**
 * A fragment written for SQLite (`?1`, `?2`…) with Postgres' numbered parameters (`$1`, `$2`…)
 * and its `GREATEST` for the two-argument `max`.
 */
export function forPostgres(fragment: string): string {
  return fragment.replace(/\?(\d+)/g, '$$$1').replace(/\bmax\(/g, 'GREATEST(');
}
