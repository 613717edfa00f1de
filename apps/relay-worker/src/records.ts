/**
 * Delivery records: what the relay keeps about a message, in its shard's `message_records`
 * table, written by `RelayShard.onMessageChange` in the same SQLite transaction as the queue
 * change it describes (an attempt's commit, a cancel, an operator's delete). While the message
 * is queued the record holds the SMTP replies of its attempts so far; when the message leaves
 * the queue it gets its final state and is kept for `RETENTION_DAYS`. Only meta is read to
 * build it, never contents. Everything here is pure, so the rules can be read (and tested) on
 * their own.
 */
import { type Envelope, fromMeta, type MessageId, type MessageMeta } from '@mailspool/core';
import {
  formatDiagnostic,
  type RecipientOutcome,
  RelayMetaKey,
  readRelayState,
} from '@mailspool/relay';
import { type MessageView, SEND_AT_KEY } from './queue.js';

/** How a message left the queue. */
export type FinalState = 'delivered' | 'bounced' | 'canceled' | 'deleted';

/** Every state `GET /v1/messages/:id` reports. */
export type DeliveryState = MessageView['state'] | FinalState;

/** What happened to one recipient: the latest attempt's SMTP reply, and when. */
export interface RecipientResult {
  readonly status: 'pending' | 'delivered' | 'deferred' | 'failed';
  /** The reply (`250 2.0.0 OK`) or the local failure, as one line; `null` before any attempt. */
  readonly reply: string | null;
  /** When that reply came (epoch ms); `null` before any attempt. */
  readonly at: number | null;
}

/** The stored record (JSON in `message_records.data`). */
export interface DeliveryRecord {
  readonly v: 1;
  /** `null` while the message is queued. */
  readonly state: FinalState | null;
  readonly from: string;
  readonly receivedAt: number;
  readonly attempts: number;
  readonly lastAttemptAt: number | null;
  readonly lastError: string | null;
  readonly bounce: boolean;
  readonly sendAt: number | null;
  readonly results: Readonly<Record<string, RecipientResult>>;
  readonly finishedAt: number | null;
}

/** The webhook events (see docs/relay-api.md). */
export type EventType =
  | 'message.delivered'
  | 'message.deferred'
  | 'message.bounced'
  | 'message.canceled';

/** What an attempt reported for its message, noted in memory by the shard's relayer wrapper. */
export interface AttemptNote {
  /** The recipients handed to the relayer (those still pending before the attempt). */
  readonly pending: readonly string[];
  /** The relayer's outcomes, as it answered (the relay loop treats a missing one as deferred). */
  readonly outcomes: readonly RecipientOutcome[];
  /** When the attempt answered (epoch ms). */
  readonly at: number;
}

/** The change being recorded, as `RelayShard.onMessageChange` sees it. */
export interface RecordInput {
  readonly kind: 'attempt' | 'delete';
  readonly ended: boolean;
  /** The meta before the change. */
  readonly previous: MessageMeta | null;
  /** The meta the change writes (an attempt that does not end the message). */
  readonly next: MessageMeta | undefined;
  /** The record so far, if any. */
  readonly existing: DeliveryRecord | undefined;
  /** The attempt's outcomes, when the change is the commit of an attempt this shard ran. */
  readonly attempt: AttemptNote | undefined;
  /** How a cancel or an operator's delete ended the message, when it is one. */
  readonly ending: 'canceled' | 'deleted' | undefined;
  readonly now: number;
}

/** What to store for a change, and the event it announces (if any). */
export interface RecordOutput {
  readonly record: DeliveryRecord;
  readonly event: EventType | undefined;
}

const MAX_REPLY = 500;

function reply(outcome: RecipientOutcome): string {
  return formatDiagnostic(outcome.diagnostic).slice(0, MAX_REPLY);
}

function fresh(envelope: Envelope, meta: MessageMeta): DeliveryRecord {
  const results: Record<string, RecipientResult> = {};
  for (const rcpt of envelope.recipients)
    results[rcpt] = { status: 'pending', reply: null, at: null };
  const sendAt = meta[SEND_AT_KEY];
  return {
    v: 1,
    state: null,
    from: envelope.sender,
    receivedAt: envelope.timestamp,
    attempts: envelope.attempts,
    lastAttemptAt: null,
    lastError: null,
    bounce: meta[RelayMetaKey.BOUNCE] === true,
    sendAt: typeof sendAt === 'number' ? sendAt : null,
    results,
    finishedAt: null,
  };
}

/**
 * The record after `input`, or `undefined` when the change is not worth one (a hold, release or
 * flush; an id claimed but never written; meta the relay can't read).
 */
export function nextRecord(input: RecordInput): RecordOutput | undefined {
  const { previous, now } = input;
  if (previous === null || previous.sender === undefined) return undefined;
  let envelope: Envelope;
  let relay: ReturnType<typeof readRelayState>;
  try {
    envelope = fromMeta(previous);
    relay = readRelayState(previous);
  } catch {
    return undefined; // corrupt meta: the relay keeps such a message for an operator, unrecorded
  }
  const base = input.existing ?? fresh(envelope, previous);
  const results: Record<string, RecipientResult> = { ...base.results };
  for (const rcpt of envelope.recipients) {
    results[rcpt] ??= {
      status: relay.delivered.includes(rcpt)
        ? 'delivered'
        : relay.failed.includes(rcpt)
          ? 'failed'
          : 'pending',
      reply: null,
      at: null,
    };
  }

  if (input.ended && input.ending !== undefined) {
    return {
      record: { ...base, results, state: input.ending, finishedAt: now },
      event: input.ending === 'canceled' ? 'message.canceled' : undefined,
    };
  }

  // An attempt's own commit: it ends the message or counts one more attempt. (A hold, release
  // or flush also commits under a lease, but never changes the attempt count.)
  const attempt = input.attempt;
  const nextAttempts = input.next?.attempts;
  const isAttempt =
    attempt !== undefined &&
    input.kind === 'attempt' &&
    (input.ended || nextAttempts === envelope.attempts + 1);
  if (isAttempt) {
    const answered = new Map(attempt.outcomes.map((o) => [o.recipient, o]));
    for (const rcpt of attempt.pending) {
      const outcome = answered.get(rcpt);
      results[rcpt] = outcome
        ? { status: outcome.status, reply: reply(outcome), at: attempt.at }
        : { status: 'deferred', reply: '4.0.0 the relayer reported no outcome', at: attempt.at };
      // The message ends with recipients still deferred only when the retry policy gave up.
      if (input.ended && results[rcpt]!.status === 'deferred') {
        results[rcpt] = { ...results[rcpt]!, status: 'failed' };
      }
    }
    const lastError = input.next?.[RelayMetaKey.LAST_ERROR];
    const common = {
      ...base,
      results,
      attempts: envelope.attempts + 1,
      lastAttemptAt: attempt.at,
      lastError: typeof lastError === 'string' ? lastError : base.lastError,
    };
    if (!input.ended) return { record: common, event: 'message.deferred' };
    const state = finalOf(results);
    return {
      record: { ...common, state, finishedAt: now },
      event: state === 'bounced' ? 'message.bounced' : 'message.delivered',
    };
  }

  if (!input.ended) return undefined;
  // Deleted without a note: the relay loop removing a message with nothing left to send (its
  // recipients were all done before), or a delete through the engine by someone else.
  const done = envelope.recipients.every(
    (rcpt) => relay.delivered.includes(rcpt) || relay.failed.includes(rcpt),
  );
  if (!done)
    return { record: { ...base, results, state: 'deleted', finishedAt: now }, event: undefined };
  const state = finalOf(results);
  return {
    record: { ...base, results, state, finishedAt: now },
    event: state === 'bounced' ? 'message.bounced' : 'message.delivered',
  };
}

function finalOf(results: Readonly<Record<string, RecipientResult>>): 'delivered' | 'bounced' {
  return Object.values(results).some((r) => r.status === 'failed') ? 'bounced' : 'delivered';
}

/** What `GET /v1/messages/:id` answers, queued or not (docs/relay-api.md). */
export interface MessageStatus extends Omit<MessageView, 'state'> {
  readonly state: DeliveryState;
  readonly results: Readonly<Record<string, RecipientResult>>;
  /** When the message left the queue; `null` while queued. */
  readonly finishedAt: number | null;
  /** Until when this answer is kept after the message left the queue; `null` while queued. */
  readonly expiresAt: number | null;
}

/** The status of a queued message: its live view, with the replies recorded so far. */
export function queuedStatus(view: MessageView, record: DeliveryRecord | undefined): MessageStatus {
  const results: Record<string, RecipientResult> = {};
  for (const [rcpt, status] of Object.entries(view.recipients)) {
    // The record and the meta change in one transaction, so they agree; the meta's word on
    // delivered and failed is kept, and the record adds the reply (and `deferred`).
    const known = record?.results[rcpt];
    results[rcpt] =
      known === undefined
        ? { status, reply: null, at: null }
        : status === 'pending'
          ? known
          : { ...known, status };
  }
  return {
    ...view,
    results,
    finishedAt: null,
    expiresAt: null,
  };
}

/**
 * A status from a record alone: a message that left the queue (`state` its final state), or,
 * for a `message.deferred` event, one that was just deferred to `nextAttemptAt`.
 */
export function recordStatus(
  id: MessageId,
  record: DeliveryRecord,
  state: DeliveryState,
  nextAttemptAt: number | null,
  expiresAt: number | null,
): MessageStatus {
  const recipients: Record<string, 'pending' | 'delivered' | 'failed'> = {};
  for (const [rcpt, result] of Object.entries(record.results)) {
    recipients[rcpt] =
      result.status === 'delivered'
        ? 'delivered'
        : result.status === 'failed'
          ? 'failed'
          : 'pending';
  }
  return {
    id,
    state,
    from: record.from,
    attempts: record.attempts,
    receivedAt: record.receivedAt,
    nextAttemptAt,
    recipients,
    lastError: record.lastError,
    lastAttemptAt: record.lastAttemptAt,
    bounce: record.bounce,
    sendAt: record.sendAt,
    results: record.results,
    finishedAt: record.finishedAt,
    expiresAt,
  };
}

/** Parses stored record text; `undefined` for anything that is not a record of this version. */
export function parseRecord(text: string): DeliveryRecord | undefined {
  try {
    return asRecord(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** `value` as a record of this version, or `undefined`. */
export function asRecord(value: unknown): DeliveryRecord | undefined {
  return value !== null && typeof value === 'object' && (value as DeliveryRecord).v === 1
    ? (value as DeliveryRecord)
    : undefined;
}
