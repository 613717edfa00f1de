/**
 * Internal (used by tests and the demo): network helpers for servers on 127.0.0.1. Plain
 * JavaScript (types in net.d.ts) so that config files, which Node loads itself, can import it.
 */
import { createServer } from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}
