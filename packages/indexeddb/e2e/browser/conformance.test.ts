import { runConformance } from '@mailspool/conformance';
import { describe, expect, it } from 'vitest';
import { IndexedDbEngine } from '../../src/index.js';

// The conformance suite on Chromium's real IndexedDB: the store name is the database name, fresh
// for every case; same name → same database (persistence cases).
runConformance({
  name: 'IndexedDbEngine (Chromium)',
  createEngine: ({ clock, store, maxMessageBytes }) =>
    new IndexedDbEngine({
      name: store,
      clock,
      ...(maxMessageBytes ? { maxMessageBytes } : {}),
    }),
  disposeEngine: async (engine, { store }) => {
    await (engine as IndexedDbEngine).close();
    // Keep the profile small; a delete blocked by a straggler must not hang the run.
    await new Promise<void>((resolve) => {
      const request = indexedDB.deleteDatabase(store);
      request.onsuccess = request.onerror = request.onblocked = () => resolve();
    });
  },
  modelRuns: 30,
  timeout: 60_000,
});

describe('environment', () => {
  it('runs on a real Chromium with its native IndexedDB', () => {
    expect(navigator.userAgent).toMatch(/Chrome\/\d+/);
    expect(Function.prototype.toString.call(indexedDB.open)).toContain('[native code]');
  });
});
