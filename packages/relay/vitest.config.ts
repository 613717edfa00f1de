import { defineConfig } from 'vitest/config';

// Node tests: the queue policy, bounces, the SMTP codec, and the SMTP client over Node sockets.
// `@mailspool/source` resolves workspace packages to their TypeScript sources: no build step between them.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    // A hang detector, not a speed check (see docs/toolchain-notes.md): vitest's 5 s default
    // failed tests that took 7 s while every suite ran at once on 2 cores.
    testTimeout: 60_000,
    include: ['test/*.test.ts'],
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
