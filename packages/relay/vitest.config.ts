import { defineConfig } from 'vitest/config';

// Node tests: the queue policy, bounces, the SMTP codec, and the SMTP client over Node sockets.
// `@mailspool/source` resolves workspace packages to their TypeScript sources: no build step between them.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  ssr: {
    resolve: { conditions: ['@mailspool/source', 'module', 'node', 'development|production'] },
  },
  test: {
    include: ['test/*.test.ts'],
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
