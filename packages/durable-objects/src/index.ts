/**
 * @mailspool/durable-objects: a mailspool queue spread over SQLite-backed Durable Objects
 * (`QueueShard`), and the engine any Worker uses to reach it (`DurableObjectEngine`).
 */
export type {
  DurableObjectEngineOptions,
  DurableObjectStorageSession,
  ShardNamespace,
} from './engine.js';
export {
  DEFAULT_IDEMPOTENCY_RETENTION_MS,
  DEFAULT_RPC_PIECE_BYTES,
  DurableObjectEngine,
  ShardLocalEngine,
} from './engine.js';
export type { DueEvent, DueHookService } from './queue-shard.js';
export { DUE_EVENT_IDS, DUE_HOOK_BINDING, MAX_ALARM_DELAY_MS, QueueShard } from './queue-shard.js';
export { MAX_SHARDS, shardName, shardOf } from './routing.js';
export { CHUNK_BYTES } from './schema.js';
export type { MessageChange, OutboxEntry, StoredOnce, StoredRecord } from './shard-store.js';
