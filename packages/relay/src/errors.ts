/**
 * The relay's error class and its stable codes. Like core's `MailspoolError`, check errors by
 * `code` (see {@link isRelayError}), never by `instanceof`.
 */

/** Stable error codes of the relay. Messages may change between releases; codes never do. */
export const RelayErrorCode = {
  /** An address contains a character SMTP does not allow (CR, LF, NUL, space, `<`, `>`, ...); nothing was sent. */
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  /** A protocol step (connect, a reply, a write) took longer than its timeout. */
  TIMEOUT: 'TIMEOUT',
  /** The connection could not be opened, or closed before the exchange finished. */
  CONNECTION: 'CONNECTION',
  /** The server sent something that is not a valid SMTP reply where one was expected. */
  PROTOCOL: 'PROTOCOL',
  /** The delivery was aborted through its `AbortSignal` (for instance because the lease was lost). */
  ABORTED: 'ABORTED',
  /** The lease on the message was taken over or could not be renewed before it expired. */
  LEASE_LOST: 'LEASE_LOST',
} as const;

export type RelayErrorCode = (typeof RelayErrorCode)[keyof typeof RelayErrorCode];

const CODES = new Set<string>(Object.values(RelayErrorCode));

/** An error of the relay with a stable {@link RelayErrorCode}. */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  readonly code: RelayErrorCode;

  constructor(code: RelayErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** True when `error` is a relay error (optionally with the given code), judged by name and code. */
export function isRelayError(error: unknown, code?: RelayErrorCode): error is RelayError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { name?: unknown; code?: unknown };
  if (candidate.name !== 'RelayError' || typeof candidate.code !== 'string') return false;
  if (!CODES.has(candidate.code)) return false;
  return code === undefined || candidate.code === code;
}
