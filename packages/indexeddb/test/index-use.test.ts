/** The engine's queries walk indexes: claimDue and stats never read contents or every row. */
import 'fake-indexeddb/auto';
import { ManualClock } from '@mailspool/core';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { IndexedDbEngine } from '../src/index.js';

// Count cursor steps. idb recognises cursor methods by identity and caches them on first use,
// so the counting wrapper is installed before any engine runs, for this whole file.
let cursorSteps = 0;
const realContinue = IDBCursor.prototype.continue;
IDBCursor.prototype.continue = function (this: IDBCursor, ...args: [IDBValidKey?]) {
  cursorSteps++;
  return realContinue.apply(this, args);
};
// Count rows claimDue reads from the `by-priority` index in batches (`getAll(range, count)`).
let dueRowsRead = 0;
const realGetAll = IDBIndex.prototype.getAll;
IDBIndex.prototype.getAll = function (this: IDBIndex, ...args: [IDBKeyRange?, number?]) {
  const request = realGetAll.apply(this, args);
  if (this.name === 'by-priority') {
    request.addEventListener('success', () => {
      dueRowsRead += (request.result as unknown[]).length;
    });
  }
  return request;
};
afterAll(() => {
  IDBCursor.prototype.continue = realContinue;
  IDBIndex.prototype.getAll = realGetAll;
});

let counter = 0;
function engine(factory: IDBFactory, name: string, clock: ManualClock) {
  return new IndexedDbEngine({ name, indexedDB: factory, clock });
}

describe('queries use the indexes', () => {
  it('claimDue and stats never read contents, and claimDue reads only the rows it needs', async () => {
    const factory = new IDBFactory();
    const clock = new ManualClock();
    const e = engine(factory, `idx-${counter++}`, clock);
    const s = await e.connect();
    const now = clock.now();
    // 300 deferred messages that claimDue must not walk, 20 due ones, 5 incomplete ones.
    await s.storeMessages(
      Array.from({ length: 300 }, (_, n) => ({
        meta: { n },
        contents: 'later',
        retryAt: now + 60_000 + n,
      })),
    );
    const due = await s.storeMessages(
      Array.from({ length: 20 }, (_, n) => ({ meta: { n }, contents: 'now', retryAt: now - n })),
    );
    for (let n = 0; n < 5; n++) await s.claimMessageId();
    // Five are in flight: claimDue has to step over them.
    const inFlight = await s.claimDue({ limit: 5, ttl: 60_000 });
    expect(inFlight.map((l) => l.id)).toEqual(due.slice(-5).reverse());

    const contentsReads = vi.fn();
    for (const method of ['get', 'getAll', 'openCursor'] as const) {
      const original = IDBObjectStore.prototype[method] as (...args: unknown[]) => unknown;
      vi.spyOn(IDBObjectStore.prototype, method).mockImplementation(function (
        this: IDBObjectStore,
        ...args: unknown[]
      ) {
        if (this.name === 'contents') contentsReads(method);
        return original.apply(this, args);
      } as never);
    }
    cursorSteps = 0;
    dueRowsRead = 0;

    const leases = await s.claimDue({ limit: 3, ttl: 60_000 });
    expect(leases.map((l) => l.id)).toEqual(due.slice(-8, -5).reverse());
    // 5 in flight + 3 taken: at most 8 rows were read from the index, not 325, and no cursor
    // walked anything.
    expect(dueRowsRead).toBeGreaterThan(0);
    expect(dueRowsRead).toBeLessThanOrEqual(8);
    expect(cursorSteps).toBe(0);
    expect(await s.stats()).toEqual({ total: 325, active: 8, deferred: 300, due: 12 });
    expect(contentsReads).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    await e.close();
  });
});
