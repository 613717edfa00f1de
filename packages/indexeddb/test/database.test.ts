/** The transaction runner (src/database.ts) on fake-indexeddb. */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { Database } from '../src/database.js';

const open = () =>
  new Database({
    name: 'runner',
    factory: new IDBFactory(),
    blockedTimeoutMs: 1000,
    durability: 'strict',
  });

describe('Database.run', () => {
  it("resolves with the body's result once the transaction committed", async () => {
    const db = open();
    try {
      const n = await db.run(['messages'], 'readonly', (tx) => tx.objectStore('messages').count());
      expect(n).toBe(0);
      // Many calls in a row: the guard against an early end must never fire after a normal one.
      for (let k = 0; k < 20; k++) {
        await db.run(['messages'], 'readwrite', async (tx) => {
          await tx.objectStore('messages').put({
            id: `m${k}`,
            createdAt: 1,
            meta: null,
            size: null,
            retryAt: null,
            lockedUntil: null,
            priority: 1,
            token: 0,
          });
        });
      }
      expect(
        await db.run(['messages'], 'readonly', (tx) => tx.objectStore('messages').count()),
      ).toBe(20);
    } finally {
      db.close();
    }
  });

  // Regression guard for the lazily built ENDED_EARLY error: the check must still fire.
  it('rejects UNAVAILABLE when the transaction ends before the body finished', async () => {
    const db = open();
    try {
      const run = db.run(['messages'], 'readonly', async () => {
        // Awaiting anything but a request of the transaction lets it commit underneath.
        await new Promise((resolve) => setTimeout(resolve, 50));
        return 'too late';
      });
      await expect(run).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      db.close();
    }
  });
});
