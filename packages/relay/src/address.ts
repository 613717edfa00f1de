/**
 * `@mailspool/relay/address`: the one rule for a mail address, shared by the webmail page, the
 * relay Worker's submission API and the SMTP client, so that what one side accepts the others
 * accept too. No runtime dependencies: it loads in any page, Worker or Node process.
 *
 * The rule is RFC 5321's mailbox (§4.1.2) in its plain-ASCII form, with the choices below:
 *
 * - local part: a dot-string (atoms of letters, digits and ``!#$%&'*+-/=?^_`{|}~`` joined by
 *   single dots), at most 64 characters. Quoted local parts (`"a b"@x`, `"a@b"@x`) are refused:
 *   rare in practice and refused by many servers.
 * - domain: host name labels (letters, digits, inner hyphens; 1-63 characters each) joined by
 *   dots, at least two labels, no trailing dot, at most 253 characters. Address literals
 *   (`user@[192.0.2.1]`) are refused.
 * - the whole address at most 254 characters (a path is at most 256 with its angle brackets).
 * - **ASCII only.** Internationalised addresses (SMTPUTF8, RFC 6531: `ü@example.com`) are refused
 *   rather than sent to a server that may not support them.
 * - the null sender `""` is an address only where a sender is meant.
 *
 * Two addresses are the same recipient when they are equal ignoring ASCII case ({@link addressKey}):
 * the local part is case-sensitive in principle, but no mail system in use treats `Bob@x` and
 * `bob@x` as two people, and sending twice to one person is the mistake to avoid.
 */

/** Longest address (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its brackets). */
export const MAX_ADDRESS_LENGTH = 254;
const MAX_LOCAL_LENGTH = 64;
const MAX_DOMAIN_LENGTH = 253;

const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Why `address` is not a mail address this relay sends to or from, or `undefined` when it is.
 * `''` (the null reverse-path) is allowed only for a `sender`.
 */
export function addressProblem(address: unknown, role: 'sender' | 'recipient'): string | undefined {
  if (typeof address !== 'string') return 'not a string';
  if (address === '') return role === 'sender' ? undefined : 'empty';
  if (address.length > MAX_ADDRESS_LENGTH) return `longer than ${MAX_ADDRESS_LENGTH} characters`;
  for (let i = 0; i < address.length; i++) {
    const code = address.charCodeAt(i);
    if (code === 0x0d || code === 0x0a) return 'contains CR or LF';
    if (code === 0) return 'contains NUL';
    if (code < 0x20 || code === 0x7f) return 'contains a control character';
    if (code === 0x20) return 'contains a space';
    if (code === 0x3c || code === 0x3e) return 'contains < or >';
    if (code > 0x7e) return 'contains a non-ASCII character';
  }
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return 'is not local@domain';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.startsWith('"')) return 'has a quoted local part (not supported)';
  if (local.length > MAX_LOCAL_LENGTH)
    return `has a local part over ${MAX_LOCAL_LENGTH} characters`;
  if (!local.split('.').every((atom) => ATOM.test(atom))) {
    return local.includes('@')
      ? 'contains more than one @'
      : "has a local part that is not dot-separated atoms (letters, digits, !#$%&'*+-/=?^_`{|}~)";
  }
  if (domain.startsWith('[')) return 'has an address literal as its domain (not supported)';
  if (domain.endsWith('.')) return 'has a domain ending in a dot';
  if (domain.length > MAX_DOMAIN_LENGTH) return `has a domain over ${MAX_DOMAIN_LENGTH} characters`;
  const labels = domain.split('.');
  if (labels.length < 2) return 'has a domain with a single label';
  if (!labels.every((label) => LABEL.test(label))) {
    return 'has a domain that is not a host name (letters, digits and inner hyphens per label)';
  }
  return undefined;
}

/** True when `address` is a mail address for `role` (see {@link addressProblem}). */
export function isMailAddress(address: unknown, role: 'sender' | 'recipient'): address is string {
  return addressProblem(address, role) === undefined;
}

/** The key two addresses share exactly when they are the same recipient: ASCII case folded. */
export function addressKey(address: string): string {
  return address.replace(/[A-Z]/g, (c) => c.toLowerCase());
}
