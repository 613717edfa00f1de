/**
 * Bounces: RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status)
 * sent from the null reverse-path to the original sender. Everything that comes from outside
 * (addresses, remote reply text, original headers) is kept from breaking the DSN's structure:
 * header and field values are reduced to printable ASCII, and original headers only appear
 * inside the text/rfc822-headers part.
 */
import { type Envelope, type MessageId, type MetaValue, toMeta } from '@mailspool/core';
import { formatDiagnostic, type RecipientOutcome } from './relayer.js';
import { hostAsMtaName } from './smtp/remote-mta.js';
import { RelayMetaKey } from './state.js';

const BOUNCE_KEY = RelayMetaKey.BOUNCE;
const BOUNCE_OF_KEY = RelayMetaKey.BOUNCE_OF;

/** What a DSN is built from. */
export interface BounceInput {
  /** The queue id of the message that failed. */
  readonly id: MessageId;
  /** Its envelope (the DSN goes to `envelope.sender`). */
  readonly envelope: Envelope;
  /** Its contents: the header section is returned in the DSN. */
  readonly contents: Uint8Array;
  /** The recipients that failed, each with its diagnostic. At least one. */
  readonly failed: readonly RecipientOutcome[];
  /** The name of this MTA (`Reporting-MTA`, the `MAILER-DAEMON@` domain). */
  readonly reportingMta: string;
  /** The time of the report (epoch ms). */
  readonly now: number;
  /** A unique token for the MIME boundary and Message-ID; default `crypto.randomUUID()`. */
  readonly unique?: string;
}

/** A DSN ready for `storeMessage`: its envelope as meta, and its bytes. */
export interface Bounce {
  readonly meta: Record<string, MetaValue>;
  readonly contents: Uint8Array;
}

const encoder = new TextEncoder();
const CRLF = '\r\n';

/**
 * Reduces a value to printable ASCII on one line (control and non-ASCII characters become
 * `\x{HH}`, RFC 6533's notation), so that nothing from outside can add a header or a field.
 */
export function printable(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    out += code >= 0x20 && code < 0x7f ? ch : `\\x{${code.toString(16).toUpperCase()}}`;
  }
  return out;
}

/** An RFC 5322 date (`Tue, 14 Nov 2023 22:13:20 +0000`). */
export function rfc5322Date(time: number): string {
  return new Date(time).toUTCString().replace(/GMT$/, '+0000');
}

/** The header section of a message (up to, not including, the first empty line), with CRLF line ends. */
export function headerSection(contents: Uint8Array): Uint8Array {
  let end = contents.length;
  for (let i = 0; i < contents.length; i++) {
    if (contents[i] !== 0x0a) continue;
    // An empty line: LF LF or LF CR LF.
    if (contents[i + 1] === 0x0a || (contents[i + 1] === 0x0d && contents[i + 2] === 0x0a)) {
      end = i + 1;
      break;
    }
  }
  if (contents[0] === 0x0a || (contents[0] === 0x0d && contents[1] === 0x0a)) end = 0;
  return toCrlf(contents.subarray(0, end));
}

function toCrlf(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0d) {
      out.push(0x0d, 0x0a);
      if (bytes[i + 1] === 0x0a) i++;
    } else if (b === 0x0a) {
      out.push(0x0d, 0x0a);
    } else {
      out.push(b);
    }
  }
  if (out.length > 0 && out[out.length - 1] !== 0x0a) out.push(0x0d, 0x0a);
  return Uint8Array.from(out);
}

function originalMessageId(headers: Uint8Array): string | undefined {
  // Byte-to-char decoding by hand: not every runtime's TextDecoder knows latin1.
  let text = '';
  for (let i = 0; i < headers.length; i += 8192) {
    text += String.fromCharCode(...headers.subarray(i, i + 8192));
  }
  const match = /^message-id:[ \t]*(<[\x21-\x7e]{1,900}>)/im.exec(text);
  return match?.[1];
}

function addressField(address: string): string {
  const clean = printable(address);
  // RFC 6533: a utf-8 address type when the address had to be escaped.
  return clean === address ? `rfc822; ${address}` : `utf-8; ${clean}`;
}

function diagnosticCode(outcome: RecipientOutcome): string {
  const { diagnostic } = outcome;
  return diagnostic.code === undefined
    ? `X-Mailspool; ${printable(diagnostic.text)}`
    : `smtp; ${printable(formatDiagnostic(diagnostic))}`;
}

/**
 * Builds the DSN for the failed recipients of a message. Its envelope: sender `''` (the null
 * reverse-path, so it is never bounced itself), the original sender as the only recipient.
 * Throws `TypeError` when `failed` is empty or the original sender is `''` (a bounce is never
 * bounced: the relay loop drops those instead).
 */
export function buildBounce(input: BounceInput): Bounce {
  if (input.failed.length === 0)
    throw new TypeError('a bounce needs at least one failed recipient');
  return buildReport(input, input.failed, { action: 'failed' });
}

/** What a delay warning is built from. */
export interface DelayNoticeInput extends Omit<BounceInput, 'failed'> {
  /** The recipients still being retried, each with its latest (temporary) diagnostic. At least one. */
  readonly delayed: readonly RecipientOutcome[];
  /** Until when the relay keeps retrying (`Will-Retry-Until`), when the retry policy knows. */
  readonly willRetryUntil?: number;
}

/**
 * Builds the delay warning for a message that is still being retried: an RFC 3464 DSN with
 * `Action: delayed` for each recipient still pending (its `Status` the latest 4.x.x), the same
 * envelope as a bounce (from `''` to the original sender), and a text that says nothing needs to
 * be done yet. Throws `TypeError` when `delayed` is empty or the original sender is `''`.
 */
export function buildDelayNotice(input: DelayNoticeInput): Bounce {
  if (input.delayed.length === 0)
    throw new TypeError('a delay warning needs at least one delayed recipient');
  return buildReport(input, input.delayed, {
    action: 'delayed',
    ...(input.willRetryUntil !== undefined ? { willRetryUntil: input.willRetryUntil } : {}),
  });
}

/** The wording of the two kinds of DSN. */
const TEXTS = {
  failed: {
    subject: 'Undelivered Mail Returned to Sender',
    body: [
      "I'm sorry to have to inform you that your message could not",
      'be delivered to one or more recipients. The details are below.',
    ],
    headers: 'Undelivered Message Headers',
  },
  delayed: {
    subject: 'Delayed Mail (still being retried)',
    body: [
      'This is a warning only: your message has not been delivered yet',
      'to the recipients below. Delivery is being retried; you will be',
      'told again only if it fails for good. You do not need to resend it.',
    ],
    headers: 'Delayed Message Headers',
  },
} as const;

/**
 * A DSN reporting `outcomes` of message `input.id` with `Action: failed` (a bounce) or
 * `Action: delayed` (a warning), to the original sender from the null reverse-path.
 */
function buildReport(
  input: Omit<BounceInput, 'failed'>,
  outcomes: readonly RecipientOutcome[],
  kind: { readonly action: 'failed' | 'delayed'; readonly willRetryUntil?: number },
): Bounce {
  const { id, envelope, contents, now } = input;
  if (envelope.sender === '') throw new TypeError('a message from <> is never bounced');
  const text = TEXTS[kind.action];
  const mta = printable(input.reportingMta);
  const unique = printable(input.unique ?? crypto.randomUUID());
  const boundary = `=_mailspool_dsn_${unique}`;
  const headers = headerSection(contents);
  const inReplyTo = originalMessageId(headers);
  const date = rfc5322Date(now);

  const top = [
    `From: Mail Delivery System <MAILER-DAEMON@${mta}>`,
    `To: <${printable(envelope.sender)}>`,
    `Subject: ${text.subject}`,
    `Date: ${date}`,
    `Message-ID: <${unique}@${mta}>`,
    ...(inReplyTo ? [`In-Reply-To: ${inReplyTo}`, `References: ${inReplyTo}`] : []),
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
  ];

  const human = [
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Description: Notification',
    '',
    `This is the mail system at host ${mta}.`,
    '',
    ...text.body,
    '',
    ...outcomes.map(
      (o) => `<${printable(o.recipient)}>: ${printable(formatDiagnostic(o.diagnostic))}`,
    ),
    '',
  ];

  const status = [
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    `Reporting-MTA: dns; ${mta}`,
    `X-Mailspool-Queue-ID: ${printable(id)}`,
    `Arrival-Date: ${rfc5322Date(envelope.timestamp)}`,
    '',
  ];
  for (const outcome of outcomes) {
    status.push(
      `Final-Recipient: ${addressField(outcome.recipient)}`,
      `Action: ${kind.action}`,
      `Status: ${printable(outcome.diagnostic.status)}`,
      // The field holds a name: a relayer that reports a bare IP address gets an address literal.
      ...(outcome.diagnostic.remoteMta
        ? [`Remote-MTA: dns; ${printable(hostAsMtaName(outcome.diagnostic.remoteMta))}`]
        : []),
      `Diagnostic-Code: ${diagnosticCode(outcome)}`,
      `Last-Attempt-Date: ${date}`,
      ...(kind.willRetryUntil !== undefined
        ? [`Will-Retry-Until: ${rfc5322Date(kind.willRetryUntil)}`]
        : []),
      '',
    );
  }

  const eightBit = headers.some((b) => b >= 0x80);
  const headersPart = [
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    ...(eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
    `Content-Description: ${text.headers}`,
    '',
    '',
  ];

  const head = encoder.encode([...top, ...human, ...status, ...headersPart].join(CRLF));
  const tail = encoder.encode(`${CRLF}--${boundary}--${CRLF}`);
  const bytes = new Uint8Array(head.length + headers.length + tail.length);
  bytes.set(head, 0);
  bytes.set(headers, head.length);
  bytes.set(tail, head.length + headers.length);

  return { meta: bounceMeta(envelope, id, now), contents: bytes };
}

/**
 * The meta of the DSN for message `id`: from `''` to the original sender, received `now`, with
 * `bounce: true` and `bounce_of: id`. Throws `TypeError` when the original sender is `''`.
 */
export function bounceMeta(
  envelope: Envelope,
  id: MessageId,
  now: number,
): Record<string, MetaValue> {
  if (envelope.sender === '') throw new TypeError('a message from <> is never bounced');
  return {
    ...toMeta({ sender: '', recipients: [envelope.sender], timestamp: now, attempts: 0 }),
    [BOUNCE_KEY]: true,
    [BOUNCE_OF_KEY]: id,
  };
}
