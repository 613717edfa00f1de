/**
 * Internal (used by the IndexedDB multi-tab tests and the outbox page's e2e tests): tabs of one
 * origin in Debian's Firefox (puppeteer-core over WebDriver BiDi) and WebKitGTK (webdriverio
 * over classic WebDriver), behind one small interface (types in tabs.d.ts).
 *
 * Classic WebDriver has one current window per session and runs one command at a time, so a
 * WebKit tab runs a scenario by starting it in the page and polling for its result; the
 * scenarios of several tabs then run at the same time in the browser, as they do in Firefox,
 * where each page is evaluated concurrently.
 */
import { descendants, launchFirefox, launchWebKit } from './browsers.js';

/**
 * Longest a scenario may run in a WebKit tab before the caller gives up on it (a test's own
 * timeout is shorter; a benchmark's drain of 10,000 messages in WebKitGTK takes minutes).
 */
const RUN_LIMIT_MS = 15 * 60_000;

/** @param {number} ms */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {number[]} pids */
function killAll(pids) {
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

/**
 * @param {import('./browsers.js').OtherBrowser} name
 * @param {{ firefoxPrefs?: Record<string, unknown> }} [options]
 * @returns {Promise<import('./tabs.js').DrivenBrowser>}
 */
export async function launchTabs(name, options = {}) {
  return name === 'firefox' ? launchFirefoxTabs(options.firefoxPrefs) : launchWebKitTabs();
}

/** @param {Record<string, unknown> | undefined} prefs */
async function launchFirefoxTabs(prefs) {
  const firefox = await launchFirefox('mailspool-tabs-firefox', prefs);
  const rootPid = firefox.browser.process()?.pid;
  if (rootPid === undefined) throw new Error('puppeteer started Firefox without a process');
  /** @type {import('./tabs.js').DrivenBrowser} */
  const driven = {
    name: 'firefox',
    async openTab(url, ready) {
      const page = await firefox.browser.newPage();
      await page.goto(url);
      if (ready) await page.waitForFunction(ready, { timeout: 30_000 });
      return {
        run: (fn, arg) => /** @type {never} */ (page.evaluate(/** @type {never} */ (fn), arg)),
        // Firefox puts the pages of one site in shared `tab` processes (its role is the last word
        // of a content process's command line) and doesn't say which: all of them go, so every
        // page of the browser crashes, this one with them.
        killRenderer: async () =>
          killAll(
            (await descendants(rootPid)).filter((p) => / tab$/.test(p.cmdline)).map((p) => p.pid),
          ),
        setOffline: (offline) => page.setOfflineMode(offline),
        bringToFront: () => page.bringToFront(),
        reload: async () => {
          await page.reload();
          if (ready) await page.waitForFunction(ready, { timeout: 30_000 });
        },
        close: () => page.close(),
      };
    },
    close: firefox.close,
  };
  return driven;
}

async function launchWebKitTabs() {
  const webkit = await launchWebKit();
  const browser = webkit.browser;
  // One WebDriver command at a time, each in its own window.
  /** @type {Promise<unknown>} */
  let queue = Promise.resolve();
  /** @template T @param {() => Promise<T>} job @returns {Promise<T>} */
  const serial = (job) => {
    const next = queue.then(job);
    queue = next.catch(() => {});
    return next;
  };
  /** @template T @param {string} handle @param {() => Promise<T>} command @returns {Promise<T>} */
  const inWindow = (handle, command) =>
    serial(async () => {
      await browser.switchToWindow(handle);
      return command();
    });
  // webdriverio's execute() types its arguments from the script's; these scripts take plain data.
  const execute = /** @type {(script: Function | string, ...args: unknown[]) => Promise<any>} */ (
    browser.execute.bind(browser)
  );
  let runs = 0;
  // The session's first window stays open (and blank): new windows are made from it. Killing the
  // last window's web process ends the WebDriver session, so this one must live.
  const home = await browser.getWindowHandle();
  const webProcesses = async () =>
    (await descendants(webkit.driverPid))
      .filter((p) => p.cmdline.includes('WebKitWebProcess'))
      .map((p) => p.pid);
  /** @type {import('./tabs.js').DrivenBrowser} */
  const driven = {
    name: 'webkit',
    async openTab(url, ready) {
      // Each WebKitGTK window gets a web process of its own: the one that appears is this tab's.
      const before = new Set(await webProcesses());
      const { handle } = await inWindow(home, () => browser.createWindow('window'));
      await inWindow(handle, () => browser.url(url));
      const own = (await webProcesses()).filter((pid) => !before.has(pid));
      // WebKitWebDriver deletes the whole session when a command reaches a crashed page, so once
      // this tab's renderer is killed no command goes to its window again (the window stays).
      let crashed = false;
      /** @template T @param {() => Promise<T>} command @returns {Promise<T>} */
      const inTab = (command) =>
        inWindow(handle, async () => {
          if (crashed) throw new Error('the tab crashed: its renderer was killed');
          return command();
        });
      const waitReady = async () => {
        if (!ready) return;
        const deadline = Date.now() + 30_000;
        while (!(await inTab(() => execute(`return Boolean((${ready.toString()})())`)))) {
          if (Date.now() > deadline) throw new Error(`${url} did not get ready within 30 s`);
          await pause(50);
        }
      };
      await waitReady();
      return {
        async run(fn, arg) {
          const id = `run${runs++}`;
          await inTab(() =>
            execute(
              /** @param {string} source @param {unknown} input @param {string} key */
              (source, input, key) => {
                const w = /** @type {{ runs?: Record<string, unknown> }} */ (
                  /** @type {unknown} */ (window)
                );
                w.runs ??= {};
                const runsById = w.runs;
                runsById[key] = { done: false };
                // The scenario as the test wrote it, rebuilt from its source in the page.
                const scenario = new Function(`return (${source})`)();
                Promise.resolve()
                  .then(() => scenario(input))
                  .then(
                    (value) => {
                      runsById[key] = { done: true, value };
                    },
                    (error) => {
                      runsById[key] = { done: true, error: String(error?.stack ?? error) };
                    },
                  );
              },
              fn.toString(),
              arg,
              id,
            ),
          );
          const deadline = Date.now() + RUN_LIMIT_MS;
          for (;;) {
            const result = await inTab(() =>
              execute(
                /** @param {string} key */
                (key) => {
                  const w = /** @type {{ runs: Record<string, { done: boolean }> }} */ (
                    /** @type {unknown} */ (window)
                  );
                  const current = w.runs[key];
                  if (current?.done) delete w.runs[key];
                  return current;
                },
                id,
              ),
            );
            if (result?.done) {
              if (result.error !== undefined) throw new Error(result.error);
              return result.value;
            }
            if (Date.now() > deadline)
              throw new Error(`${id} still running after ${RUN_LIMIT_MS} ms`);
            await pause(25);
          }
        },
        killRenderer: () =>
          serial(async () => {
            crashed = true;
            // Any command sent while the current window is a crashed one ends the session too.
            await browser.switchToWindow(home);
            return killAll(own);
          }),
        setOffline: async () => {
          throw new Error('WebKitGTK has no offline emulation over WebDriver');
        },
        bringToFront: async () => {
          throw new Error('WebKitGTK windows on Xvfb never become hidden');
        },
        reload: async () => {
          await inTab(() => browser.refresh());
          await waitReady();
        },
        close: async () => {
          if (crashed) return;
          await inTab(async () => {
            await browser.closeWindow();
            // webdriverio answers closeWindow by switching to the first remaining window on its
            // own, unawaited: that request could land between a later switch and its command, or
            // fail unhandled once the session is gone. WebKitWebDriver runs a session's commands
            // in order, so once this switch is answered, that one has been too.
            await browser.switchToWindow(home);
          });
        },
      };
    },
    close: webkit.close,
  };
  return driven;
}
