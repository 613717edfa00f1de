/**
 * The vitest config of the conformance suite in Debian's Firefox ESR (puppeteer-core over
 * WebDriver BiDi) or WebKitGTK (WebKitWebDriver on an Xvfb display): vitest browser mode with
 * the providers of system-browsers.ts. vitest.firefox.config.ts and vitest.webkit.config.ts are
 * this, for one browser each.
 */
import { defineConfig } from 'vitest/config';
import { firefoxProvider, webkitProvider } from './system-browsers.js';

export function systemBrowserConfig(browser: 'firefox' | 'webkit') {
  return defineConfig({
    resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
    server: { host: '127.0.0.1' },
    optimizeDeps: { include: ['idb', '@mailspool/conformance > fast-check'] },
    // WebKitGTK 2.50 has no `await using` (explicit resource management; the conformance suite
    // uses it): vite lowers it for this browser.
    ...(browser === 'webkit' ? { oxc: { target: 'es2022' } } : {}),
    test: {
      // The JSON report feeds scripts/test-summary.mjs (the run's closing "N passed" line).
      reporters: ['default', ['json', { outputFile: `test-results/e2e-${browser}.json` }]],
      include: ['e2e/browser/**/*.test.ts'],
      browser: {
        enabled: true,
        headless: true,
        api: { host: '127.0.0.1' },
        // vitest's default (60 s) was too short on a fresh clone under load: vite's first
        // dependency scan and bundle took about a minute before the page could connect.
        connectTimeout: 180_000,
        provider: browser === 'firefox' ? firefoxProvider() : webkitProvider(),
        instances: [{ browser }],
      },
    },
  });
}
