import { defineConfig } from 'vitest/config';

// The whole stack in real Chromium: smtp-sink + `wrangler dev` + the built outbox page.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    include: ['e2e/*.e2e.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    reporters: ['default', ['json', { outputFile: 'test-results/e2e.json' }]],
  },
});
