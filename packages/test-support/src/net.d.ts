/**
 * A port on 127.0.0.1 that was free a moment ago and that no other caller of freePort (in any
 * process) is given for 15 minutes: for a server whose port must be known before it starts.
 */
export declare function freePort(): Promise<number>;

/** The HTML page every test page uses: one module script, `/page.js`. */
export declare const MODULE_PAGE_HTML: string;

/** A file served from memory: its content type and bytes. */
export interface ServedFile {
  readonly type: string;
  readonly body: string | Uint8Array;
}

/** A server on 127.0.0.1 (see {@link serveFiles}). */
export interface FileServer {
  /** The origin, e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Serves `files` (path → file) from memory on 127.0.0.1, never cached, until `close()`. The query
 * string is ignored when matching a path; anything else answers 404.
 */
export declare function serveFiles(
  files: Readonly<Record<string, ServedFile>>,
): Promise<FileServer>;
