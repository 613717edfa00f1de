/**
 * The one error class of mailspool, its stable codes, and the encoding that lets an error cross
 * a boundary that drops classes (Workers RPC, postMessage).
 *
 * Check errors by `code` (see {@link isMailspoolError}), never by `instanceof`: an error rebuilt
 * on the far side of an RPC boundary is a different class instance.
 */

/** Stable error codes. Messages may change between releases; codes never do. */
export const ErrorCode = {
  /** The id was never claimed, or was deleted (or a read asked for something not written yet). */
  NOT_FOUND: 'NOT_FOUND',
  /** The session was closed; every call after `close()` rejects with this. */
  SESSION_CLOSED: 'SESSION_CLOSED',
  /** The lease given is no longer current: someone locked the message again, or it was released or unlocked. */
  STALE_LEASE: 'STALE_LEASE',
  /** The contents (or meta) exceed the engine's size limit. */
  TOO_LARGE: 'TOO_LARGE',
  /** The store refused the write for lack of space. */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /** The store can't be reached, is blocked or overloaded: retry later. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** Stored data failed validation. */
  CORRUPT: 'CORRUPT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const CODES = new Set<string>(Object.values(ErrorCode));

/** Options of {@link MailspoolError}. */
export interface MailspoolErrorOptions {
  /** The underlying error (a DOMException, an SQLite error, a decoded remote error...). */
  readonly cause?: unknown;
}

/** The error every engine rejects with for anything but wrong arguments (those are `TypeError`s). */
export class MailspoolError extends Error {
  override readonly name = 'MailspoolError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: MailspoolErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/**
 * True when `error` is a mailspool error (optionally with the given code), judged by its `name`
 * and `code` rather than by class, so it also holds for errors rebuilt after crossing RPC.
 */
export function isMailspoolError(error: unknown, code?: ErrorCode): error is MailspoolError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { name?: unknown; code?: unknown };
  if (candidate.name !== 'MailspoolError' || typeof candidate.code !== 'string') return false;
  if (!CODES.has(candidate.code)) return false;
  return code === undefined || candidate.code === code;
}

/** The plain-data form of an error, safe to send over RPC, postMessage or JSON. */
export interface EncodedError {
  readonly mailspool: 1;
  /** A mailspool code, or `TYPE_ERROR` for argument errors, or `INTERNAL` for anything else. */
  readonly code: ErrorCode | 'TYPE_ERROR' | 'INTERNAL';
  readonly message: string;
}

/** Encodes any thrown value as plain data; {@link decodeError} rebuilds it on the other side. */
export function encodeError(error: unknown): EncodedError {
  if (isMailspoolError(error)) return { mailspool: 1, code: error.code, message: error.message };
  if (error instanceof TypeError)
    return { mailspool: 1, code: 'TYPE_ERROR', message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { mailspool: 1, code: 'INTERNAL', message };
}

/** True when `value` is an {@link EncodedError}. */
export function isEncodedError(value: unknown): value is EncodedError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { mailspool?: unknown }).mailspool === 1 &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/**
 * Rebuilds an error encoded by {@link encodeError}: a `MailspoolError` with the same code, a
 * `TypeError`, or (for anything unexpected) `UNAVAILABLE` with the remote message kept.
 */
export function decodeError(encoded: EncodedError): Error {
  if (encoded.code === 'TYPE_ERROR') return new TypeError(encoded.message);
  if (encoded.code !== 'INTERNAL' && CODES.has(encoded.code)) {
    return new MailspoolError(encoded.code, encoded.message);
  }
  return new MailspoolError(ErrorCode.UNAVAILABLE, `remote failure: ${encoded.message}`, {
    cause: encoded,
  });
}
