/**
 * `@mailspool/relay/cloudflare`: the SMTP relayer's sockets on Cloudflare Workers, over
 * `cloudflare:sockets`. A separate entry point so that the main one loads in any runtime.
 */
import { connect } from 'cloudflare:sockets';
import { SmtpRelayer, type SmtpRelayerOptions } from './smtp/relayer.js';
import type { SmtpConnect, SmtpSocket } from './smtp/socket.js';

interface WorkersSocket {
  readonly readable: ReadableStream;
  readonly writable: WritableStream;
  readonly opened: Promise<unknown>;
  close(): Promise<void>;
  startTls(): WorkersSocket;
}

function adapt(socket: WorkersSocket): SmtpSocket {
  return {
    readable: socket.readable as ReadableStream<Uint8Array>,
    writable: socket.writable as WritableStream<Uint8Array>,
    opened: socket.opened,
    close: () => socket.close(),
    startTls: () => adapt(socket.startTls()),
  };
}

/**
 * Opens a TCP socket with `connect()` from `cloudflare:sockets` (`secureTransport` `on` for
 * implicit TLS, `starttls` to allow a later upgrade, `off` for plain).
 */
export const cloudflareConnect: SmtpConnect = (address, options) =>
  adapt(
    connect(
      { hostname: address.hostname, port: address.port },
      { secureTransport: options.secureTransport, allowHalfOpen: false },
    ) as unknown as WorkersSocket,
  );

/** An {@link SmtpRelayer} on Workers sockets: `new SmtpRelayer({ connect: cloudflareConnect, ...options })`. */
export function createCloudflareRelayer(options: Omit<SmtpRelayerOptions, 'connect'>): SmtpRelayer {
  return new SmtpRelayer({ ...options, connect: cloudflareConnect });
}
