/** How the e2e tests launch Chromium: the repository's shared settings (Debian Chromium, docs/toolchain-notes.md flags). */
export { chromiumArgs, chromiumPath, launchChromium } from '@mailspool/test-support/chromium';
