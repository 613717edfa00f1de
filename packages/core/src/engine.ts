/**
 * @mailspool/core/engine: the engine author's API. An engine extends `BaseSession` and implements
 * its `_` primitives against its store, applying the record rules below inside its own
 * transactions; core validates every argument, reads the clock and announces changes. See
 * docs/engine-authors.md. Applications use `@mailspool/core` and never need this entry.
 */
export { ChangeHub } from './change-hub.js';
export { type ResolvedEngineOptions, resolveEngineOptions } from './options.js';
export type { MessageRecord } from './record.js';
export {
  applyAttempt,
  assertCurrent,
  assertFound,
  claimableAt,
  claimedRecord,
  compareDue,
  DEFAULT_PRIORITY_RANK,
  describeRecord,
  dueAt,
  isActive,
  isComplete,
  isCurrent,
  isDeferred,
  isDue,
  isWaiting,
  lockRecord,
  notFound,
  PRIORITY_RANK,
  partitionByLease,
  priorityOf,
  renewRecord,
  stateOf,
  storedRecord,
  unlockRecord,
  withContents,
  withMeta,
  withMetaKey,
  withRetry,
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
export { assertMetaSize, cloneMeta } from './validate.js';
