/**
 * @mailspool/core: the storage-session contract, its errors, message-meta helpers and the
 * in-memory reference engine. What engine authors build on is `@mailspool/core/engine`.
 */
export { type Clock, ManualClock, systemClock } from './clock.js';
export type { ClientInfo, Destination, Envelope } from './envelope.js';
export { ENVELOPE_META_KEYS, fromMeta, toMeta } from './envelope.js';
export type { EncodedError, MailspoolErrorOptions } from './errors.js';
export {
  decodeError,
  ErrorCode,
  encodeError,
  isEncodedError,
  isMailspoolError,
  MailspoolError,
} from './errors.js';
export { assertMessageId, isMessageId, MAX_ID_LENGTH, newMessageId } from './ids.js';
export type { MemoryEngineOptions } from './memory-engine.js';
export { MemoryEngine, MemoryStore } from './memory-engine.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from './session.js';
export { sumStats } from './stats.js';
export type {
  AttemptOutcome,
  Capabilities,
  ChangeEvent,
  ChangeListener,
  ClaimDueOptions,
  ClaimedMessage,
  DeleteManyResult,
  EngineOptions,
  FenceOptions,
  Lease,
  MessageContents,
  MessageId,
  MessageInfo,
  MessageMeta,
  MessageState,
  MetaValue,
  Priority,
  QueueStats,
  StorageEngine,
  StorageSession,
  StoreMessageInput,
} from './types.js';
export { MAX_META_CHARS } from './validate.js';
