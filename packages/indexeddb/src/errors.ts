/**
 * Internal (used by database.ts): maps what IndexedDB throws to mailspool codes, keeping the
 * original DOMException as `cause`.
 */
import { ErrorCode, isMailspoolError, MailspoolError } from '@mailspool/core';

/** DOMException names (https://w3c.github.io/IndexedDB/#exceptions) and the code each becomes. */
const CODE_BY_NAME: Readonly<Record<string, ErrorCode>> = {
  // The origin's quota is used up (a request error, or the abort reason of a failed commit).
  QuotaExceededError: ErrorCode.QUOTA_EXCEEDED,
  // The transaction was aborted (by the browser, a closing connection, or a sibling request).
  AbortError: ErrorCode.UNAVAILABLE,
  // The connection is closing or closed (versionchange, DevTools "clear storage", a crash).
  InvalidStateError: ErrorCode.UNAVAILABLE,
  // A request was made after the transaction ended; only a bug or a closed connection does that.
  TransactionInactiveError: ErrorCode.UNAVAILABLE,
  // The backing store failed (disk error, Chromium's "Internal error opening backing store").
  UnknownError: ErrorCode.UNAVAILABLE,
  // The transaction or the open timed out.
  TimeoutError: ErrorCode.UNAVAILABLE,
  // The database has a newer version than this code knows: another tab runs a newer app.
  VersionError: ErrorCode.UNAVAILABLE,
  // IndexedDB is disabled (some private modes, storage access denied).
  SecurityError: ErrorCode.UNAVAILABLE,
  NotAllowedError: ErrorCode.UNAVAILABLE,
  // A store or index this code expects is missing: the database is not ours, or damaged.
  NotFoundError: ErrorCode.CORRUPT,
  // Stored data that can not be read back or keyed as expected.
  DataError: ErrorCode.CORRUPT,
  DataCloneError: ErrorCode.CORRUPT,
  // A key taken twice: only a random-id collision does that, and a retry draws new ids.
  ConstraintError: ErrorCode.UNAVAILABLE,
};

/**
 * Turns anything thrown inside an IndexedDB operation into the error the caller sees:
 * mailspool errors and `TypeError`s (argument errors) pass through; DOMExceptions become a
 * `MailspoolError` with the exception as `cause`. When the transaction itself aborted with a
 * reason (`transactionError`, e.g. a quota failure at commit), that reason wins over what the
 * request saw (a generic `AbortError`, or `TransactionInactiveError` for a later request).
 */
export function mapError(error: unknown, transactionError?: unknown): Error {
  if (isMailspoolError(error) || error instanceof TypeError) return error as Error;
  const cause = nameOf(transactionError) !== undefined ? transactionError : error;
  const name = nameOf(cause);
  const code = (name !== undefined && CODE_BY_NAME[name]) || ErrorCode.UNAVAILABLE;
  const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new MailspoolError(code, `IndexedDB failed (${detail})`, { cause });
}

function nameOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const name = (error as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}
