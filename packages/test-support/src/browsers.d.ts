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

/** Launches headless Firefox with a fresh profile on disk; `close()` closes it and removes the profile. */
export declare function launchFirefox(prefix?: string): Promise<{
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
