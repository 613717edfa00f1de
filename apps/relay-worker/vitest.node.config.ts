import { defineConfig } from 'vitest/config';

// End-to-end tests in Node: the Worker as `wrangler dev` runs it (wrangler's unstable_startWorker,
// its own workerd, storage persisted to a directory), a real smtp-sink, and restarts.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    include: ['test/node/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    reporters: ['default', ['json', { outputFile: 'test-results/e2e.json' }]],
  },
});
