/**
 * Internal (used by the IndexedDB e2e tests, the outbox and demo e2e tests, and the benchmarks):
 * how the repository launches Chromium — the system's Debian build (CHROMIUM_PATH, default
 * /usr/bin/chromium) with the flags from TOOLCHAIN.md. Nothing may download a browser; without
 * the background-networking flags Chromium's connections are refused by this machine's closed
 * network, many at a time.
 *
 * Plain JavaScript (types in chromium.d.ts) so that vitest and vite config files, which Node
 * loads itself, can import it too.
 */
import { chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

export function launchChromium(options = {}) {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [...chromiumArgs],
    headless: true,
    ...options,
  });
}
