/**
 * Serves the multi-tab test page on 127.0.0.1: page.ts bundled in memory by esbuild (workspace
 * packages resolved to their sources), a one-line HTML page, and `POST /report`, where pages in
 * browsers without a Playwright binding (Firefox, WebKit) send their reports. Nothing is written
 * to disk.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Report } from './page.js';

export interface PageServer {
  /** The origin, e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  /** Called with each report posted to `/report`, before the page's request is answered. */
  onReport: (report: Report) => void;
  close(): Promise<void>;
}

/** A report is one small JSON object; anything larger is refused. */
const MAX_REPORT_BYTES = 64 * 1024;

export async function startPageServer(): Promise<PageServer> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome120', 'firefox128', 'safari17'],
    conditions: ['@mailspool/source'],
    write: false,
    logLevel: 'silent',
  });
  const script = result.outputFiles[0]!.contents;
  // Only pages served here know it: nothing else on the machine can post reports.
  const token = randomBytes(16).toString('hex');
  const html = `<!doctype html><meta charset="utf-8"><meta name="report-token" content="${token}"><script type="module" src="/page.js"></script>`;
  const server: PageServer = {
    origin: '',
    onReport: () => {},
    close: () =>
      new Promise((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
  const http = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, type?: string, body?: string | Uint8Array) => {
      response.writeHead(status, {
        'cache-control': 'no-store',
        ...(type ? { 'content-type': type } : {}),
      });
      response.end(body);
    };
    if (request.method === 'GET' && path === '/') return send(200, 'text/html', html);
    if (request.method === 'GET' && path === '/page.js')
      return send(200, 'text/javascript', script);
    if (request.method !== 'POST' || path !== '/report') return send(404);
    if (request.headers['x-report-token'] !== token) return send(403);
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REPORT_BYTES) {
        send(413);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > MAX_REPORT_BYTES) return;
      let report: Report;
      try {
        report = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Report;
      } catch {
        return send(400);
      }
      server.onReport(report);
      send(204);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return Object.assign(server, { origin: `http://127.0.0.1:${port}` });
}
