import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// The workerd suite: tests run inside workerd next to the Durable Objects of test/wrangler.jsonc.
// `@mailspool/source` resolves workspace packages to their TypeScript sources: no build step between them.
export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: './test/wrangler.jsonc' } })],
  resolve: { conditions: ['@mailspool/source', 'workerd', 'worker', 'module', 'browser'] },
  ssr: { resolve: { conditions: ['@mailspool/source', 'workerd', 'worker', 'module', 'browser'] } },
  test: {
    include: ['test/*.test.ts'],
    // Files share one workerd process on a 2-core machine: run them one at a time.
    fileParallelism: false,
    // Correctness tests, not timed ones: CI runs every package at once on 2 cores, where a race
    // test of a few seconds alone took over vitest's default 5 s and failed.
    testTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
