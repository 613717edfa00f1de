/**
 * @mailspool/indexeddb: the IndexedDB engine for offline webmail outboxes, shared by every tab,
 * worker and service worker of an origin.
 */
export { channelName } from './changes.js';
export { DEFAULT_BLOCKED_TIMEOUT_MS } from './database.js';
export type { IndexedDbEngineOptions } from './engine.js';
export { IndexedDbEngine } from './engine.js';
export { DB_VERSION } from './schema.js';
export type { StorageEstimate } from './storage.js';
export { requestPersistentStorage, storageEstimate } from './storage.js';
