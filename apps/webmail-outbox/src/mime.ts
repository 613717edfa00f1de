/**
 * Builds the RFC 5322 message of a draft with mail-mime-builder (see README.md, "MIME library",
 * for why that library). The library assembles headers and the multipart tree; this module feeds
 * it data that is already transfer-encoded, because the library inserts body data verbatim:
 *
 * - the text body is UTF-8, CRLF line ends, base64 in 76-column lines (RFC 2045 §6.8), so any
 *   text survives any relay (no 8BITMIME or line-length assumptions);
 * - attachments are base64 in 76-column lines, with names RFC 2047-encoded when not plain ASCII;
 * - the Subject is folded into RFC 2047 encoded-words of at most 75 characters (RFC 2047 §2);
 * - Bcc goes to the envelope only, never into the headers (RFC 5322 §3.6.3 leaves it to the
 *   client; a relay would otherwise show Bcc recipients to everyone);
 * - Date and Message-ID come from the injected time and `crypto.randomUUID()`, not Math.random.
 */
import { createMimeMessage, type HeaderField } from 'mail-mime-builder';
import {
  ComposeError,
  formatMailbox,
  type Mailbox,
  parseMailbox,
  parseMailboxList,
  uniqueRecipients,
} from './addresses.js';
import { base64Lines, bytesToBase64 } from './base64.js';

/** An attachment as picked in the compose form. */
export interface DraftAttachment {
  readonly filename: string;
  /** A MIME type; anything malformed is sent as `application/octet-stream`. */
  readonly contentType: string;
  readonly data: Uint8Array;
}

/** The compose form's fields, as typed. Address fields are comma-separated lists. */
export interface Draft {
  readonly from: string;
  readonly to: string;
  readonly cc?: string;
  readonly bcc?: string;
  readonly subject: string;
  readonly text: string;
  readonly attachments?: readonly DraftAttachment[];
}

/** The built message and its envelope. */
export interface BuiltMessage {
  /** The RFC 5322 message, CRLF line ends, 7-bit clean. */
  readonly raw: Uint8Array;
  /** The envelope sender (the From address). */
  readonly sender: string;
  /** The envelope recipients: To, Cc and Bcc addresses, each once ignoring case, in that order. */
  readonly recipients: string[];
  readonly from: Mailbox;
  readonly to: Mailbox[];
  readonly cc: Mailbox[];
  readonly bcc: Mailbox[];
  /** The Message-ID header, angle brackets included. */
  readonly messageId: string;
}

/** Options of {@link buildMessage}. */
export interface BuildOptions {
  /** The Date header (epoch ms). */
  readonly date: number;
  /** Largest message in bytes; the relay takes about 10 MiB of mail (docs/relay-api.md). */
  readonly maxBytes?: number;
  /** Most envelope recipients; the relay's default MAX_RECIPIENTS is 100. */
  readonly maxRecipients?: number;
}

/** The relay's 14 MiB body limit holds about 10 MiB of mail once base64-encoded in JSON. */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_RECIPIENTS = 100;
const MAX_SUBJECT_CHARS = 1000;
const encoder = new TextEncoder();

/**
 * Builds the message of `draft`. Throws `ComposeError` with code `NO_SENDER`, `INVALID_ADDRESS`,
 * `NO_RECIPIENTS`, `TOO_MANY_RECIPIENTS`, `SUBJECT_TOO_LONG` or `TOO_LARGE` (and the form field
 * at fault); never returns a message the relay would refuse for its addresses or size.
 */
export function buildMessage(draft: Draft, options: BuildOptions): BuiltMessage {
  if (draft.from.trim() === '') throw new ComposeError('NO_SENDER', 'From is required', 'from');
  const from = parseMailbox(draft.from, 'from');
  const to = parseMailboxList(draft.to, 'to');
  const cc = parseMailboxList(draft.cc ?? '', 'cc');
  const bcc = parseMailboxList(draft.bcc ?? '', 'bcc');
  const recipients = uniqueRecipients([...to, ...cc, ...bcc]);
  if (recipients.length === 0) {
    throw new ComposeError('NO_RECIPIENTS', 'Add at least one recipient', 'to');
  }
  const maxRecipients = options.maxRecipients ?? DEFAULT_MAX_RECIPIENTS;
  if (recipients.length > maxRecipients) {
    throw new ComposeError(
      'TOO_MANY_RECIPIENTS',
      `At most ${maxRecipients} recipients, got ${recipients.length}`,
      'to',
    );
  }
  if (draft.subject.length > MAX_SUBJECT_CHARS) {
    throw new ComposeError(
      'SUBJECT_TOO_LONG',
      `The subject is over ${MAX_SUBJECT_CHARS} characters`,
      'subject',
    );
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // Base64 grows data by 4/3 plus line breaks: refuse early, before encoding megabytes.
  const attachments = draft.attachments ?? [];
  const payload = attachments.reduce((sum, a) => sum + a.data.byteLength, draft.text.length);
  if (payload * 1.37 > maxBytes) throw tooLarge(maxBytes);

  const domain = from.address.slice(from.address.lastIndexOf('@') + 1);
  const messageId = `<${crypto.randomUUID()}@${domain}>`;
  const message = createMimeMessage();
  message.setSender(mailboxInput(from));
  if (to.length > 0) message.setTo(to.map(mailboxInput));
  if (cc.length > 0) message.setCc(cc.map(mailboxInput));
  message.setSubject(draft.subject);
  foldSubject(message.headers.fields);
  message.setHeader('Date', rfc5322Date(options.date));
  message.setHeader('Message-ID', messageId);
  message.addMessage({
    contentType: 'text/plain',
    encoding: 'base64',
    charset: 'UTF-8',
    data: base64Lines(encoder.encode(draft.text.replace(/\r?\n/gu, '\r\n'))),
  });
  for (const attachment of attachments) {
    message.addAttachment({
      filename: filenameParam(attachment.filename),
      contentType: safeContentType(attachment.contentType),
      encoding: 'base64',
      data: base64Lines(attachment.data),
    });
  }
  const raw = encoder.encode(`${message.asRaw()}\r\n`);
  if (raw.byteLength > maxBytes) throw tooLarge(maxBytes);
  return { raw, sender: from.address, recipients, from, to, cc, bcc, messageId };
}

function tooLarge(maxBytes: number): ComposeError {
  const mib = (maxBytes / 1024 / 1024).toFixed(0);
  return new ComposeError('TOO_LARGE', `The message is over the relay's ${mib} MiB`, 'attachments');
}

function mailboxInput(mailbox: Mailbox): { addr: string; name?: string } {
  return mailbox.name === ''
    ? { addr: mailbox.address }
    : { addr: mailbox.address, name: mailbox.name };
}

/** Display strings of mailboxes, for the meta's `to`/`cc`/`bcc` keys. */
export function displayList(mailboxes: readonly Mailbox[]): string[] {
  return mailboxes.map(formatMailbox);
}

/** `Thu, 30 Nov 2023 10:00:00 +0000`: RFC 5322 §3.3 in UTC. */
export function rfc5322Date(epochMs: number): string {
  return new Date(epochMs).toUTCString().replace(/GMT$/u, '+0000');
}

/**
 * RFC 2047 encoded-words of at most 75 characters, one per folded line. Each word holds whole
 * code points (45 UTF-8 bytes → 60 base64 characters + 12 of framing), so no character is split.
 */
export function encodeWords(text: string): string {
  const words: number[][] = [];
  const chunk: number[] = [];
  for (const char of text) {
    const bytes = encoder.encode(char);
    if (chunk.length + bytes.length > 45) {
      words.push(chunk.splice(0));
    }
    chunk.push(...bytes);
  }
  if (chunk.length > 0) words.push(chunk);
  return words.map((bytes) => `=?UTF-8?B?${bytesToBase64(Uint8Array.from(bytes))}?=`).join('\r\n ');
}

const PLAIN_HEADER_TEXT = /^[\x20-\x7e]*$/u;

/**
 * Replaces the library's Subject dump (one unbounded encoded-word) with RFC 2047-conformant
 * folding; short ASCII subjects stay readable. `fields` is the library's public header table.
 */
function foldSubject(fields: HeaderField[]): void {
  const subject = fields.find((field) => field.name === 'Subject');
  if (!subject) throw new Error('mail-mime-builder has no Subject field');
  subject.dump = (value) => {
    const text = typeof value === 'string' ? value : '';
    const plain = PLAIN_HEADER_TEXT.test(text) && text.length <= 66 && !text.includes('=?');
    return plain ? text : encodeWords(text);
  };
}

/** A file name safe inside `name="…"`: no quotes, backslashes or controls; RFC 2047 when not ASCII. */
export function filenameParam(filename: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it strips.
  const cleaned = [...filename.replace(/["\\\u0000-\u001f\u007f]/gu, '_')].slice(0, 120).join('');
  const name = cleaned === '' ? 'attachment' : cleaned;
  if (PLAIN_HEADER_TEXT.test(name)) return name;
  return `=?UTF-8?B?${bytesToBase64(encoder.encode(name))}?=`;
}

function safeContentType(type: string): string {
  return /^[a-z0-9][\w.+-]*\/[\w.+-]+$/iu.test(type)
    ? type.toLowerCase()
    : 'application/octet-stream';
}
