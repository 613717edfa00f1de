/**
 * The bench page (bundled by chromium.ts): `window.bench` runs one row of one table and returns
 * its Sample; Workbox rows are forwarded to the service worker (sw.ts).
 */
import type { Sample } from '../lib/harness.js';
import type { SwRequest } from './sw.js';
import { idbRows, prepareStats, type StatsFixture, statsRows } from './workloads.js';

let fixture: StatsFixture | undefined;
const stats = statsRows(() => fixture!);

async function toWorker<T>(request: SwRequest): Promise<T> {
  const registration = await navigator.serviceWorker.ready;
  const channel = new MessageChannel();
  const answer = new Promise<{ ok: boolean; value?: T; error?: string }>((resolve) => {
    channel.port1.onmessage = (event) => resolve(event.data);
  });
  registration.active!.postMessage(request, [channel.port2]);
  const result = await answer;
  if (!result.ok) throw new Error(result.error);
  return result.value as T;
}

const bench = {
  async run(table: string, row: string, n: number, tag: number): Promise<Sample> {
    if (row.startsWith('workbox')) return toWorker<Sample>({ op: 'run', table, row, n, tag });
    const work = table === 'stats' ? stats[row] : idbRows[table]?.[row];
    if (!work) throw new Error(`no row ${table}/${row}`);
    return work(n, tag);
  },
  async prepareStats(n: number, tag: number, workbox: boolean): Promise<void> {
    fixture = await prepareStats(n, tag);
    if (workbox) await toWorker({ op: 'prepare-stats', n, tag });
  },
  async disposeStats(workbox: boolean): Promise<void> {
    await fixture?.dispose();
    fixture = undefined;
    if (workbox) await toWorker({ op: 'dispose-stats', n: 0, tag: 0 });
  },
  /** Registers the service worker and resolves once it is active. */
  async ready(): Promise<void> {
    await navigator.serviceWorker.register('/sw.js');
    await navigator.serviceWorker.ready;
  },
};

declare global {
  interface Window {
    bench: typeof bench;
  }
}

window.bench = bench;
