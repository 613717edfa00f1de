/**
 * The outbox's service worker (built by Vite as its own entry, `sw.js`). On a Background Sync
 * event tagged {@link SYNC_TAG} it runs the same flusher as the page, over the same IndexedDB
 * outbox, so mail queued offline leaves once the network is back even if every tab was closed.
 * `claimDue` leases keep it from posting a message that a tab is posting; the relay's
 * Idempotency-Key absorbs the rest.
 *
 * In production builds it also keeps the page loadable offline (compose offline, reload, still
 * there): it pre-caches the app shell on install and answers same-origin GETs network-first,
 * falling back to the cache. Nothing else is cached; mail itself lives in IndexedDB.
 */
import { openOutbox, SYNC_TAG } from './app.js';
import { readSharedConfig } from './config.js';
import { Flusher } from './flusher.js';

// TypeScript's DOM and WebWorker libs can't be loaded together; these are the few service worker
// types this file uses (https://developer.mozilla.org/docs/Web/API/SyncEvent).
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface SyncEvent extends ExtendableEvent {
  readonly tag: string;
  readonly lastChance: boolean;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface ServiceWorkerScope {
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
  readonly registration: { readonly scope: string };
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'sync', listener: (event: SyncEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
}

const scope = globalThis as unknown as ServiceWorkerScope;
const SHELL_CACHE = 'mailspool-outbox-shell-v1';

scope.addEventListener('install', (event) => {
  // A failed pre-cache must not block the worker: flushing matters more than offline reloads.
  const shell = import.meta.env.PROD ? precacheShell().catch(() => undefined) : Promise.resolve();
  event.waitUntil(shell.then(() => scope.skipWaiting()));
});

if (import.meta.env.PROD) {
  scope.addEventListener('fetch', (event) => {
    const url = new URL(event.request.url);
    if (event.request.method !== 'GET' || url.origin !== new URL(scope.registration.scope).origin)
      return;
    event.respondWith(networkFirst(event.request));
  });
}

/** Caches the page and the scripts and styles it references (Vite's hashed file names). */
async function precacheShell(): Promise<void> {
  const cache = await caches.open(SHELL_CACHE);
  const page = scope.registration.scope;
  const response = await fetch(page, { cache: 'no-cache' });
  if (!response.ok) return;
  await cache.put(page, response.clone());
  const html = await response.text();
  const urls = new Set<string>();
  for (const match of html.matchAll(/(?:src|href)="([^"]+)"/gu)) {
    const url = new URL(match[1]!, page);
    if (url.origin === new URL(page).origin) urls.add(url.href);
  }
  await cache.addAll([...urls]);
}

/** The network's answer (and a fresh copy in the cache), or the cached one when offline. */
async function networkFirst(request: Request): Promise<Response> {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached =
      (await cache.match(request, { ignoreSearch: true })) ??
      (request.mode === 'navigate' ? await cache.match(scope.registration.scope) : undefined);
    if (cached) return cached;
    throw error;
  }
}

scope.addEventListener('activate', (event) => {
  event.waitUntil(scope.clients.claim());
});

scope.addEventListener('sync', (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil(flushOnce(event.lastChance));
});

/**
 * One flusher pass. Rejects while mail is left waiting for the network or the relay, so that the
 * browser fires the sync again later with its own backoff (except on its last chance).
 */
async function flushOnce(lastChance: boolean): Promise<void> {
  const config = await readSharedConfig();
  if (!config) return; // The page was never configured: nothing can be sent.
  const { outbox, sentEngine, history } = openOutbox();
  try {
    const flusher = new Flusher({ engine: outbox, history, config: () => config });
    const report = await flusher.flush();
    const waiting = report.outcomes.retry + report.outcomes.offline + report.outcomes.error;
    if (waiting > 0 && !lastChance) throw new Error(`${waiting} message(s) still waiting`);
  } finally {
    await Promise.all([outbox.close(), sentEngine.close()]);
  }
}
