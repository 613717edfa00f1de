/**
 * How the e2e tests launch Chromium: the system's Debian build (CHROMIUM_PATH, default
 * /usr/bin/chromium) with the flags from TOOLCHAIN.md, a fresh profile per launch. Nothing may
 * download a browser.
 */
import { type Browser, chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

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

/** Launches headless Chromium (playwright-core gives each launch a fresh temporary profile). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
}
