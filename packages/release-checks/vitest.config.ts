import { defineConfig } from 'vitest/config';

// The fast release checks: publish dry-runs, packed manifests, the docs' code-block rules.
export default defineConfig({
  test: {
    include: ['test/*.test.ts'],
    exclude: ['test/*.e2e.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
