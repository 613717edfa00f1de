import { defineConfig } from 'vitest/config';

// The consumer projects (installed from the tarballs with npm and pnpm) and the API reference.
export default defineConfig({
  test: {
    include: ['test/*.e2e.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    reporters: ['default', ['json', { outputFile: 'test-results/e2e.json' }]],
  },
});
