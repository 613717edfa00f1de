/**
 * The socket the SMTP client needs: the shape of a `cloudflare:sockets` `Socket`, kept as a small
 * interface so that the protocol logic does not depend on one runtime (the Workers adapter is
 * in cloudflare.ts; tests also drive it over Node's `net`/`tls`).
 */

/** A connected byte stream. A `cloudflare:sockets` `Socket` satisfies it. */
export interface SmtpSocket {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves once connected; rejects when the connection can't be made. */
  readonly opened?: Promise<unknown>;
  /** Closes both directions; must not throw. */
  close(): Promise<void> | void;
  /**
   * Upgrades to TLS (STARTTLS) and returns the secure socket. Called only with the streams'
   * locks released, on a socket opened with `secureTransport: 'starttls'`.
   */
  startTls?(): SmtpSocket;
}

/** Where to connect. */
export interface SmtpSocketAddress {
  readonly hostname: string;
  readonly port: number;
}

/** How to connect: `on` is implicit TLS (port 465), `starttls` plain with a later upgrade, `off` plain. */
export interface SmtpConnectOptions {
  readonly secureTransport: 'on' | 'off' | 'starttls';
}

/** Opens a socket; `connect` from `cloudflare:sockets` has this shape. */
export type SmtpConnect = (address: SmtpSocketAddress, options: SmtpConnectOptions) => SmtpSocket;
