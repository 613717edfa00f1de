/**
 * The bench service worker (bundled by chromium.ts): runs Workbox rows on request from the page.
 * A message `{ op, table, row, n, tag }` arrives with a MessagePort; the answer goes back on it
 * as `{ ok: true, value }` or `{ ok: false, error }`. `waitUntil` keeps the worker alive meanwhile.
 */
import { disposeWorkboxStats, prepareWorkboxStats, workboxRows } from './workbox.js';

/** The parts of ServiceWorkerGlobalScope used here (the WebWorker lib clashes with DOM's). */
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface ExtendableMessageEvent extends ExtendableEvent {
  readonly data: unknown;
  readonly ports: readonly MessagePort[];
}
declare const self: {
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(
    type: 'install' | 'activate' | 'sync',
    listener: (event: ExtendableEvent) => void,
  ): void;
  addEventListener(type: 'message', listener: (event: ExtendableMessageEvent) => void): void;
};

export interface SwRequest {
  readonly op: 'run' | 'prepare-stats' | 'dispose-stats';
  readonly table?: string;
  readonly row?: string;
  readonly n: number;
  readonly tag: number;
}

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
// Workbox adds its `sync` listeners when a Queue is built; one added at start-up keeps Chromium
// from warning that sync handlers must be added during the worker's first evaluation.
self.addEventListener('sync', () => {});

self.addEventListener('message', (event) => {
  const port = event.ports[0]!;
  const request = event.data as SwRequest;
  const work = (async () => {
    if (request.op === 'prepare-stats') return prepareWorkboxStats(request.n, request.tag);
    if (request.op === 'dispose-stats') return disposeWorkboxStats();
    const run = workboxRows[request.table!]?.[request.row!];
    if (!run) throw new Error(`no Workbox row ${request.table}/${request.row}`);
    return run(request.n, request.tag);
  })().then(
    (value) => port.postMessage({ ok: true, value }),
    (error: unknown) =>
      port.postMessage({ ok: false, error: String((error as Error)?.stack ?? error) }),
  );
  event.waitUntil(work);
});
