/**
 * Internal (used by the IndexedDB e2e tests, the outbox and demo e2e tests, and the benchmarks):
 * how the repository launches Chromium — the system's Debian build (CHROMIUM_PATH, default
 * /usr/bin/chromium) with the flags from docs/toolchain-notes.md. Nothing may download a browser; without
 * the background-networking flags Chromium's connections are refused by this machine's closed
 * network, many at a time.
 *
 * Plain JavaScript (types in chromium.d.ts) so that vitest and vite config files, which Node
 * loads itself, can import it too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/**
 * Launches headless Chromium with a fresh profile on disk (IndexedDB in files, as for a user),
 * in a temporary directory named after `prefix`; `close()` closes it and removes the directory.
 */
/** @param {string} prefix */
export async function launchWithDiskProfile(prefix) {
  const profile = await mkdtemp(join(tmpdir(), `${prefix}-`));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      args: [...chromiumArgs],
      headless: true,
    });
    return {
      context,
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}
