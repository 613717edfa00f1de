/**
 * The part of `cloudflare:sockets` that cloudflare.ts uses, declared here so the package builds
 * without the Workers type package in scope (it conflicts with the DOM lib). Projects that load
 * `@cloudflare/workers-types` get the full declaration from it instead.
 */
declare module 'cloudflare:sockets' {
  interface Socket {
    readonly readable: ReadableStream;
    readonly writable: WritableStream;
    readonly opened: Promise<unknown>;
    readonly closed: Promise<void>;
    close(): Promise<void>;
    startTls(options?: { expectedServerHostname?: string }): Socket;
  }
  export function connect(
    address: string | { hostname: string; port: number },
    options?: { secureTransport?: string; allowHalfOpen?: boolean },
  ): Socket;
}
