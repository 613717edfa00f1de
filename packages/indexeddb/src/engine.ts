/**
 * `IndexedDbEngine`: the mailspool engine for browsers (windows, workers, service workers).
 * One database per outbox; every tab and worker of the origin that opens the same name shares it.
 */
import {
  type Capabilities,
  type ChangeListener,
  type Clock,
  DEFAULT_MAX_MESSAGE_BYTES,
  type EngineOptions,
  type StorageEngine,
  type StorageSession,
} from '@mailspool/core';
import { ChangeBridge } from './changes.js';
import { Database, DEFAULT_BLOCKED_TIMEOUT_MS } from './database.js';
import { IndexedDbSession } from './session.js';

/** Options of {@link IndexedDbEngine}. */
export interface IndexedDbEngineOptions extends EngineOptions {
  /** The database name; one outbox per name. Default `'mailspool'`. */
  readonly name?: string;
  /**
   * The IndexedDB factory. Default `globalThis.indexedDB`. Its objects must be instances of the
   * global IDB classes (idb's requirement): in Node, load `fake-indexeddb/auto` and pass
   * `new IDBFactory()` per isolated database if you like.
   */
  readonly indexedDB?: IDBFactory;
  /**
   * How long an open may stay `blocked` by another connection on an older version (a tab running
   * older code that does not close on `versionchange`) before it rejects `UNAVAILABLE`.
   * Default 5000 ms.
   */
  readonly blockedTimeoutMs?: number;
  /**
   * Durability of readwrite transactions. Default `'strict'`: a message is on disk when
   * `storeMessage` resolves, even if the operating system crashes right after. `'relaxed'`
   * commits about twice as fast in Chromium and may lose the last writes on power loss.
   */
  readonly durability?: IDBTransactionDurability;
  /**
   * For fault-injection tests (the conformance suite's atomicity cases): called before every
   * write request; when it throws, that write fails and its transaction rolls back, as a failing
   * disk would make it. Leave it unset in applications.
   */
  readonly beforeWrite?: () => void;
}

/**
 * The IndexedDB engine. Persistent, shared by every tab and worker of the origin, with change
 * events delivered across them through a BroadcastChannel named after the database.
 */
export class IndexedDbEngine implements StorageEngine {
  readonly supports: Capabilities;
  /** The database name. */
  readonly name: string;
  readonly #db: Database;
  readonly #changes: ChangeBridge;
  readonly #clock: Clock | undefined;

  /** Throws a `TypeError` for a bad option; opens nothing until the first `connect()`. */
  constructor(options: IndexedDbEngineOptions = {}) {
    const name = options.name ?? 'mailspool';
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError('name must be a non-empty string');
    }
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 0) {
      throw new TypeError('maxMessageBytes must be a non-negative integer');
    }
    const blockedTimeoutMs = options.blockedTimeoutMs ?? DEFAULT_BLOCKED_TIMEOUT_MS;
    if (!Number.isFinite(blockedTimeoutMs) || blockedTimeoutMs < 0) {
      throw new TypeError('blockedTimeoutMs must be a finite number >= 0');
    }
    const durability = options.durability ?? 'strict';
    if (!['strict', 'relaxed', 'default'].includes(durability)) {
      throw new TypeError("durability must be 'strict', 'relaxed' or 'default'");
    }
    this.name = name;
    this.#clock = options.clock;
    this.#db = new Database({
      name,
      factory: options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB,
      blockedTimeoutMs,
      durability,
      beforeWrite: options.beforeWrite,
    });
    this.#changes = new ChangeBridge(name);
    this.supports = { persistent: true, shared: true, changeEvents: true, maxMessageBytes };
  }

  /**
   * Opens a session, opening (or reopening) the database and running any migration first.
   * Rejects `UNAVAILABLE` when IndexedDB is missing or refuses, when the open stays blocked past
   * `blockedTimeoutMs`, when a newer app version owns the database, or after {@link close}.
   */
  async connect(): Promise<StorageSession> {
    await this.#db.connection();
    return new IndexedDbSession(this.#db, this.#changes, {
      clock: this.#clock,
      maxMessageBytes: this.supports.maxMessageBytes,
    });
  }

  /**
   * Calls `listener` after every committed change made through this engine and, via
   * BroadcastChannel, through any engine on the same database name in other tabs and workers
   * of the origin. Changes from other contexts arrive in order but may be merged (consecutive
   * changes of one type become one event with all their ids) and up to ~16 ms late while writes
   * keep coming there. A throwing listener never affects the write. Returns the unsubscribe
   * function.
   */
  subscribe(listener: ChangeListener): () => void {
    return this.#changes.subscribe(listener);
  }

  /**
   * Closes the connection and the change channel. Sessions of this engine then reject
   * `UNAVAILABLE`. Idempotent; resolves once closed.
   */
  async close(): Promise<void> {
    this.#db.close();
    this.#changes.close();
  }
}
