/**
 * How the e2e tests launch Chromium: the system's Debian build (CHROMIUM_PATH, default
 * /usr/bin/chromium) with the flags from TOOLCHAIN.md. Nothing may download a browser.
 */
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
