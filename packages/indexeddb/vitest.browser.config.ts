import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { chromiumArgs, chromiumPath } from './e2e/chromium.js';

// The conformance suite in real Chromium (vitest browser mode), on the system's Chromium.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  server: { host: '127.0.0.1' },
  optimizeDeps: { include: ['idb', '@mailspool/conformance > fast-check'] },
  test: {
    // A hang detector, not a speed check (see docs/toolchain-notes.md): vitest's 5 s default
    // failed tests that took 7 s while every suite ran at once on 2 cores.
    testTimeout: 60_000,
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/e2e-browser.json' }]],
    include: ['e2e/browser/**/*.test.ts'],
    browser: {
      enabled: true,
      headless: true,
      api: { host: '127.0.0.1' },
      provider: playwright({
        launchOptions: { executablePath: chromiumPath, args: [...chromiumArgs] },
      }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
