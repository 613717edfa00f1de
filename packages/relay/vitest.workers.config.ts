import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

const conditions = [
  '@mailspool/source',
  'workerd',
  'worker',
  'module',
  'browser',
  'development|production',
];

// The SMTP relayer's required tests: they run inside workerd (the Workers runtime) and talk to a
// real smtp-server that test/global-setup.ts starts on 127.0.0.1.
export default defineConfig({
  plugins: [
    cloudflareTest({
      miniflare: {
        compatibilityDate: '2026-04-01',
      },
    }),
  ],
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    // A hang detector, not a speed check (see docs/toolchain-notes.md): vitest's 5 s default
    // failed tests that took 7 s while every suite ran at once on 2 cores.
    testTimeout: 60_000,
    include: ['test/workers/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', ['json', { outputFile: 'test-results/workers.json' }]],
  },
});
