/**
 * Internal (used by engine.ts and session.ts): one engine's IndexedDB connection and the
 * transaction runner every session primitive goes through.
 *
 * - The connection opens lazily, is shared by all sessions of the engine, and is reopened on
 *   the next call after the browser closed it (`close` event) or after we closed it on
 *   `versionchange` so that another tab could upgrade.
 * - An open that stays `blocked` (another tab holds an older version open and ignores
 *   `versionchange`) rejects with `UNAVAILABLE` after `blockedTimeoutMs`, never hangs.
 * - `run()` gives each operation exactly one transaction and settles when the transaction is
 *   finished: with the body's result after `complete`, or with the mapped error after `abort`,
 *   even when the abort leaves a request's promise pending.
 */
import { ErrorCode, MailspoolError } from '@mailspool/core';
import { type IDBPDatabase, type IDBPTransaction, wrap } from 'idb';
import { mapError } from './errors.js';
import { DB_VERSION, migrate, type OutboxSchema, type StoreName } from './schema.js';

/** A transaction of the outbox schema over `S` in mode `M`. */
export type Tx<S extends StoreName[], M extends IDBTransactionMode> = IDBPTransaction<
  OutboxSchema,
  S,
  M
>;

/** How long `open()` waits on a `blocked` request before rejecting `UNAVAILABLE`, by default. */
export const DEFAULT_BLOCKED_TIMEOUT_MS = 5000;

/** What a {@link Database} needs. */
export interface DatabaseConfig {
  readonly name: string;
  readonly factory: IDBFactory | undefined;
  readonly blockedTimeoutMs: number;
  readonly durability: IDBTransactionDurability;
  /** See `IndexedDbEngineOptions.beforeWrite`. */
  readonly beforeWrite?: (() => void) | undefined;
}

const WRITES = new Set(['put', 'add', 'delete', 'clear']);

/**
 * `tx` with every write request preceded by `beforeWrite`: when it throws, that request fails
 * with its error (and so the body, and the transaction with it).
 */
function probed<T extends object>(tx: T, beforeWrite: () => void): T {
  const wrapStore = (store: object) =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        if (typeof prop !== 'string' || !WRITES.has(prop)) return value.bind(target);
        return (...args: unknown[]) => {
          try {
            beforeWrite();
          } catch (error) {
            return Promise.reject(error);
          }
          return value.apply(target, args);
        };
      },
    });
  return new Proxy(tx, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'objectStore' && typeof value === 'function') {
        return (name: string) => wrapStore(value.call(target, name));
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Rejected with when a transaction completed before its operation finished (a bug, never data loss). */
const ENDED_EARLY = 'the transaction ended before the operation finished';

export class Database {
  readonly #config: DatabaseConfig;
  #db: IDBPDatabase<OutboxSchema> | undefined;
  #opening: Promise<IDBPDatabase<OutboxSchema>> | undefined;
  #closed = false;

  constructor(config: DatabaseConfig) {
    this.#config = config;
  }

  /** The open connection, opening it when needed. Rejects `UNAVAILABLE`. */
  connection(): Promise<IDBPDatabase<OutboxSchema>> {
    if (this.#closed) {
      return Promise.reject(new MailspoolError(ErrorCode.UNAVAILABLE, 'the engine was closed'));
    }
    if (this.#db) return Promise.resolve(this.#db);
    this.#opening ??= this.#open().then(
      (db) => {
        this.#opening = undefined;
        if (this.#closed) {
          db.close();
          throw new MailspoolError(ErrorCode.UNAVAILABLE, 'the engine was closed');
        }
        this.#db = db;
        return db;
      },
      (error: unknown) => {
        this.#opening = undefined;
        throw error;
      },
    );
    return this.#opening;
  }

  /** Closes the connection for good; later calls reject `UNAVAILABLE`. */
  close(): void {
    this.#closed = true;
    this.#db?.close();
    this.#db = undefined;
  }

  /**
   * Runs `body` in one transaction over `stores`. `body` must await nothing but requests of
   * `tx` (anything else lets the transaction auto-commit half-way). Resolves with `body`'s result
   * once the transaction committed; rejects with `body`'s error (after aborting, so nothing it
   * wrote is kept) or with the mapped IndexedDB error.
   */
  async run<S extends StoreName[], M extends 'readonly' | 'readwrite', T>(
    stores: S,
    mode: M,
    body: (tx: Tx<S, M>) => Promise<T>,
  ): Promise<T> {
    const tx = await this.#transaction(stores, mode);
    const done = tx.done;
    let settled = false;
    // Settles with the abort reason if the transaction ends first: a request whose transaction
    // aborted underneath it may otherwise never settle. The error is built only when the
    // transaction really ended first: building one on every call (its stack trace) cost ~1% of
    // a relaxed storeMessage in Chromium (bench CPU profile, issue 8).
    const ended = done.then((): Promise<never> => {
      if (!settled) throw new MailspoolError(ErrorCode.UNAVAILABLE, ENDED_EARLY);
      return new Promise<never>(() => {}); // the race already went to `work`
    });
    const { beforeWrite } = this.#config;
    const work = body(beforeWrite && mode === 'readwrite' ? probed(tx, beforeWrite) : tx);
    work.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    ended.catch(() => {});
    try {
      const result = await Promise.race([work, ended]);
      await done;
      return result;
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already finished or aborting: nothing of it was committed by us after the error.
      }
      done.catch(() => {});
      throw mapError(error, tx.error);
    }
  }

  async #transaction<S extends StoreName[], M extends 'readonly' | 'readwrite'>(
    stores: S,
    mode: M,
  ): Promise<Tx<S, M>> {
    const options = mode === 'readwrite' ? { durability: this.#config.durability } : undefined;
    for (let attempt = 0; ; attempt++) {
      const db = await this.connection();
      try {
        return db.transaction(stores, mode, options) as Tx<S, M>;
      } catch (error) {
        // The connection started closing between our check and the call (versionchange or a
        // forced close whose event we have not seen yet): forget it and reopen once.
        this.#forget(db);
        if (attempt > 0 || (error as { name?: unknown })?.name !== 'InvalidStateError') {
          throw mapError(error);
        }
      }
    }
  }

  #forget(db: IDBPDatabase<OutboxSchema>): void {
    if (this.#db === db) this.#db = undefined;
  }

  #open(): Promise<IDBPDatabase<OutboxSchema>> {
    const { factory, name, blockedTimeoutMs } = this.#config;
    return new Promise((resolve, reject) => {
      if (!factory) {
        reject(
          new MailspoolError(ErrorCode.UNAVAILABLE, 'IndexedDB is not available in this context'),
        );
        return;
      }
      let request: IDBOpenDBRequest;
      try {
        request = factory.open(name, DB_VERSION);
      } catch (error) {
        reject(mapError(error));
        return;
      }
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let upgradeError: unknown;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };

      request.onupgradeneeded = (event) => {
        const raw = request.transaction!;
        const db = wrap(request.result) as unknown as IDBPDatabase<OutboxSchema>;
        const tx = wrap(raw) as unknown as Parameters<typeof migrate>[2];
        migrate(db, event.oldVersion, tx).catch((error: unknown) => {
          upgradeError = error;
          try {
            raw.abort();
          } catch {
            // Already aborted by the failing request.
          }
        });
      };
      request.onblocked = () => {
        // Another connection (a tab running older code) did not close on versionchange.
        clearTimeout(timer);
        timer = setTimeout(() => {
          fail(
            new MailspoolError(
              ErrorCode.UNAVAILABLE,
              `opening IndexedDB "${name}" is blocked by another connection (another tab?) that did not close within ${blockedTimeoutMs} ms`,
            ),
          );
        }, blockedTimeoutMs);
      };
      request.onsuccess = () => {
        const db = request.result;
        if (settled) {
          // We gave up while blocked; the open went through later. Do not keep it.
          db.close();
          return;
        }
        settled = true;
        clearTimeout(timer);
        const wrapped = wrap(db) as unknown as IDBPDatabase<OutboxSchema>;
        db.onversionchange = () => {
          // Let another tab upgrade or delete the database; the next call reopens.
          db.close();
          this.#forget(wrapped);
        };
        db.onclose = () => this.#forget(wrapped);
        resolve(wrapped);
      };
      request.onerror = (event) => {
        // Handled here; keep it from surfacing as an uncaught error in some browsers.
        event.preventDefault();
        fail(mapError(upgradeError ?? request.error));
      };
    });
  }
}
