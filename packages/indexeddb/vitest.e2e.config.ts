import { defineConfig } from 'vitest/config';

// Multi-tab tests: Node drives the system's Chromium with playwright-core; the pages load a
// bundle served from 127.0.0.1 (e2e/tabs/server.ts).
export default defineConfig({
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/e2e-tabs.json' }]],
    include: ['e2e/tabs/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
