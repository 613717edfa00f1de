import type { OtherBrowser } from './browsers.js';

/** A tab of a {@link DrivenBrowser}. */
export interface Tab {
  /** Runs `fn(arg)` in the page (serialised: it sees only the page's globals); resolves with its result. */
  run<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<Awaited<R>>;
  /**
   * SIGKILLs the tab's content (renderer) process, as an OOM kill would; the browser lives on.
   * Resolves with how many processes were killed.
   */
  killRenderer(): Promise<number>;
  /** Emulates a lost network for this tab (Firefox only: `online`/`offline` events fire). */
  setOffline(offline: boolean): Promise<void>;
  /**
   * Makes this the browser's front tab: the tab that was in front becomes hidden and this one
   * visible (`visibilitychange` fires in both). Firefox only: WebKitGTK windows on Xvfb never
   * become hidden, so it rejects there.
   */
  bringToFront(): Promise<void>;
  /** Reloads the page and waits until it is ready again. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** Firefox or WebKitGTK, driven. */
export interface DrivenBrowser {
  readonly name: OtherBrowser;
  /** Opens a tab on `url`; with `ready`, waits until it returns true in the page. */
  openTab(url: string, ready?: () => boolean): Promise<Tab>;
  close(): Promise<void>;
}

/** Launches Firefox (with `firefoxPrefs` added to its profile) or WebKitGTK for tabs. */
export declare function launchTabs(
  name: OtherBrowser,
  options?: { readonly firefoxPrefs?: Record<string, unknown> },
): Promise<DrivenBrowser>;
