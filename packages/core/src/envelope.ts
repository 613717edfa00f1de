/**
 * Typed message meta: the envelope of a queued message and its mapping to the flat meta table.
 * Keys follow the seed's `to_meta()` names so data stays recognisable to slimta users.
 */
import { ErrorCode, MailspoolError } from './errors.js';
import type { MessageMeta, MetaValue } from './types.js';

/** Who handed the message to us. All fields optional: a message made locally has no client. */
export interface ClientInfo {
  readonly protocol?: string;
  readonly ehlo?: string;
  readonly ip?: string;
  readonly security?: string;
  readonly receiver?: string;
  readonly authInfo?: string;
}

/** Where the message should go, when a route was chosen already. */
export interface Destination {
  readonly relayer?: string;
  readonly host?: string;
  readonly port?: number;
}

/** The envelope of a queued message. */
export interface Envelope {
  /** Reverse-path; `''` is the null reverse-path (bounces). */
  readonly sender: string;
  /** Forward-paths, at least one. */
  readonly recipients: readonly string[];
  readonly client?: ClientInfo;
  readonly destination?: Destination;
  /** When the message was received (epoch ms). */
  readonly timestamp: number;
  /** Delivery attempts made so far. */
  readonly attempts: number;
}

const CLIENT_KEYS = [
  ['protocol', 'protocol'],
  ['ehlo', 'ehlo'],
  ['ip', 'ip'],
  ['security', 'security'],
  ['receiver', 'receiver'],
  ['authInfo', 'auth_info'],
] as const;

/** Meta keys that {@link toMeta} writes; other keys in a meta table belong to other layers. */
export const ENVELOPE_META_KEYS: readonly string[] = [
  'sender',
  'recipients',
  'timestamp',
  'attempts',
  ...CLIENT_KEYS.map(([, key]) => key),
  'dest_relayer',
  'dest_host',
  'dest_port',
];

/** The flat meta table of an envelope (absent optional fields are left out). */
export function toMeta(envelope: Envelope): Record<string, MetaValue> {
  if (typeof envelope !== 'object' || envelope === null)
    throw new TypeError('toMeta needs an envelope');
  const { sender, recipients, timestamp, attempts } = envelope;
  if (typeof sender !== 'string') throw new TypeError('envelope.sender must be a string');
  if (
    !Array.isArray(recipients) ||
    recipients.length === 0 ||
    !recipients.every((r) => typeof r === 'string')
  ) {
    throw new TypeError('envelope.recipients must be a non-empty array of strings');
  }
  if (!Number.isFinite(timestamp))
    throw new TypeError('envelope.timestamp must be a finite number');
  if (!Number.isSafeInteger(attempts) || attempts < 0)
    throw new TypeError('envelope.attempts must be an integer >= 0');
  const meta: Record<string, MetaValue> = {
    sender,
    recipients: [...recipients],
    timestamp,
    attempts,
  };
  for (const [field, key] of CLIENT_KEYS) {
    const value = envelope.client?.[field];
    if (value !== undefined) meta[key] = String(value);
  }
  const destination = envelope.destination;
  if (destination?.relayer !== undefined) meta.dest_relayer = String(destination.relayer);
  if (destination?.host !== undefined) meta.dest_host = String(destination.host);
  if (destination?.port !== undefined) {
    if (!Number.isInteger(destination.port))
      throw new TypeError('envelope.destination.port must be an integer');
    meta.dest_port = destination.port;
  }
  return meta;
}

/**
 * The envelope stored in `meta`. Rejects with `CORRUPT` when the required keys are missing or of
 * the wrong type (stored data failed validation).
 */
export function fromMeta(meta: MessageMeta): Envelope {
  const sender = meta.sender;
  const recipients = meta.recipients;
  const timestamp = meta.timestamp;
  const attempts = meta.attempts;
  if (typeof sender !== 'string') throw corrupt('sender');
  if (!Array.isArray(recipients) || recipients.length === 0) throw corrupt('recipients');
  if (typeof timestamp !== 'number') throw corrupt('timestamp');
  if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 0)
    throw corrupt('attempts');

  const client: Record<string, string> = {};
  for (const [field, key] of CLIENT_KEYS) {
    const value = meta[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw corrupt(key);
    client[field] = value;
  }
  const destination: { relayer?: string; host?: string; port?: number } = {};
  if (meta.dest_relayer !== undefined) {
    if (typeof meta.dest_relayer !== 'string') throw corrupt('dest_relayer');
    destination.relayer = meta.dest_relayer;
  }
  if (meta.dest_host !== undefined) {
    if (typeof meta.dest_host !== 'string') throw corrupt('dest_host');
    destination.host = meta.dest_host;
  }
  if (meta.dest_port !== undefined) {
    if (typeof meta.dest_port !== 'number') throw corrupt('dest_port');
    destination.port = meta.dest_port;
  }
  const envelope: { -readonly [K in keyof Envelope]: Envelope[K] } = {
    sender,
    recipients: [...(recipients as readonly string[])],
    timestamp,
    attempts,
  };
  if (Object.keys(client).length > 0) envelope.client = client;
  if (Object.keys(destination).length > 0) envelope.destination = destination;
  return envelope;
}

function corrupt(key: string): MailspoolError {
  return new MailspoolError(
    ErrorCode.CORRUPT,
    `meta key ${JSON.stringify(key)} is missing or malformed for an envelope`,
  );
}
