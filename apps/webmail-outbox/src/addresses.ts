/**
 * Parsing what a user types into From / To / Cc / Bcc. Internal to this app (compose and MIME).
 *
 * Accepted: `alice@example.com`, `Alice <alice@example.com>`, `"Smith, Alice" <alice@example.com>`,
 * lists separated by commas or semicolons. The address itself must pass the relay's own rule,
 * the same code (`@mailspool/relay/address`: RFC 5321 mailboxes in plain ASCII), so a message the
 * page accepts is never refused by the relay as `INVALID_ADDRESS`.
 */
import { addressKey, isMailAddress } from '@mailspool/relay/address';

/** A parsed mailbox. */
export interface Mailbox {
  /** The display name, `''` when none. */
  readonly name: string;
  /** The bare address, `local@domain`. */
  readonly address: string;
}

/** Stable codes of {@link ComposeError}. */
export type ComposeErrorCode =
  | 'INVALID_ADDRESS'
  | 'NO_SENDER'
  | 'NO_RECIPIENTS'
  | 'TOO_MANY_RECIPIENTS'
  | 'SUBJECT_TOO_LONG'
  | 'TOO_LARGE';

/** A draft the page refuses to queue; `field` names the form field to point at. */
export class ComposeError extends Error {
  override readonly name = 'ComposeError';
  constructor(
    readonly code: ComposeErrorCode,
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/** True when `address` is a bare address the relay accepts as a recipient. */
export function isAddress(address: string): boolean {
  return isMailAddress(address, 'recipient');
}

/**
 * The envelope recipients of `mailboxes`: each address once, compared as the relay compares them
 * (ignoring ASCII case), the first spelling kept.
 */
export function uniqueRecipients(mailboxes: readonly Mailbox[]): string[] {
  const seen = new Map<string, string>();
  for (const { address } of mailboxes) {
    const key = addressKey(address);
    if (!seen.has(key)) seen.set(key, address);
  }
  return [...seen.values()];
}

/** Parses one mailbox; throws `ComposeError` `INVALID_ADDRESS` naming `field`. */
export function parseMailbox(text: string, field: string): Mailbox {
  const trimmed = text.trim();
  const angle = /^(.*?)\s*<([^<>]*)>$/su.exec(trimmed);
  let name = '';
  let address = trimmed;
  if (angle) {
    name = angle[1]!.trim();
    address = angle[2]!.trim();
    if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) {
      name = name.slice(1, -1).replace(/\\(.)/gu, '$1');
    }
  }
  if (!isAddress(address) || /[\r\n\0]/u.test(name)) {
    throw new ComposeError('INVALID_ADDRESS', `"${trimmed}" is not an email address`, field);
  }
  return { name, address };
}

/** Parses a comma/semicolon separated list (commas inside quotes are kept); `[]` for blank input. */
export function parseMailboxList(text: string, field: string): Mailbox[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (!quoted && (char === ',' || char === ';')) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts.filter((part) => part.trim() !== '').map((part) => parseMailbox(part, field));
}

/** `Name <address>` or the bare address, for display and for the meta's display lists. */
export function formatMailbox(mailbox: Mailbox): string {
  return mailbox.name === '' ? mailbox.address : `${mailbox.name} <${mailbox.address}>`;
}
