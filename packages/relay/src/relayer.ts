/**
 * The transport contract: what the relay loop hands a `Relayer` and what it expects back.
 * The SMTP relayer (smtp/relayer.ts) is one implementation; tests and other transports
 * (an HTTP mail API, LMTP...) can be others.
 */
import type { Envelope, MessageId } from '@mailspool/core';

/** What happened to one recipient in one delivery attempt. */
export type RecipientStatus =
  /** The next hop took responsibility (a 2xx to the end of DATA). Never sent to again. */
  | 'delivered'
  /** A temporary failure (4xx, or no answer / a broken connection): try again later. */
  | 'deferred'
  /** A permanent failure (5xx, or an address that can not be sent): bounce. */
  | 'failed';

/**
 * Why a recipient ended as it did, in the terms of RFC 3464 (delivery status notifications).
 * For an SMTP reply `code` is set and the DSN reports `Diagnostic-Code: smtp; <code> <text>`;
 * without one (a connection failure) it reports `Diagnostic-Code: X-Mailspool; <text>`.
 */
export interface Diagnostic {
  /** The RFC 3463 status, `class.subject.detail` (for instance `5.1.1`); its class matches the status. */
  readonly status: string;
  /** The SMTP reply code when the status came from a reply. */
  readonly code?: number;
  /** Human-readable text: the reply text, or what went wrong locally. */
  readonly text: string;
  /** The host that gave the reply (the DSN's `Remote-MTA`). */
  readonly remoteMta?: string;
}

/** The outcome of one recipient. */
export interface RecipientOutcome {
  readonly recipient: string;
  readonly status: RecipientStatus;
  readonly diagnostic: Diagnostic;
}

/**
 * The result of one attempt: one outcome per recipient handed to the relayer. A recipient the
 * relayer leaves out counts as deferred (nothing is lost by an incomplete answer).
 */
export interface DeliveryResult {
  readonly recipients: readonly RecipientOutcome[];
  /**
   * Set when the relayer did not try at all (its destination is suspended, say): the loop puts
   * the message back, due at `until` (epoch ms), with its meta, attempts and recipients as they
   * were, so the wait counts as no attempt. `recipients` is then ignored.
   */
  readonly postponed?: { readonly until: number; readonly reason: string };
}

/** A message as the relay loop hands it over; `envelope.recipients` holds only those still pending. */
export interface OutgoingMessage {
  readonly id: MessageId;
  readonly envelope: Envelope;
  readonly contents: Uint8Array;
}

/** Options of {@link Relayer.deliver}. */
export interface DeliverOptions {
  /**
   * Aborted when the relay loop lost its lease on the message. A relayer must then stop as soon
   * as it can and must not complete a transaction it has not completed yet (for SMTP: never send
   * the final `.`); it rejects, and the loop writes nothing.
   */
  readonly signal: AbortSignal;
}

/** A transport that tries to deliver one message to its pending recipients. */
export interface Relayer {
  /**
   * Tries one delivery. Resolves with an outcome per recipient. A rejection counts as a temporary
   * failure of every pending recipient (a `RelayError` with code `INVALID_ADDRESS` as a permanent
   * one), unless `options.signal` is aborted, in which case nothing is written.
   */
  deliver(message: OutgoingMessage, options: DeliverOptions): Promise<DeliveryResult>;
}

/** One outcome per recipient, all with the same status and diagnostic. */
export function outcomeForAll(
  recipients: readonly string[],
  status: RecipientStatus,
  diagnostic: Diagnostic,
): RecipientOutcome[] {
  return recipients.map((recipient) => ({ recipient, status, diagnostic }));
}

/** Formats a diagnostic as one line for logs and `last_error`, e.g. `451 4.2.1 Mailbox busy`. */
export function formatDiagnostic(diagnostic: Diagnostic): string {
  const head =
    diagnostic.code === undefined ? diagnostic.status : `${diagnostic.code} ${diagnostic.status}`;
  return `${head} ${diagnostic.text}`.trim();
}
