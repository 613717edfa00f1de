import { defineConfig } from 'vitest/config';

// Fast Node tests (the `test` script): flusher, scheduler, MIME. The real-Chromium tests are in
// vitest.e2e.config.ts (the `e2e` script).
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    // A hang detector, not a speed check (see docs/toolchain-notes.md): vitest's 5 s default
    // failed tests that took 7 s while every suite ran at once on 2 cores.
    testTimeout: 60_000,
    include: ['test/**/*.test.ts'],
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
