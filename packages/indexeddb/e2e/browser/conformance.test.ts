import { runConformance } from '@mailspool/conformance';
import { describe, expect, it } from 'vitest';
import { server } from 'vitest/browser';
import type { IndexedDbEngine } from '../../src/index.js';
import { conformanceHooks } from '../../test/conformance-hooks.js';

// The conformance suite on a real browser's IndexedDB (Chromium, Firefox or WebKitGTK: the
// vitest.*.config.ts that runs it decides): the store name is the database name, fresh for every
// case; same name → same database (persistence cases).
const browser = server.browser as 'chromium' | 'firefox' | 'webkit';
const userAgents = {
  chromium: /Chrome\/\d+/,
  firefox: /Firefox\/\d+/,
  // WebKitGTK's MiniBrowser says Safari, and never Chrome.
  webkit: /^(?!.*Chrome).*AppleWebKit\/\d+.*Safari\/\d+/,
};

runConformance<IndexedDbEngine>({
  name: `IndexedDbEngine (${browser})`,
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
  it(`runs on a real ${browser} with its native IndexedDB`, () => {
    expect(navigator.userAgent).toMatch(userAgents[browser]);
    expect(Function.prototype.toString.call(indexedDB.open)).toContain('[native code]');
  });
});
