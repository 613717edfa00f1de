import { defineConfig } from 'vitest/config';
import { webkitProvider } from './e2e/system-browsers.js';

// The conformance suite in Debian's WebKitGTK (WebKitWebDriver on an Xvfb display),
// vitest browser mode with the provider from e2e/system-browsers.ts.
export default defineConfig({
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  server: { host: '127.0.0.1' },
  // WebKitGTK 2.50 has no \`await using\` (explicit resource management; the conformance suite
  // uses it): vite lowers it for this browser.
  oxc: { target: 'es2022' },
  optimizeDeps: { include: ['idb', '@mailspool/conformance > fast-check'] },
  test: {
    // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed, N failed" line).
    reporters: ['default', ['json', { outputFile: 'test-results/e2e-webkit.json' }]],
    include: ['e2e/browser/**/*.test.ts'],
    browser: {
      enabled: true,
      headless: true,
      api: { host: '127.0.0.1' },
      // vitest's default (60 s) was too short on a fresh clone under load: vite's first dependency
      // scan and bundle took about a minute before the page could connect.
      connectTimeout: 180_000,
      provider: webkitProvider(),
      instances: [{ browser: 'webkit' }],
    },
  },
});
