/**
 * Tabs of one origin in Debian's Firefox (puppeteer-core over WebDriver BiDi) and WebKitGTK
 * (webdriverio over classic WebDriver), behind one small interface for tabs-other.test.ts.
 *
 * Classic WebDriver has one current window per session and runs one command at a time, so a
 * WebKit tab runs a scenario by starting it in the page and polling for its result; the
 * scenarios of several tabs then run at the same time in the browser, as they do in Chromium and
 * Firefox, where each page is evaluated concurrently.
 */
import {
  descendants,
  launchFirefox,
  launchWebKit,
  type OtherBrowser,
} from '@mailspool/test-support/browsers';

export interface Tab {
  /** Runs `fn(arg)` in the page (serialised: it sees only the page's globals); resolves with its result. */
  run<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<Awaited<R>>;
  /**
   * SIGKILLs the tab's content (renderer) process, as an OOM kill would; the browser lives on.
   * Resolves with how many processes were killed.
   */
  killRenderer(): Promise<number>;
  close(): Promise<void>;
}

export interface DrivenBrowser {
  readonly name: OtherBrowser;
  /** Opens a tab on `url` and waits for the test page's `window.outbox`. */
  openTab(url: string): Promise<Tab>;
  close(): Promise<void>;
}

/** Longest a scenario may run in a WebKit tab before the test gives up on it. */
const RUN_LIMIT_MS = 180_000;

export async function launch(
  name: OtherBrowser,
  options: { firefoxPrefs?: Record<string, unknown> } = {},
): Promise<DrivenBrowser> {
  return name === 'firefox' ? launchFirefoxTabs(options.firefoxPrefs) : launchWebKitTabs();
}

async function killAll(pids: number[]): Promise<number> {
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

async function launchFirefoxTabs(prefs?: Record<string, unknown>): Promise<DrivenBrowser> {
  const firefox = await launchFirefox('mailspool-idb-tabs-firefox', prefs);
  const rootPid = firefox.browser.process()?.pid;
  if (rootPid === undefined) throw new Error('puppeteer started Firefox without a process');
  return {
    name: 'firefox',
    async openTab(url) {
      const page = await firefox.browser.newPage();
      await page.goto(url);
      await page.waitForFunction(() => window.outbox !== undefined);
      return {
        run: (fn, arg) => page.evaluate(fn as never, arg) as never,
        // Firefox puts the pages of one site in shared `tab` processes (its role is the last word
        // of a content process's command line) and doesn't say which: all of them go, so every
        // page of the browser crashes, this one with them.
        killRenderer: async () =>
          killAll(
            (await descendants(rootPid)).filter((p) => / tab$/.test(p.cmdline)).map((p) => p.pid),
          ),
        close: () => page.close(),
      };
    },
    close: firefox.close,
  };
}

async function launchWebKitTabs(): Promise<DrivenBrowser> {
  const webkit = await launchWebKit();
  const browser = webkit.browser;
  // One WebDriver command at a time, each in its own window.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(job: () => Promise<T>): Promise<T> => {
    const next = queue.then(job);
    queue = next.catch(() => {});
    return next;
  };
  const inWindow = <T>(handle: string, command: () => Promise<T>): Promise<T> =>
    serial(async () => {
      await browser.switchToWindow(handle);
      return command();
    });
  // webdriverio's execute() types its arguments from the script's; these scripts take plain data.
  const execute = browser.execute.bind(browser) as unknown as (
    script: (...args: never[]) => unknown,
    ...args: unknown[]
  ) => Promise<unknown>;
  let runs = 0;
  // The session's first window stays open (and blank): new windows are made from it. Killing the
  // last window's web process ends the WebDriver session, so this one must live.
  const home = await browser.getWindowHandle();
  const webProcesses = async () =>
    (await descendants(webkit.driverPid))
      .filter((p) => p.cmdline.includes('WebKitWebProcess'))
      .map((p) => p.pid);
  return {
    name: 'webkit',
    async openTab(url) {
      // Each WebKitGTK window gets a web process of its own: the one that appears is this tab's.
      const before = new Set(await webProcesses());
      const { handle } = await inWindow(home, () => browser.createWindow('window'));
      await inWindow(handle, () => browser.url(url));
      const own = (await webProcesses()).filter((pid) => !before.has(pid));
      // WebKitWebDriver deletes the whole session when a command reaches a crashed page, so once
      // this tab's renderer is killed no command goes to its window again (the window stays).
      let crashed = false;
      const inTab = <T>(command: () => Promise<T>): Promise<T> =>
        inWindow(handle, async () => {
          if (crashed) throw new Error('the tab crashed: its renderer was killed');
          return command();
        });
      const deadline = Date.now() + 30_000;
      while (!(await inWindow(handle, () => browser.execute(() => window.outbox !== undefined)))) {
        if (Date.now() > deadline) throw new Error(`${url} did not load the test page`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return {
        async run<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<Awaited<R>> {
          const id = `run${runs++}`;
          await inTab(() =>
            execute(
              (source: string, input: unknown, key: string) => {
                const w = window as unknown as { runs?: Record<string, unknown> };
                w.runs ??= {};
                const runsById = w.runs;
                runsById[key] = { done: false };
                // The scenario as the test wrote it, rebuilt from its source in the page.
                const scenario = new Function(`return (${source})`)() as (a: unknown) => unknown;
                Promise.resolve()
                  .then(() => scenario(input))
                  .then(
                    (value) => {
                      runsById[key] = { done: true, value };
                    },
                    (error: unknown) => {
                      runsById[key] = {
                        done: true,
                        error: String((error as Error)?.stack ?? error),
                      };
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
            const state = await inTab(() =>
              browser.execute((key: string) => {
                const w = window as unknown as { runs: Record<string, { done: boolean }> };
                const current = w.runs[key]!;
                if (current.done) delete w.runs[key];
                return current;
              }, id),
            );
            const result = state as { done: boolean; value?: unknown; error?: string };
            if (result.done) {
              if (result.error !== undefined) throw new Error(result.error);
              return result.value as Awaited<R>;
            }
            if (Date.now() > deadline)
              throw new Error(`${id} still running after ${RUN_LIMIT_MS} ms`);
            await new Promise((r) => setTimeout(r, 25));
          }
        },
        killRenderer: () =>
          serial(async () => {
            crashed = true;
            // Any command sent while the current window is a crashed one ends the session too.
            await browser.switchToWindow(home);
            return killAll(own);
          }),
        close: async () => {
          if (!crashed) await inTab(() => browser.closeWindow());
        },
      };
    },
    close: webkit.close,
  };
}
