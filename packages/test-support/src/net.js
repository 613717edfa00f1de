/**
 * Internal (used by tests and the demo): network helpers for servers on 127.0.0.1. Plain
 * JavaScript (types in net.d.ts) so that config files, which Node loads itself, can import it.
 */

import { statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Ports are chosen below the kernel's ephemeral range (32768–60999 on Linux), which it hands out
 * for `listen(0)` and for the local end of every outgoing connection: a port found free there
 * could be taken by any process's connection before the server that needs it starts (CI saw
 * EADDRINUSE that way). Below it only another caller of freePort competes, and a reservation file
 * in the temporary directory, created exclusively, keeps concurrent test processes apart.
 */
const LOWEST = 20000;
const HIGHEST = 32767;
const RESERVATION_MS = 15 * 60_000;

export async function freePort() {
  for (let tries = 0; tries < 200; tries++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1));
    if (!reserve(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: no free port in ${LOWEST}-${HIGHEST} after 200 tries`);
}

/** @param {number} port */
function reserve(port) {
  const file = join(tmpdir(), `mailspool-port-${port}`);
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < RESERVATION_MS) return false;
      writeFileSync(file, String(process.pid));
      return true;
    } catch {
      return false;
    }
  }
}

/** @param {number} port */
function bindable(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
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
