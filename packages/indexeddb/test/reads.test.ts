/**
 * Contents reads issued in the same turn share one readonly transaction (a drain that reads a
 * claimed batch with Promise.all pays one browser round trip, not one per message), and each
 * read still settles on its own.
 */
import 'fake-indexeddb/auto';
import { ErrorCode, ManualClock } from '@mailspool/core';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IndexedDbEngine } from '../src/index.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('getMessageContents', () => {
  it('reads of one turn share a transaction; a missing one rejects alone', async () => {
    const engine = new IndexedDbEngine({
      name: 'reads',
      indexedDB: new IDBFactory(),
      clock: new ManualClock(),
    });
    const s = await engine.connect();
    const ids = await s.storeMessages(
      ['one', 'two', 'three'].map((text) => ({ meta: { text }, contents: text })),
    );
    const unknown = 'no-such-message';
    const stores: string[][] = [];
    const original = IDBDatabase.prototype.transaction;
    vi.spyOn(IDBDatabase.prototype, 'transaction').mockImplementation(function (
      this: IDBDatabase,
      ...args: Parameters<IDBDatabase['transaction']>
    ) {
      stores.push([...args[0]]);
      return original.apply(this, args);
    });

    const results = await Promise.allSettled(
      [...ids, unknown].map((id) => s.getMessageContents(id)),
    );

    expect(stores).toEqual([['contents']]);
    const text = (r: PromiseSettledResult<Uint8Array>) =>
      r.status === 'fulfilled' ? new TextDecoder().decode(r.value) : r.reason.code;
    expect(results.map(text)).toEqual(['one', 'two', 'three', ErrorCode.NOT_FOUND]);

    // One at a time still works (a transaction each) and sees the latest write.
    await s.setMessageContents(ids[0]!, 'uno');
    expect(new TextDecoder().decode(await s.getMessageContents(ids[0]!))).toBe('uno');
    await expect(s.getMessageContents(unknown)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await engine.close();
  });
});
