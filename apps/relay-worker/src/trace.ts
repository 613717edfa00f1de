/**
 * The `Received:` trace header (RFC 5321 §4.4) the relay adds to every message it delivers, so
 * that a recipient or a postmaster can tell which relay, which tenant and which submission a mail
 * came from. It is added on the way out, each attempt anew, and never stored: the queued bytes
 * stay exactly the ones submitted (and fingerprinted).
 *
 *     Received: from [203.0.113.7] (HTTPS submission)
 *             by relay.example.com (mailspool relay, tenant acme) with HTTPS id s1.Xy…;
 *             Tue, 01 Dec 2026 16:30:00 +0000
 *
 * `for <recipient>` is written only for a single recipient: the same bytes go to every recipient
 * of one transaction, and a list would show Bcc recipients to everyone.
 */
import type { Envelope, MessageId } from '@mailspool/core';
import {
  type DeliverOptions,
  type DeliveryResult,
  type OutgoingMessage,
  type Relayer,
  rfc5322Date,
} from '@mailspool/relay';

/** The client's address as an RFC 5321 address literal, or `undefined` when it is not an IP. */
function addressLiteral(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  if (/^(?:\d{1,3}\.){3}\d{1,3}$/.test(ip)) return `[${ip}]`;
  if (/^[0-9A-Fa-f:.]{2,45}$/.test(ip) && ip.includes(':')) return `[IPv6:${ip}]`;
  return undefined;
}

/** Keeps a name that goes into a header to the characters of a host name. */
function hostName(name: string): string {
  return /^[A-Za-z0-9.-]{1,253}$/.test(name) ? name : 'localhost';
}

/** The `Received:` header (CRLF-terminated, folded) for message `id` of `tenant`. */
export function receivedHeader(options: {
  readonly id: MessageId;
  readonly tenant: string;
  readonly hostname: string;
  readonly envelope: Envelope;
}): string {
  const { id, tenant, hostname, envelope } = options;
  const from = addressLiteral(envelope.client?.ip);
  const lines = [
    `Received: ${from ? `from ${from} (HTTPS submission)\r\n\t` : ''}by ${hostName(hostname)} (mailspool relay, tenant ${tenant.replace(/[^A-Za-z0-9_-]/g, '')}) with HTTPS id ${id.replace(/[^A-Za-z0-9._~-]/g, '')}`,
  ];
  if (envelope.recipients.length === 1) lines.push(`for <${envelope.recipients[0]}>`);
  return `${lines.join('\r\n\t')};\r\n\t${rfc5322Date(envelope.timestamp)}\r\n`;
}

/** `relayer`, with the `Received:` header put in front of every message it delivers. */
export function withTraceHeader(relayer: Relayer, tenant: string, hostname: string): Relayer {
  const encoder = new TextEncoder();
  return {
    deliver(message: OutgoingMessage, options: DeliverOptions): Promise<DeliveryResult> {
      const header = encoder.encode(
        receivedHeader({ id: message.id, tenant, hostname, envelope: message.envelope }),
      );
      const contents = new Uint8Array(header.byteLength + message.contents.byteLength);
      contents.set(header);
      contents.set(message.contents, header.byteLength);
      return relayer.deliver({ ...message, contents }, options);
    },
  };
}
