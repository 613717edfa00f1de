import { runConformance } from '@mailspool/conformance';
import { describe, expect, it } from 'vitest';
import type { IndexedDbEngine } from '../../src/index.js';
import { conformanceHooks } from '../../test/conformance-hooks.js';

// The conformance suite on Chromium's real IndexedDB: the store name is the database name, fresh
// for every case; same name → same database (persistence cases).
runConformance<IndexedDbEngine>({
  name: 'IndexedDbEngine (Chromium)',
  ...conformanceHooks(() => undefined),
  disposeEngine: async (engine, { store }) => {
    await engine.close();
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
