/** Test helpers for the Node tests on fake-indexeddb: raw IndexedDB access and failure injection. */
import { IDBFactory } from 'fake-indexeddb';
import { vi } from 'vitest';

/** Resolves with the result of a raw request. */
export function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Resolves when a raw transaction completes. */
export function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
}

/** Opens `name` at `version` with raw IndexedDB, running `upgrade` on upgradeneeded. */
export function openRaw(
  factory: IDBFactory,
  name: string,
  version: number,
  upgrade?: (db: IDBDatabase, tx: IDBTransaction, oldVersion: number) => void,
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = factory.open(name, version);
    req.onupgradeneeded = (event) => upgrade?.(req.result, req.transaction!, event.oldVersion);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('raw open blocked'));
  });
}

/**
 * A factory that records every connection it opens, so a test can close one "as the browser
 * would" (fake-indexeddb's forceCloseDatabase) or watch its events.
 */
export function recordingFactory(): { factory: IDBFactory; connections: IDBDatabase[] } {
  const real = new IDBFactory();
  const connections: IDBDatabase[] = [];
  const factory = {
    open(name: string, version?: number) {
      const req = real.open(name, version);
      req.addEventListener('success', () => connections.push(req.result));
      return req;
    },
    deleteDatabase: (name: string) => real.deleteDatabase(name),
    databases: () => real.databases(),
    cmp: (a: unknown, b: unknown) => real.cmp(a, b),
  } as unknown as IDBFactory;
  return { factory, connections };
}

type StoreMethod = 'put' | 'add';

/** How {@link injectFailure} fails the next write. */
export type FailureMode = 'request' | 'commit' | 'hang';

/**
 * Makes the next `put`/`add` on object store `storeName` fail with a DOMException named
 * `errorName`, the way a browser reports a full quota, a disk error or a forced close:
 * - `'request'`: the request itself errors (and its transaction aborts with that error);
 * - `'commit'`: the request succeeds, then the transaction aborts with that error, so later
 *   requests see only a generic AbortError;
 * - `'hang'`: the request never settles and the transaction aborts underneath it (browsers can
 *   leave a request pending like this; the engine must still settle).
 *
 * fake-indexeddb has no quota and its forced close waits for transactions, so this reaches into
 * its transaction internals (`_execRequestAsync`, `_abort`); the Chromium e2e test uses a real
 * quota instead.
 */
export function injectFailure(
  storeName: string,
  when: FailureMode,
  errorName = 'QuotaExceededError',
) {
  let armed = true;
  const spies = (['put', 'add'] as StoreMethod[]).map((method) => {
    const original = IDBObjectStore.prototype[method];
    return vi.spyOn(IDBObjectStore.prototype, method).mockImplementation(function (
      this: IDBObjectStore,
      ...args: [unknown, IDBValidKey?]
    ) {
      if (!armed || this.name !== storeName) return original.apply(this, args);
      armed = false;
      const tx = this.transaction as unknown as {
        _execRequestAsync(op: { operation: () => never; source: unknown }): IDBRequest;
        _abort(name: string): void;
      };
      if (when === 'request') {
        return tx._execRequestAsync({
          operation: () => {
            throw new DOMException('injected failure', errorName);
          },
          source: this,
        });
      }
      if (when === 'hang') {
        tx._abort(errorName);
        return new IDBRequest();
      }
      const req = original.apply(this, args);
      req.addEventListener('success', () => tx._abort(errorName));
      return req;
    });
  });
  return {
    get fired() {
      return !armed;
    },
    restore() {
      for (const spy of spies) spy.mockRestore();
    },
  };
}
