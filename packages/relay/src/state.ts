/**
 * The relay's per-message state, kept in the message's meta next to the envelope keys that
 * `toMeta()` writes. Every key the relay reads or writes is listed in {@link RelayMetaKey}.
 */
import { type Envelope, ErrorCode, MailspoolError, type MessageMeta } from '@mailspool/core';

/** The meta keys the relay owns (the envelope's own keys, `attempts` included, are core's). */
export const RelayMetaKey = {
  /** `string[]`: recipients that got a 2xx for the whole transaction. Never sent to again. */
  DELIVERED: 'delivered',
  /** `string[]`: recipients that failed for good (reported in a DSN, or dropped for a bounce). */
  FAILED: 'failed',
  /** `number`: epoch ms of the latest delivery attempt. */
  LAST_ATTEMPT: 'last_attempt',
  /** `string`: the latest temporary failure, as `code status text` (for operators and logs). */
  LAST_ERROR: 'last_error',
  /** `true` on a DSN made by the relay (its sender is also `''`). */
  BOUNCE: 'bounce',
  /** `string`, on a DSN: the id of the message it reports on. */
  BOUNCE_OF: 'bounce_of',
  /**
   * `number`: when the relay queued the message's delay warning (epoch ms). Set once, in the
   * commit that stores the warning, so a message gets at most one.
   */
  DELAY_WARNED: 'delay_warned',
} as const;

/** The relay's state of one message, read from its meta. */
export interface RelayState {
  readonly delivered: readonly string[];
  readonly failed: readonly string[];
  readonly lastAttempt: number | undefined;
  readonly lastError: string | undefined;
}

function corrupt(key: string): MailspoolError {
  return new MailspoolError(
    ErrorCode.CORRUPT,
    `relay meta key ${JSON.stringify(key)} is malformed`,
  );
}

function stringList(meta: MessageMeta, key: string): readonly string[] {
  const value = meta[key];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw corrupt(key);
  return value as readonly string[];
}

/** Reads the relay state from `meta`. Throws a `MailspoolError` `CORRUPT` for a malformed key. */
export function readRelayState(meta: MessageMeta): RelayState {
  const lastAttempt = meta[RelayMetaKey.LAST_ATTEMPT];
  const lastError = meta[RelayMetaKey.LAST_ERROR];
  if (lastAttempt !== undefined && typeof lastAttempt !== 'number')
    throw corrupt(RelayMetaKey.LAST_ATTEMPT);
  if (lastError !== undefined && typeof lastError !== 'string')
    throw corrupt(RelayMetaKey.LAST_ERROR);
  return {
    delivered: stringList(meta, RelayMetaKey.DELIVERED),
    failed: stringList(meta, RelayMetaKey.FAILED),
    lastAttempt,
    lastError,
  };
}

/** The recipients still to try: the envelope's, minus delivered and failed ones, without repeats. */
export function pendingRecipients(envelope: Envelope, state: RelayState): string[] {
  const done = new Set([...state.delivered, ...state.failed]);
  const pending: string[] = [];
  for (const recipient of envelope.recipients) {
    if (done.has(recipient)) continue;
    done.add(recipient);
    pending.push(recipient);
  }
  return pending;
}
