/**
 * The meta keys the outbox stores next to each queued message, and the pure rules that turn a
 * message's meta into what the Outbox shows. Internal to this app: used by the compose code,
 * the flusher (in tabs and in the service worker) and the view.
 *
 * A message's meta is the envelope written by core's `toMeta` (`sender`, `recipients`,
 * `timestamp`, `attempts`) plus the UI keys below. See README.md ("Meta keys").
 */
import type { MessageInfo, MessageMeta, MetaValue } from '@mailspool/core';

/** What the flusher last decided about a message (the meta key `status`). */
export type OutboxStatus = 'queued' | 'retry' | 'failed';

/** What the Outbox shows for a message: `status`, or `sending` while a flusher holds its lease. */
export type OutboxState = OutboxStatus | 'sending';

/** The UI meta keys (the envelope keys come from core's `toMeta`). */
export const MetaKey = {
  /** The Subject header as typed (string). */
  subject: 'subject',
  /** The From header as typed, display name included (string). */
  from: 'from',
  /** Display copies of the To / Cc / Bcc lists (string[]); the envelope's `recipients` is their union. */
  to: 'to',
  cc: 'cc',
  bcc: 'bcc',
  /** Attachment file names (string[]). */
  attachments: 'attachment_names',
  /** Size of the RFC 5322 message in bytes (number). */
  size: 'size',
  /** When the user pressed Send, or last pressed "retry now" (epoch ms). */
  queuedAt: 'queued_at',
  /** {@link OutboxStatus}. */
  status: 'status',
  /** Human-readable reason of the last failure (string), absent when there was none. */
  lastError: 'last_error',
  /** Machine-readable class of the last failure (see {@link ErrorKind}). */
  lastErrorKind: 'last_error_kind',
  /** When the message was marked failed (epoch ms). */
  failedAt: 'failed_at',
  /**
   * When the relay should send it (epoch ms), posted as `sendAt`: the end of the undo window
   * after Send, or the time picked with "Send later".
   */
  sendAt: 'send_at',
  /** Until when "Undo" is offered (epoch ms): Send plus the undo window. */
  undoUntil: 'undo_until',
} as const;

/** Why the last attempt did not succeed. */
export type ErrorKind =
  /** No HTTP response while the browser said it was offline: not counted as an attempt. */
  | 'offline'
  /** No HTTP response (network error, timeout) while online. */
  | 'network'
  /** The relay answered 5xx / 408 / 429: try again later. */
  | 'unavailable'
  /** The relay refused the token or the URL points nowhere (401 / 403 / 404 / 405): fix the settings. */
  | 'config'
  /** The relay refused the message for good (400 / 409 / 413 / 415 / other 4xx). */
  | 'rejected'
  /** The stored message can't be posted (its meta fails validation). */
  | 'corrupt'
  /** Still not delivered after the queue lifetime. */
  | 'expired';

/**
 * The retry time of a held (failed) message: the largest valid Date. `claimDue` never takes it;
 * "retry now" moves it back to now.
 */
export const HELD_UNTIL = 8_640_000_000_000_000;

/** One Outbox row, read from a message's meta. */
export interface OutboxItem {
  readonly id: string;
  readonly state: OutboxState;
  readonly subject: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly bcc: readonly string[];
  readonly attachments: readonly string[];
  readonly size: number;
  readonly attempts: number;
  readonly queuedAt: number;
  readonly lastError: string | null;
  readonly lastErrorKind: ErrorKind | null;
  /** When the flusher will try again: the engine's retry time; `null` when held or never deferred. */
  readonly nextAttemptAt: number | null;
  /** When the relay is to send it (see {@link MetaKey.sendAt}); `null` for mail from before. */
  readonly sendAt: number | null;
  readonly undoUntil: number | null;
}

function str(value: MetaValue | undefined, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function num(value: MetaValue | undefined, fallback = 0): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function list(value: MetaValue | undefined): readonly string[] {
  return Array.isArray(value) ? value : [];
}

/** The stored status; meta written by an older page (or by hand) without one reads as `queued`. */
export function statusOf(meta: MessageMeta): OutboxStatus {
  const status = meta[MetaKey.status];
  return status === 'retry' || status === 'failed' ? status : 'queued';
}

/**
 * Meta keys older pages wrote and this one no longer reads; {@link withMeta} drops them, so a
 * message loses them at its next write. `next_attempt_at` mirrored the engine's retry time
 * before the contract had `inspect`.
 */
const RETIRED_KEYS = ['next_attempt_at'] as const;

/**
 * The Outbox row of a message, from what the engine tells about it (`inspect`): its meta, and
 * its state and retry time, which the engine keeps and the meta does not mirror.
 */
export function toOutboxItem(info: MessageInfo): OutboxItem {
  const { id, meta } = info;
  const status = statusOf(meta);
  const active = info.state === 'active';
  const next =
    status !== 'failed' && info.retryAt !== null && info.retryAt < HELD_UNTIL ? info.retryAt : null;
  const error = meta[MetaKey.lastError];
  const kind = meta[MetaKey.lastErrorKind];
  return {
    id,
    // A failed message is held, so a lease on it is a short "retry now"/"cancel" lock: keep
    // showing it as failed rather than flickering to "sending".
    state: active && status !== 'failed' ? 'sending' : status,
    subject: str(meta[MetaKey.subject]),
    from: str(meta[MetaKey.from], str(meta.sender)),
    to: list(meta[MetaKey.to]),
    cc: list(meta[MetaKey.cc]),
    bcc: list(meta[MetaKey.bcc]),
    attachments: list(meta[MetaKey.attachments]),
    size: num(meta[MetaKey.size]),
    attempts: num(meta.attempts),
    queuedAt: num(meta[MetaKey.queuedAt], num(meta.timestamp)),
    lastError: typeof error === 'string' ? error : null,
    lastErrorKind: typeof kind === 'string' ? (kind as ErrorKind) : null,
    nextAttemptAt: next,
    sendAt: typeof meta[MetaKey.sendAt] === 'number' ? (meta[MetaKey.sendAt] as number) : null,
    undoUntil:
      typeof meta[MetaKey.undoUntil] === 'number' ? (meta[MetaKey.undoUntil] as number) : null,
  };
}

/** A copy of `meta` with `changes` applied; `undefined` values delete keys (and retired keys go). */
export function withMeta(
  meta: MessageMeta,
  changes: Readonly<Record<string, MetaValue | undefined>>,
): Record<string, MetaValue> {
  const next: Record<string, MetaValue> = { ...meta };
  for (const key of RETIRED_KEYS) delete next[key];
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete next[key];
    else next[key] = value;
  }
  return next;
}
