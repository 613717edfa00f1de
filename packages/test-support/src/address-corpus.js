// The address corpus: every case both the relay (submission API and SMTP client) and the
// webmail page are tested against, so that the page never queues what the relay refuses.
// `valid` is for a recipient; `sender` overrides it for a sender where the two differ.

/** @type {import('./address-corpus.d.ts').AddressCase[]} */
export const addressCorpus = [
  // accepted
  { address: 'alice@example.com', valid: true },
  { address: 'first.last@example.co.uk', valid: true },
  { address: "o'hara+tag@sub.example.org", valid: true },
  { address: '!#$%&*+-/=?^_`{|}~@example.com', valid: true },
  { address: 'x@a-b.example', valid: true },
  { address: 'UPPER@EXAMPLE.COM', valid: true },
  { address: `${'l'.repeat(64)}@example.com`, valid: true },
  {
    address: `a@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.${'g'.repeat(57)}`,
    valid: true,
  },
  // the null sender: a sender only
  { address: '', valid: false, sender: true },
  // refused, from the field
  { address: 'ü@example.com', valid: false, why: 'non-ASCII (no SMTPUTF8)' },
  { address: 'user@exämple.com', valid: false, why: 'non-ASCII domain' },
  { address: 'a@b@example.org', valid: false, why: 'two @' },
  { address: '"a@b"@example.org', valid: false, why: 'quoted local part' },
  { address: '"a b"@example.org', valid: false, why: 'quoted local part with a space' },
  { address: 'user@example.org.', valid: false, why: 'trailing dot' },
  {
    address: `${'l'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.example`,
    valid: false,
    why: 'over 254 characters',
  },
  { address: `${'l'.repeat(65)}@example.com`, valid: false, why: 'local part over 64' },
  { address: `a@${'d'.repeat(64)}.com`, valid: false, why: 'label over 63' },
  { address: 'plain', valid: false, why: 'no @' },
  { address: '@example.com', valid: false, why: 'no local part' },
  { address: 'user@', valid: false, why: 'no domain' },
  { address: 'user@localhost', valid: false, why: 'single-label domain' },
  { address: 'user@[192.0.2.1]', valid: false, why: 'address literal' },
  { address: '.user@example.com', valid: false, why: 'leading dot' },
  { address: 'user.@example.com', valid: false, why: 'dot before @' },
  { address: 'us..er@example.com', valid: false, why: 'two dots' },
  { address: 'user@-example.com', valid: false, why: 'label starts with a hyphen' },
  { address: 'user@example-.com', valid: false, why: 'label ends with a hyphen' },
  { address: 'user@exa_mple.com', valid: false, why: 'underscore in a host name' },
  { address: 'us er@example.com', valid: false, why: 'space' },
  {
    address: 'user@example.com\r\nRCPT TO:<x@evil.example>',
    valid: false,
    why: 'CR LF (SMTP injection)',
  },
  { address: 'user\u0000@example.com', valid: false, why: 'NUL' },
  { address: 'user\t@example.com', valid: false, why: 'tab' },
  { address: '<user@example.com>', valid: false, why: 'angle brackets' },
  { address: 'user@example.com> SIZE=1', valid: false, why: 'SMTP parameter injection' },
  { address: 'a,b@example.com', valid: false, why: 'comma' },
];

/**
 * Pairs that name the same recipient (they must be treated as one on every side) and pairs that
 * don't.
 */
export const sameRecipient = [
  ['Bob@Example.org', 'bob@example.org', true],
  ['ALICE@EXAMPLE.COM', 'alice@example.com', true],
  ['bob@example.org', 'bob2@example.org', false],
];
