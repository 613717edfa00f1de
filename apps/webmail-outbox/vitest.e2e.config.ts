import { defineConfig } from 'vitest/config';

// Real Chromium (playwright-core driving /usr/bin/chromium) against the built page: the `e2e`
// script. Tests run in Node; one file at a time (2 cores shared with others).
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    reporters: ['default', ['json', { outputFile: 'test-results/e2e.json' }]],
  },
});
