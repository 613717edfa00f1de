import type { ChildProcess } from 'node:child_process';
import type { Browser as PuppeteerBrowser } from 'puppeteer-core';
import type { Browser as WdioBrowser } from 'webdriverio';

/** Debian's Firefox ESR: FIREFOX_PATH, default /usr/bin/firefox-esr. */
export declare const firefoxPath: string;
/** WebKitGTK's WebDriver (package webkit2gtk-driver): WEBKIT_DRIVER_PATH, default /usr/bin/WebKitWebDriver. */
export declare const webkitDriverPath: string;
/** WebKitGTK's MiniBrowser: WEBKIT_BROWSER_PATH. */
export declare const webkitBrowserPath: string;
/** The browsers besides Chromium that the e2e tests run in. */
export declare const otherBrowsers: readonly ['firefox', 'webkit'];
export type OtherBrowser = (typeof otherBrowsers)[number];

/**
 * Launches headless Firefox with a fresh profile on disk and `prefs` added to its preferences;
 * `close()` closes it and removes the profile.
 */
export declare function launchFirefox(
  prefix?: string,
  prefs?: Record<string, unknown>,
): Promise<{
  readonly browser: PuppeteerBrowser;
  readonly profile: string;
  close(): Promise<void>;
}>;

/** Starts Xvfb, WebKitWebDriver and one MiniBrowser session; `close()` stops all three. */
export declare function launchWebKit(): Promise<{
  readonly browser: WdioBrowser;
  /** WebKitWebDriver's pid: MiniBrowser and its web processes descend from it. */
  readonly driverPid: number;
  close(): Promise<void>;
}>;

/** The processes descended from `rootPid`, with their command lines (from /proc). */
export declare function descendants(
  rootPid: number,
): Promise<{ readonly pid: number; readonly cmdline: string }[]>;

/** Starts Xvfb on a free display (`:N`). */
export declare function startXvfb(): Promise<{
  readonly child: ChildProcess;
  readonly display: string;
}>;

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export declare function stopProcess(child: ChildProcess): Promise<void>;

/**
 * Starts MiniBrowser on `url` with no driver, on X display `display`, its data on disk under
 * `home` (a later launch on the same `home` sees it; a WebDriver session's storage is in memory).
 */
export declare function launchMiniBrowser(
  url: string,
  options: { readonly display: string; readonly home: string },
): ChildProcess;
