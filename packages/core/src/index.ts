/**
 * @mailspool/core: the storage-session contract, its errors, the state rules engines share,
 * message-meta helpers and the in-memory reference engine.
 */
export { ChangeHub } from './change-hub.js';
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
export type { MessageRecord } from './record.js';
export {
  assertCurrent,
  assertFound,
  claimedRecord,
  compareDue,
  dueAt,
  isActive,
  isComplete,
  isCurrent,
  isDeferred,
  isDue,
  isWaiting,
  lockRecord,
  notFound,
  renewRecord,
  storedRecord,
  unlockRecord,
  writableRecord,
} from './record.js';
export type {
  AttemptChange,
  IdPlacement,
  ListKind,
  PreparedMessage,
  SessionConfig,
} from './session.js';
export { BaseSession, DEFAULT_MAX_MESSAGE_BYTES } from './session.js';
export { sumStats } from './stats.js';
export type {
  AttemptOutcome,
  Capabilities,
  ChangeEvent,
  ChangeListener,
  ClaimDueOptions,
  DeleteManyResult,
  EngineOptions,
  FenceOptions,
  Lease,
  MessageContents,
  MessageId,
  MessageMeta,
  MetaValue,
  QueueStats,
  StorageEngine,
  StorageSession,
  StoreMessageInput,
} from './types.js';
export { assertMetaSize, cloneMeta, MAX_META_CHARS } from './validate.js';
