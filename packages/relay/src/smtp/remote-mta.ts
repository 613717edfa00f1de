/**
 * The name a DSN gives the server that answered (RFC 3464 §2.3.5 `Remote-MTA: dns; <name>`): a
 * domain name, which the server states itself as the first word of its greeting and of its EHLO
 * reply (RFC 5321 §4.2 and §4.1.1.1). When it gives none, the configured host stands in, with an
 * IP address written as an RFC 5321 §4.1.3 address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`),
 * since a bare address is not a name.
 */

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** At least two labels, the last one starting with a letter: `127.0.0.1` is not a domain name. */
const FULLY_QUALIFIED = new RegExp(`^(?:${LABEL}\\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`);
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
/** Hex digits, colons and dots with at least two colons (`::1`, `2001:db8::25`, `::ffff:192.0.2.1`). */
const IPV6 = /^(?=(?:[^:]*:){2})[0-9A-Fa-f:.]{2,45}$/;

/**
 * The fully qualified domain name at the start of a greeting or EHLO reply line (the text after
 * the code), or `undefined` when the first word is not one (an address literal, `ESMTP`...).
 */
export function serverName(replyText: string): string | undefined {
  const first = replyText.trim().split(/\s+/, 1)[0] ?? '';
  return first.length <= 253 && FULLY_QUALIFIED.test(first) ? first : undefined;
}

/** A host as an MTA name: a host name (or an address literal) as it is, an IP address as a literal. */
export function hostAsMtaName(host: string): string {
  if (IPV4.test(host)) return `[${host}]`;
  if (IPV6.test(host)) return `[IPv6:${host}]`;
  return host;
}
