import type { Browser, BrowserContext, LaunchOptions } from 'playwright-core';

/** The system's Chromium: CHROMIUM_PATH, default /usr/bin/chromium. */
export declare const chromiumPath: string;
/** The launch flags from docs/toolchain-notes.md. */
export declare const chromiumArgs: string[];
/** Launches headless Chromium (playwright-core gives each launch a fresh temporary profile). */
export declare function launchChromium(options?: LaunchOptions): Promise<Browser>;
/**
 * Launches headless Chromium with a fresh profile on disk (IndexedDB in files, as for a user),
 * in a temporary directory named after `prefix`; `close()` closes it and removes the directory.
 */
export declare function launchWithDiskProfile(
  prefix: string,
): Promise<{ readonly context: BrowserContext; close(): Promise<void> }>;
