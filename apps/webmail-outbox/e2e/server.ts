/**
 * The e2e harness's server: builds the page with Vite (into dist/) and serves it on 127.0.0.1,
 * with the runtime `config.json` the test chooses. Optionally it also answers
 * `POST /v1/messages` like the relay Worker (docs/relay-api.md: bearer token, Idempotency-Key
 * de-duplication) and records what arrived, so tests that need no real Worker can still check
 * "posted exactly once". The lead's end-to-end tests point `config.relayUrl` at `wrangler dev`.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

export const appDir = fileURLToPath(new URL('..', import.meta.url));
const distDir = join(appDir, 'dist');

/** Builds the page into dist/ (quietly), as `vite build` would. */
export async function buildPage(): Promise<void> {
  // Vite derives import.meta.env.DEV/PROD from NODE_ENV, which vitest sets to 'test': without
  // this the page would register the dev-server service worker URL.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({
      root: appDir,
      mode: 'production',
      logLevel: 'warn',
      configFile: join(appDir, 'vite.config.ts'),
    });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** One POST the relay double accepted or de-duplicated. */
export interface RelayPost {
  readonly key: string;
  readonly from: string;
  readonly to: string[];
  readonly raw: string;
  /** The `sendAt` it asked for (epoch ms), if any. */
  readonly sendAt?: number;
  readonly status: number;
}

/** A running page server. */
export interface PageServer {
  readonly origin: string;
  /** Every `POST /v1/messages` received, in order (only when `relay` was enabled). */
  readonly posts: RelayPost[];
  /**
   * What `GET /v1/messages/:id` answers, by relay id (`relay-<Idempotency-Key>`), as the Worker's
   * delivery record would; an id not set here is `404`. Set by the test.
   */
  readonly statuses: Map<string, unknown>;
  /**
   * While `false`, every request's connection is dropped unanswered, as when the network is gone
   * (`fetch` rejects with a network error): for browsers with no offline emulation (WebKitGTK).
   */
  setReachable(reachable: boolean): void;
  close(): Promise<void>;
}

/** Options of {@link servePage}. */
export interface ServeOptions {
  /** Served as /config.json; `(origin) => config` to point at the server itself. Absent: 404. */
  readonly config?: (origin: string) => unknown;
  /** Answer `POST /v1/messages` like the relay Worker, accepting this bearer token. */
  readonly relayToken?: string;
  /** Port on 127.0.0.1; default: a free one. */
  readonly port?: number;
}

/** Serves dist/ on 127.0.0.1 on a free port. */
export async function servePage(options: ServeOptions = {}): Promise<PageServer> {
  const posts: RelayPost[] = [];
  const statuses = new Map<string, unknown>();
  const accepted = new Map<string, string>();
  let origin = '';
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', origin);
    if (url.pathname === '/config.json' && options.config) {
      return send(response, 200, JSON.stringify(options.config(origin)), TYPES['.json']!);
    }
    if (url.pathname === '/v1/messages' && options.relayToken !== undefined) {
      return relay(request, response);
    }
    const status = /^\/v1\/messages\/([^/]+)$/.exec(url.pathname);
    if (status && request.method === 'GET' && options.relayToken !== undefined) {
      if (request.headers.authorization !== `Bearer ${options.relayToken}`) {
        return sendJson(response, 401, { error: { code: 'UNAUTHORIZED', message: 'bad token' } });
      }
      const body = statuses.get(decodeURIComponent(status[1]!));
      return body === undefined
        ? sendJson(response, 404, { error: { code: 'NOT_FOUND', message: 'no such message' } })
        : sendJson(response, 200, body);
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'no');
    const path = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/u, '');
    const file = join(distDir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(distDir)) return send(response, 404, 'not found');
    try {
      const body = await readFile(file);
      return send(response, 200, body, TYPES[extname(file)] ?? 'application/octet-stream');
    } catch {
      return send(response, 404, 'not found');
    }
  };
  const relay = async (request: IncomingMessage, response: ServerResponse) => {
    if (request.headers.authorization !== `Bearer ${options.relayToken}`) {
      return sendJson(response, 401, { error: { code: 'UNAUTHORIZED', message: 'bad token' } });
    }
    let text = '';
    for await (const chunk of request) text += chunk;
    const body = JSON.parse(text) as { from: string; to: string[]; raw: string; sendAt?: number };
    const key = String(request.headers['idempotency-key'] ?? '');
    const status = accepted.has(key) ? 200 : 202;
    accepted.set(key, text);
    posts.push({
      key,
      from: body.from,
      to: body.to,
      raw: body.raw,
      status,
      ...(typeof body.sendAt === 'number' ? { sendAt: body.sendAt } : {}),
    });
    return sendJson(response, status, { id: `relay-${key}`, duplicate: status === 200 });
  };
  let reachable = true;
  const server: Server = createServer((request, response) => {
    if (!reachable) {
      request.socket.destroy();
      return;
    }
    handle(request, response).catch((error) => send(response, 500, String(error)));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    posts,
    statuses,
    setReachable: (value) => {
      reachable = value;
      // Kept-alive connections would otherwise still carry requests.
      if (!value) server.closeAllConnections();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(
  response: ServerResponse,
  status: number,
  body: string | Buffer,
  type = 'text/plain',
): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' });
  response.end(body);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, JSON.stringify(body), 'application/json');
}
