import { defineConfig } from 'vitest/config';

// `@mailspool/source` resolves workspace packages to their TypeScript sources: no build step between them.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    include: ['test/**/*.test.ts'],
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
