/**
 * Serves the multi-tab test page on 127.0.0.1: page.ts bundled in memory by esbuild (workspace
 * packages resolved to their sources), plus a one-line HTML page. Nothing is written to disk.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface PageServer {
  /** The origin, e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  close(): Promise<void>;
}

export async function startPageServer(): Promise<PageServer> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  });
  const script = result.outputFiles[0]!.contents;
  const html =
    '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>';
  const server: Server = createServer((request, response) => {
    if (request.url === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      response.end(script);
    } else if (request.url === '/' || request.url?.startsWith('/?')) {
      response.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
      response.end(html);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
