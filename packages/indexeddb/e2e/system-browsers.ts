/**
 * vitest browser-mode providers for Debian's Firefox and WebKitGTK (test-support's browsers.js).
 *
 * vitest 4.1's own providers can't drive them here: `@vitest/browser-playwright` needs
 * Playwright's patched Firefox and WebKit builds (a download), and `@vitest/browser-webdriverio`
 * starts Firefox through geckodriver (a download) and accepts `safari` but not WebKitGTK's
 * MiniBrowser. A provider only has to open the tester page: the page talks to vitest over its own
 * WebSocket. These two do that and nothing more (no `userEvent`/commands; the conformance suite
 * needs none).
 */
import { launchFirefox, launchWebKit } from '@mailspool/test-support/browsers';
import { defineBrowserProvider } from '@vitest/browser';

type Opened = { goto(url: string): Promise<void>; close(): Promise<void> };

function systemBrowser(name: 'firefox' | 'webkit', open: () => Promise<Opened>) {
  return defineBrowserProvider({
    name: `system-${name}`,
    supportedBrowser: [name],
    providerFactory: () => {
      let opened: Promise<Opened> | undefined;
      return {
        name: `system-${name}`,
        supportsParallelism: false,
        getCommandsContext: () => ({}),
        async openPage(_sessionId: string, url: string) {
          opened ??= open();
          await (await opened).goto(url);
        },
        async close() {
          const browser = opened;
          opened = undefined;
          if (browser) await (await browser).close();
        },
      };
    },
  });
}

export const firefoxProvider = () =>
  systemBrowser('firefox', async () => {
    const firefox = await launchFirefox('mailspool-idb-vitest-firefox');
    const page = await firefox.browser.newPage();
    return {
      goto: async (url) => {
        await page.goto(url);
      },
      close: firefox.close,
    };
  });

export const webkitProvider = () =>
  systemBrowser('webkit', async () => {
    const webkit = await launchWebKit();
    return {
      goto: async (url) => {
        await webkit.browser.url(url);
      },
      close: webkit.close,
    };
  });
