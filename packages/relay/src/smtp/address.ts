/**
 * Address checks done before any byte is sent. An address goes into `MAIL FROM:<...>` and
 * `RCPT TO:<...>` verbatim, so a CR or LF in it would let its author add SMTP commands
 * (SMTP injection), and a space or `>` would add parameters. The rule here is deliberately
 * narrower than RFC 5321's grammar: printable ASCII without space, `<` or `>`, one `@` with
 * something on both sides, at most 254 characters. Quoted local parts with spaces and
 * internationalised (SMTPUTF8) addresses are refused rather than risk a wrong encoding.
 */
import { RelayError, RelayErrorCode } from '../errors.js';

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
export const MAX_ADDRESS_LENGTH = 254;

/** Why `address` can't be sent, or `undefined` when it can. `''` is allowed only as a sender. */
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
  return undefined;
}

/** True when `address` may be sent as a `role`. */
export function isSmtpAddress(address: unknown, role: 'sender' | 'recipient'): boolean {
  return addressProblem(address, role) === undefined;
}

/** Throws a `RelayError` with code `INVALID_ADDRESS` unless `address` may be sent as a `role`. */
export function assertSmtpAddress(
  address: unknown,
  role: 'sender' | 'recipient',
): asserts address is string {
  const problem = addressProblem(address, role);
  if (problem !== undefined) {
    throw new RelayError(
      RelayErrorCode.INVALID_ADDRESS,
      `${role} address ${JSON.stringify(String(address)).slice(0, 300)} ${problem}`,
    );
  }
}
