import { defineConfig } from 'vitest/config';
import { firefoxProvider } from './e2e/system-browsers.js';

// The conformance suite in Debian's Firefox ESR (puppeteer-core over WebDriver BiDi),
// vitest browser mode with the provider from e2e/system-browsers.ts.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  server: { host: '127.0.0.1' },
  optimizeDeps: { include: ['idb', '@mailspool/conformance > fast-check'] },
  test: {
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/e2e-firefox.json' }]],
    include: ['e2e/browser/**/*.test.ts'],
    browser: {
      enabled: true,
      headless: true,
      api: { host: '127.0.0.1' },
      // vitest's default (60 s) was too short on a fresh clone under load: vite's first dependency
      // scan and bundle took about a minute before the page could connect.
      connectTimeout: 180_000,
      provider: firefoxProvider(),
      instances: [{ browser: 'firefox' }],
    },
  },
});
