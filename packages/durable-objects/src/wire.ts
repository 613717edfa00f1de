/**
 * Internal (used by queue-shard.ts and engine.ts): how results and errors cross the Workers RPC
 * boundary between the client engine and a shard. Both sides live in this one file.
 *
 * Classes don't survive RPC (workerd rebuilds only built-in error types and drops properties such
 * as `code`), so a shard never throws across the boundary: it returns a {@link Wire} value,
 * encoding failures with core's `encodeError`, and the client rebuilds them with `decodeError`.
 */
import {
  decodeError,
  type EncodedError,
  ErrorCode,
  encodeError,
  isEncodedError,
  isMailspoolError,
  MailspoolError,
} from '@mailspool/core';

/** A shard's answer: the value, or the encoded error. */
export type Wire<T> = { readonly ok: T } | { readonly error: EncodedError };

/**
 * Shard side: runs `body` and wraps its value, or encodes what it threw. SQLite's "disk full"
 * becomes `QUOTA_EXCEEDED`; anything not a mailspool error or TypeError is encoded as `INTERNAL`
 * (the client turns that into `UNAVAILABLE` with the remote message).
 */
export function answer<T>(body: () => T): Promise<Wire<T>> {
  return Promise.resolve(answerSync(body));
}

/** {@link answer}, answered at once (the writes and the calls of a shard's `batch`). */
export function answerSync<T>(body: () => T): Wire<T> {
  try {
    return { ok: body() };
  } catch (error) {
    return { error: encodeError(classify(error)) };
  }
}

/** Maps storage failures to the contract's codes; leaves mailspool errors and TypeErrors alone. */
export function classify(error: unknown): unknown {
  if (isMailspoolError(error) || error instanceof TypeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // SQLITE_FULL ("database or disk is full") is what the 10 GB per-object limit looks like.
  if (/SQLITE_FULL|disk is full|storage limit/i.test(message)) {
    return new MailspoolError(ErrorCode.QUOTA_EXCEEDED, `the shard is full: ${message}`, {
      cause: error,
    });
  }
  return error;
}

/**
 * Client side: the value of a shard's answer, or throws the decoded error. A call that fails in
 * transport (the object was reset, overloaded, or could not be reached) rejects with
 * {@link unreachable}'s `UNAVAILABLE` instead.
 */
export function unwrap<T>(wire: Wire<T>): T {
  if ('error' in wire) {
    if (isEncodedError(wire.error)) throw decodeError(wire.error);
    throw new MailspoolError(ErrorCode.CORRUPT, 'queue shard sent a malformed answer');
  }
  return wire.ok;
}

/** Client side: what a call that failed in transport rejects with (`UNAVAILABLE`, with `cause`). */
export function unreachable(error: unknown): MailspoolError {
  return new MailspoolError(
    ErrorCode.UNAVAILABLE,
    `queue shard unreachable: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
