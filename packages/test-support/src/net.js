/**
 * Internal (used by tests and the demo): network helpers for servers on 127.0.0.1. Plain
 * JavaScript (types in net.d.ts) so that config files, which Node loads itself, can import it.
 */
import { createServer as createHttpServer } from 'node:http';
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

/** The HTML page every test page uses: one module script, `/page.js`. */
export const MODULE_PAGE_HTML =
  '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>';

/**
 * Serves `files` (path → `{ type, body }`) from memory on 127.0.0.1, never cached, until
 * `close()`. The query string is ignored when matching a path; anything else answers 404.
 */
/** @param {Readonly<Record<string, import('./net.js').ServedFile>>} files */
export async function serveFiles(files) {
  const server = createHttpServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const file = Object.hasOwn(files, path) ? files[path] : undefined;
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' });
    response.end(file.body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}
