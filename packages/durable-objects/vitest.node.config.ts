import { defineConfig } from 'vitest/config';

// The Node-side suite: drives workerd through miniflare's Node API (restart with persistence).
export default defineConfig({
  test: {
    include: ['test/node/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: 'test-results/e2e.json' }]],
  },
});
