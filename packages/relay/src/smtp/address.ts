/**
 * Address checks done before any byte is sent. An address goes into `MAIL FROM:<...>` and
 * `RCPT TO:<...>` verbatim, so a CR or LF in it would let its author add SMTP commands
 * (SMTP injection), and a space or `>` would add parameters. The rule is the shared one of
 * `@mailspool/relay/address` (../address.ts), which the submission API and the webmail page use
 * too, so an address accepted at submission is never refused here.
 */
import { addressProblem } from '../address.js';
import { RelayError, RelayErrorCode } from '../errors.js';

export {
  addressProblem,
  /** True when `address` may be sent as a `role` (the shared rule's `isMailAddress`). */
  isMailAddress as isSmtpAddress,
  MAX_ADDRESS_LENGTH,
} from '../address.js';

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
