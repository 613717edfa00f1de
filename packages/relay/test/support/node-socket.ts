/**
 * Internal test support (Node only): an `SmtpConnect` over `node:net` / `node:tls`, so the
 * protocol logic also runs against smtp-server in Node, including TLS paths that workerd can't
 * test locally (its TLS trusts only public CAs; smtp-server's test certificate is self-signed).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SmtpConnect, SmtpSocket } from '../../src/index.js';

function wrap(socket: net.Socket, openEvent: 'connect' | 'secureConnect'): SmtpSocket {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;
  const onData = (chunk: Buffer): void => controller.enqueue(new Uint8Array(chunk));
  const onEnd = (): void => {
    if (ended) return;
    ended = true;
    controller.close();
  };
  const onError = (error: Error): void => {
    if (ended) return;
    ended = true;
    controller.error(error);
  };
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      socket.on('error', onError);
    },
    cancel() {
      ended = true;
      socket.destroy();
    },
  });
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) =>
      new Promise<void>((resolve, reject) =>
        socket.write(chunk, (error) => (error ? reject(error) : resolve())),
      ),
    abort() {
      socket.destroy();
    },
  });
  const opened = new Promise<void>((resolve, reject) => {
    socket.once(openEvent, () => resolve());
    socket.once('error', reject);
  });
  opened.catch(() => undefined);
  return {
    readable,
    writable,
    opened,
    close: () => {
      socket.destroy();
    },
    startTls: () => {
      // Hand the raw socket to TLS: our listeners must stop reading it first.
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      return wrap(tls.connect({ socket, rejectUnauthorized: false }), 'secureConnect');
    },
  };
}

/** Node sockets; TLS accepts any certificate (test servers use a self-signed one). */
export const nodeConnect: SmtpConnect = (address, options) =>
  options.secureTransport === 'on'
    ? wrap(
        tls.connect({ host: address.hostname, port: address.port, rejectUnauthorized: false }),
        'secureConnect',
      )
    : wrap(net.connect({ host: address.hostname, port: address.port }), 'connect');
