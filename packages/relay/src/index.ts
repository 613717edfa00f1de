/**
 * @mailspool/relay: the MTA queue policy over any mailspool engine (retries with backoff,
 * per-recipient state, RFC 3464 bounces, fenced writes, lease renewal) and an SMTP relayer.
 * The Workers socket adapter is in `@mailspool/relay/cloudflare`.
 */
export type { Bounce, BounceInput, DelayNoticeInput } from './bounce.js';
export {
  bounceMeta,
  buildBounce,
  buildDelayNotice,
  headerSection,
  printable,
  rfc5322Date,
} from './bounce.js';
export { isRelayError, RelayError, RelayErrorCode } from './errors.js';
export type { KeepLeaseOptions, LeaseKeeper } from './lease-keeper.js';
export { keepLease } from './lease-keeper.js';
export type {
  DelayWarningOptions,
  MessageReport,
  RelayEvent,
  RelayOptions,
  RelayRunReport,
} from './relay-queue.js';
export { DEFAULT_LEASE_TTL_MS, RelayQueue, runRelayOnce } from './relay-queue.js';
export type {
  DeliverOptions,
  DeliveryResult,
  Diagnostic,
  OutgoingMessage,
  RecipientOutcome,
  RecipientStatus,
  Relayer,
} from './relayer.js';
export { formatDiagnostic, outcomeForAll } from './relayer.js';
export type {
  ExponentialBackoffOptions,
  RetryDecision,
  RetryInput,
  RetryPolicy,
} from './retry-policy.js';
export { ExponentialBackoff, POSTFIX_DEFAULTS } from './retry-policy.js';
export {
  addressProblem,
  assertSmtpAddress,
  isSmtpAddress,
  MAX_ADDRESS_LENGTH,
} from './smtp/address.js';
export type { SmtpTranscriptLine } from './smtp/connection.js';
export { encodeData, hasEightBit } from './smtp/data.js';
export type { FailoverEvent, FailoverRelayerOptions } from './smtp/failover.js';
export { FailoverRelayer } from './smtp/failover.js';
export type {
  SmtpAttempt,
  SmtpAuth,
  SmtpLogEntry,
  SmtpRelayerOptions,
  SmtpTimeouts,
} from './smtp/relayer.js';
export { DEFAULT_SMTP_TIMEOUTS, SmtpRelayer } from './smtp/relayer.js';
export type { ReplyLine, SmtpReply } from './smtp/reply.js';
export { parseReplyLine } from './smtp/reply.js';
export type {
  SmtpConnect,
  SmtpConnectOptions,
  SmtpSocket,
  SmtpSocketAddress,
} from './smtp/socket.js';
export type { RelayState } from './state.js';
export { pendingRecipients, RelayMetaKey, readRelayState } from './state.js';
export type { Timers } from './timers.js';
export { ManualTimers, settle, systemTimers } from './timers.js';
