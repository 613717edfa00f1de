/**
 * Internal test support: a scripted in-process `Relayer` (a test double for the transport only;
 * the queue, engine and clock around it are real), message helpers and a DSN reader.
 */
import {
  type Envelope,
  type MessageId,
  type MessageMeta,
  type StorageEngine,
  toMeta,
} from '@mailspool/core';
import PostalMime from 'postal-mime';
import type {
  DeliverOptions,
  DeliveryResult,
  Diagnostic,
  OutgoingMessage,
  RecipientOutcome,
  RecipientStatus,
  Relayer,
} from '../../src/index.js';

/** One call the scripted relayer received. */
export interface Call {
  readonly id: MessageId;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly contents: Uint8Array;
  readonly signal: AbortSignal;
}

export type Script = (
  message: OutgoingMessage,
  options: DeliverOptions,
) => DeliveryResult | Promise<DeliveryResult>;

/** A relayer that answers from a script and records every call. */
export class ScriptedRelayer implements Relayer {
  readonly calls: Call[] = [];
  #script: Script;
  #active = 0;
  maxActive = 0;

  constructor(script: Script) {
    this.#script = script;
  }

  set script(script: Script) {
    this.#script = script;
  }

  async deliver(message: OutgoingMessage, options: DeliverOptions): Promise<DeliveryResult> {
    this.calls.push({
      id: message.id,
      sender: message.envelope.sender,
      recipients: [...message.envelope.recipients],
      contents: message.contents,
      signal: options.signal,
    });
    this.#active++;
    this.maxActive = Math.max(this.maxActive, this.#active);
    try {
      return await this.#script(message, options);
    } finally {
      this.#active--;
    }
  }

  /** Every recipient handed over across all calls, with repeats. */
  sentTo(): string[] {
    return this.calls.flatMap((c) => c.recipients);
  }
}

export const SMTP: Record<RecipientStatus, Diagnostic> = {
  delivered: { status: '2.0.0', code: 250, text: 'OK queued', remoteMta: 'peer.test' },
  deferred: { status: '4.2.1', code: 451, text: 'Mailbox busy', remoteMta: 'peer.test' },
  failed: { status: '5.1.1', code: 550, text: 'No such user', remoteMta: 'peer.test' },
};

/** A result from a recipient → status table (recipients not listed are delivered). */
export function answer(
  message: OutgoingMessage,
  statuses: Readonly<Record<string, RecipientStatus>> = {},
): DeliveryResult {
  const recipients: RecipientOutcome[] = message.envelope.recipients.map((recipient) => {
    const status = statuses[recipient] ?? 'delivered';
    return { recipient, status, diagnostic: SMTP[status] };
  });
  return { recipients };
}

/** The same status for every recipient. */
export const all =
  (status: RecipientStatus): Script =>
  (message) =>
    answer(message, Object.fromEntries(message.envelope.recipients.map((r) => [r, status])));

export const encoder = new TextEncoder();

export function messageBytes(subject = 'Hello'): Uint8Array {
  return encoder.encode(
    `From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: ${subject}\r\nMessage-ID: <orig-1@example.test>\r\n\r\nHello Bob.\r\n.dot line\r\n`,
  );
}

/** Stores a message through the engine, received at `timestamp`. */
export async function enqueue(
  engine: StorageEngine,
  envelope: Partial<Envelope> & { recipients: readonly string[]; timestamp: number },
  contents: Uint8Array = messageBytes(),
  extraMeta: MessageMeta = {},
): Promise<MessageId> {
  const session = await engine.connect();
  try {
    return await session.storeMessage({
      meta: {
        ...toMeta({
          sender: envelope.sender ?? 'alice@example.test',
          recipients: envelope.recipients,
          timestamp: envelope.timestamp,
          attempts: envelope.attempts ?? 0,
        }),
        ...extraMeta,
      },
      contents,
    });
  } finally {
    await session.close();
  }
}

/** Every stored message, with meta and (when written) contents. */
export async function dump(
  engine: StorageEngine,
): Promise<{ id: MessageId; meta: MessageMeta; contents: Uint8Array | null }[]> {
  const session = await engine.connect();
  try {
    const out = [];
    for (const id of await session.getAllMessages()) {
      const meta = await session.getMessageMeta(id);
      const contents = await session.getMessageContents(id).catch(() => null);
      out.push({ id, meta, contents });
    }
    return out;
  } finally {
    await session.close();
  }
}

/** A parsed DSN: its headers, human text, delivery-status fields and returned headers. */
export interface ParsedDsn {
  readonly from: string | undefined;
  readonly to: string[];
  readonly subject: string | undefined;
  readonly contentType: string | undefined;
  readonly text: string;
  readonly perMessage: Record<string, string>;
  readonly perRecipient: Record<string, string>[];
  readonly returnedHeaders: string;
}

function fields(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** Parses a DSN with postal-mime (a real MIME parser) and splits the delivery-status part. */
export async function parseDsn(bytes: Uint8Array): Promise<ParsedDsn> {
  const email = await PostalMime.parse(bytes);
  const decode = (content: string | ArrayBuffer | Uint8Array): string =>
    typeof content === 'string' ? content : new TextDecoder().decode(content);
  const status = email.attachments.find((a) => a.mimeType === 'message/delivery-status');
  const headers = email.attachments.find((a) => a.mimeType === 'text/rfc822-headers');
  const blocks = status
    ? decode(status.content)
        .split(/\r?\n\r?\n/)
        .filter((b) => b.trim())
    : [];
  return {
    from: email.from?.address,
    to: (email.to ?? []).map((a) => a.address ?? ''),
    subject: email.subject,
    contentType: email.headers.find((h) => h.key === 'content-type')?.value,
    text: email.text ?? '',
    perMessage: blocks[0] ? fields(blocks[0]) : {},
    perRecipient: blocks.slice(1).map(fields),
    returnedHeaders: headers ? decode(headers.content) : '',
  };
}
