import type { Browser, LaunchOptions } from 'playwright-core';

/** The system's Chromium: CHROMIUM_PATH, default /usr/bin/chromium. */
export declare const chromiumPath: string;
/** The launch flags from TOOLCHAIN.md. */
export declare const chromiumArgs: string[];
/** Launches headless Chromium (playwright-core gives each launch a fresh temporary profile). */
export declare function launchChromium(options?: LaunchOptions): Promise<Browser>;
