/**
 * Internal (used by the IndexedDB e2e tests, the outbox e2e tests and the benchmarks): Firefox
 * and WebKit from Debian's apt, next to chromium.js. Nothing here downloads a browser or a driver.
 *
 * - Firefox: `firefox-esr` (FIREFOX_PATH), headless, driven by puppeteer-core over WebDriver BiDi
 *   (Firefox's own remote agent: no geckodriver).
 * - WebKit: WebKitGTK's MiniBrowser (WEBKIT_BROWSER_PATH) driven by `WebKitWebDriver`
 *   (WEBKIT_DRIVER_PATH, package webkit2gtk-driver) over classic WebDriver with webdriverio.
 *   WebKitGTK has no headless mode, so each launch starts its own Xvfb display.
 *
 * Plain JavaScript (types in browsers.d.ts) so that vitest config files, which Node loads
 * itself, can import it too.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export const firefoxPath = process.env.FIREFOX_PATH || '/usr/bin/firefox-esr';
export const webkitDriverPath = process.env.WEBKIT_DRIVER_PATH || '/usr/bin/WebKitWebDriver';
export const webkitBrowserPath =
  process.env.WEBKIT_BROWSER_PATH || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

/** The browsers besides Chromium that the e2e tests run in. */
export const otherBrowsers = /** @type {const} */ (['firefox', 'webkit']);

/**
 * Launches headless Firefox with a fresh profile on disk (removed by `close()`), with `prefs`
 * added to the profile's preferences.
 * @param {string} prefix
 * @param {Record<string, unknown>} [prefs]
 */
export async function launchFirefox(prefix = 'mailspool-firefox', prefs = {}) {
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = await mkdtemp(join(tmpdir(), `${prefix}-`));
  try {
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: firefoxPath,
      headless: true,
      userDataDir: profile,
      // puppeteer's default (180 s) would cut a long evaluate short, e.g. a benchmark's drain.
      protocolTimeout: 15 * 60_000,
      extraPrefsFirefox: {
        // No background connections: this machine's network is closed.
        'app.update.enabled': false,
        'browser.safebrowsing.downloads.remote.enabled': false,
        'network.captive-portal-service.enabled': false,
        'network.connectivity-service.enabled': false,
        // Keeps navigator.onLine in the test's hands (Firefox would follow the OS link state).
        'network.manage-offline-status': false,
        ...prefs,
      },
    });
    return {
      browser,
      profile,
      close: async () => {
        await browser.close().catch(() => {});
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Spawns Xvfb on a free display; resolves once it serves, with its display name and the
 * process (stop it with `stopProcess`).
 */
export async function startXvfb() {
  const child = spawn(
    'Xvfb',
    ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
    {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    },
  );
  const display = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('Xvfb did not start within 20 s')), 20_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Xvfb exited with ${code}`));
    });
    /** @type {import('node:stream').Readable} */ (child.stdio[3]).on('data', (chunk) => {
      out += String(chunk);
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
  });
  child.removeAllListeners('exit');
  return { child, display: /** @type {string} */ (display) };
}

/**
 * SIGTERM, then SIGKILL after 5 s; resolves once the process has exited.
 * @param {import('node:child_process').ChildProcess} child
 */
export function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts Xvfb, WebKitWebDriver on a free port of 127.0.0.1 and one WebDriver session of
 * MiniBrowser (a fresh window); `close()` ends the session and stops both processes.
 */
export async function launchWebKit() {
  const { remote } = await import('webdriverio');
  const xvfb = await startXvfb();
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let driver;
  try {
    const port = await freePort();
    driver = spawn(webkitDriverPath, [`--port=${port}`, '--host=127.0.0.1'], {
      stdio: 'ignore',
      env: { ...process.env, DISPLAY: xvfb.display },
    });
    // Bounded wait for the driver's /status.
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/status`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i >= 200) throw new Error('WebKitWebDriver did not answer /status within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const browser = await remote({
      hostname: '127.0.0.1',
      port,
      logLevel: 'silent',
      connectionRetryCount: 0,
      // WebKitGTK's vendor capability, which webdriverio's types don't list.
      capabilities: /** @type {WebdriverIO.Capabilities} */ ({
        'webkitgtk:browserOptions': { binary: webkitBrowserPath, args: ['--automation'] },
      }),
    });
    const driverProcess = driver;
    return {
      browser,
      driverPid: /** @type {number} */ (driverProcess.pid),
      close: async () => {
        await browser.deleteSession().catch(() => {});
        await stopProcess(driverProcess);
        await stopProcess(xvfb.child);
      },
    };
  } catch (error) {
    if (driver) await stopProcess(driver);
    await stopProcess(xvfb.child);
    throw error;
  }
}

/**
 * Starts WebKitGTK's MiniBrowser on `url` with no driver, on X display `display`, keeping its
 * data (IndexedDB included) on disk under `home` (its XDG data and cache directories): unlike a
 * WebDriver session, whose storage is in memory, a later launch on the same `home` sees it.
 * @param {string} url
 * @param {{ display: string, home: string }} options
 */
export function launchMiniBrowser(url, { display, home }) {
  return spawn(webkitBrowserPath, [url], {
    stdio: 'ignore',
    env: {
      ...process.env,
      DISPLAY: display,
      XDG_DATA_HOME: join(home, 'data'),
      XDG_CACHE_HOME: join(home, 'cache'),
      XDG_CONFIG_HOME: join(home, 'config'),
    },
  });
}

/**
 * The processes descended from `rootPid` (read from /proc), each with its command line: how a
 * test finds a browser's content (renderer) processes to kill them like an OOM kill would.
 * @param {number} rootPid
 */
export async function descendants(rootPid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  /** @type {Map<number, string>} */
  const cmdlines = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) comes after the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
      cmdlines.set(
        Number(entry),
        (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim(),
      );
    } catch {
      // The process ended while we read.
    }
  }
  /** @type {{ pid: number, cmdline: string }[]} */
  const found = [];
  const queue = [...(children.get(rootPid) ?? [])];
  while (queue.length > 0) {
    const pid = /** @type {number} */ (queue.shift());
    found.push({ pid, cmdline: cmdlines.get(pid) ?? '' });
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}
