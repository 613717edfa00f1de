/**
 * The Durable Objects table, in workerd through miniflare's Node API (the miniflare line
 * packages/durable-objects tests with; `cf: false`, no persist directory: each object's SQLite lives in
 * a temp directory on disk, with its WAL). worker.ts is bundled with
 * esbuild (workspace packages resolved to their sources) into bench/.wrangler/ (git-ignored).
 * Node times each `/run` request end to end; a Queues run ends when its consumer has received,
 * checked and acked every message.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import type { BenchConfig } from '../lib/config.js';
import { chosenRows, runTable, type Sample, type TableSpec } from '../lib/harness.js';
import { machine, type SuiteResult } from '../lib/report.js';
import { bundleWorker } from './workerd.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = join(root, '.wrangler', 'bench', 'worker.js');

export interface Variant {
  readonly variant: string;
  readonly shards?: number;
  readonly callers?: number;
}

/** The table's rows: what `/run` is asked for each (also the rows `ab:do` can run). */
export const VARIANTS: Record<string, Variant> = {
  'raw-one-call': { variant: 'raw-one-call' },
  'raw-two-calls': { variant: 'raw-two-calls' },
  'raw-rpc': { variant: 'raw-rpc' },
  'raw-rpc-1x8': { variant: 'raw-rpc', shards: 1, callers: 8 },
  'raw-rpc-8x8': { variant: 'raw-rpc', shards: 8, callers: 8 },
  engine: { variant: 'engine', shards: 1 },
  'engine-reads': { variant: 'engine-reads-together', shards: 1 },
  'engine-batch': { variant: 'engine-batch', shards: 1 },
  'engine-1x8': { variant: 'engine', shards: 1, callers: 8 },
  'engine-1x8-shared': { variant: 'engine-shared', shards: 1, callers: 8 },
  'engine-2x8': { variant: 'engine', shards: 2, callers: 8 },
  'engine-4x8': { variant: 'engine', shards: 4, callers: 8 },
  'engine-8x8': { variant: 'engine', shards: 8, callers: 8 },
  'engine-cm': { variant: 'engine-claim-messages', shards: 1 },
  'engine-batch-cm': { variant: 'engine-batch-claim-messages', shards: 1 },
  'engine-1x8-cm': { variant: 'engine-claim-messages', shards: 1, callers: 8 },
  'engine-8x8-cm': { variant: 'engine-claim-messages', shards: 8, callers: 8 },
  queues: { variant: 'queues' },
};

function table(n: number): TableSpec {
  return {
    id: 'do-cycle',
    title: 'store → claim → delete cycle (Durable Objects on SQLite, workerd)',
    unit: 'msgs/s',
    workload: `${n} messages (meta + 10 KiB): each stored, then claimed 50 at a time, its contents read, and deleted with its lease (Queues: sent, then consumed and acked in batches of up to 100). A fresh queue per run.`,
    baselines: [
      { key: 'limit', label: 'vs limit', row: 'raw-one-call' },
      { key: 'rpc', label: 'vs raw SQL over RPC', row: 'raw-rpc' },
      { key: 'queues', label: 'vs Queues', row: 'queues' },
    ],
    rows: [
      {
        id: 'raw-one-call',
        label: 'raw SQL, the same statements inside one object in one call — **limit**',
      },
      {
        id: 'raw-two-calls',
        label:
          'raw SQL, the same statements in two calls: every store committed, then the whole drain',
      },
      {
        id: 'raw-rpc',
        label: 'raw SQL, one RPC per store / claim(50) / read / delete(50), each a commit',
      },
      {
        id: 'raw-rpc-1x8',
        label: 'raw SQL over RPC, 1 shard, 8 concurrent callers',
      },
      {
        id: 'raw-rpc-8x8',
        label: 'raw SQL over RPC, 8 shards, 8 concurrent callers (each drains its own shard first)',
      },
      {
        id: 'engine',
        label: '**engine**, 1 shard: `storeMessage` each, claimDue(50) + read + deleteMessages',
      },
      {
        id: 'engine-reads',
        label: '**engine**, 1 shard, the 50 `getMessageContents` issued together (one batch RPC)',
      },
      { id: 'engine-batch', label: '**engine**, 1 shard, stored with `storeMessages` ×50' },
      { id: 'engine-1x8', label: '**engine**, 1 shard, 8 concurrent callers, a session each' },
      {
        id: 'engine-1x8-shared',
        label:
          '**engine**, 1 shard, 8 concurrent callers sharing one session (stores and reads batched)',
      },
      { id: 'engine-2x8', label: '**engine**, 2 shards, 8 concurrent callers' },
      { id: 'engine-4x8', label: '**engine**, 4 shards, 8 concurrent callers' },
      { id: 'engine-8x8', label: '**engine**, 8 shards, 8 concurrent callers' },
      {
        id: 'engine-cm',
        label:
          '**engine**, as `engine` but drained with `claimDueMessages` (claim + contents, one call)',
      },
      {
        id: 'engine-batch-cm',
        label: '**engine**, as `engine-batch`, drained with `claimDueMessages`',
      },
      {
        id: 'engine-1x8-cm',
        label: '**engine**, as `engine-1x8`, drained with `claimDueMessages`',
      },
      {
        id: 'engine-8x8-cm',
        label: '**engine**, as `engine-8x8`, drained with `claimDueMessages`',
      },
      { id: 'queues', label: 'Cloudflare Queues: `send` each (v8), consume + `ackAll` per batch' },
    ],
  };
}

export async function call<T>(mf: Miniflare, path: string, body?: unknown): Promise<T> {
  const response = await mf.dispatchFetch(`http://localhost${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await response.json()) as { ok?: T; error?: string };
  if (answer.error !== undefined) throw new Error(answer.error);
  return answer.ok as T;
}

const newTag = () => crypto.getRandomValues(new Uint32Array(1))[0]!;

export async function runOnce(mf: Miniflare, row: string, n: number): Promise<Sample> {
  const variant = VARIANTS[row]!;
  const tag = newTag();
  const start = performance.now();
  let check = await call<string>(mf, '/run', { ...variant, n, tag });
  if (variant.variant === 'queues') {
    // Bounded wait for the consumer (it receives batches as they fill or time out).
    const deadline = performance.now() + 120_000;
    for (;;) {
      const status = await call<string | null>(mf, `/queue-status?tag=${tag}&n=${n}`);
      if (status !== null) {
        check = status;
        break;
      }
      if (performance.now() > deadline) throw new Error('Queues consumer did not finish in 120 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  return { ops: n, ms: performance.now() - start, check };
}

/**
 * Bundles worker.ts and starts it in workerd (no persist directory). `inspectorPort` opens V8's
 * inspector for a CPU profile (profile.ts).
 */
export async function startBenchWorker(inspectorPort?: number): Promise<Miniflare> {
  await bundleBenchWorker(bundle);
  return startBundle(bundle, inspectorPort);
}

/** Bundles worker.ts, from the sources as they are now, into `outfile`. */
export function bundleBenchWorker(outfile: string): Promise<void> {
  return bundleWorker(fileURLToPath(new URL('./worker.ts', import.meta.url)), outfile);
}

/** Starts an already bundled bench Worker (`scriptPath`) in a workerd of its own. */
export async function startBundle(scriptPath: string, inspectorPort?: number): Promise<Miniflare> {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      cf: false,
      modules: true,
      scriptPath,
      compatibilityDate: '2026-04-01',
      ...(inspectorPort === undefined ? {} : { inspectorPort }),
      durableObjects: {
        QUEUE: { className: 'QueueShard', useSQLite: true },
        RAW: { className: 'RawShard', useSQLite: true },
        TALLY: { className: 'QueueTally', useSQLite: true },
      },
      queueProducers: { OUTBOX: { queueName: 'bench-outbox' } },
      queueConsumers: { 'bench-outbox': { maxBatchSize: 100, maxBatchTimeout: 0 } },
    }),
  );
  await mf.ready;
  return mf;
}

export async function runDurableObjects(config: BenchConfig): Promise<SuiteResult> {
  const mf = await startBenchWorker();
  try {
    const spec = chosenRows(table(config.doN), config.rows);
    const result = await runTable(
      spec,
      (row, { warmup }) => runOnce(mf, row, warmup ? Math.min(config.doN, 100) : config.doN),
      { rounds: config.rounds, log: config.log },
    );
    return {
      suite: 'durable-objects',
      title: 'Durable Objects engine in workerd (miniflare)',
      date: new Date().toISOString(),
      machine: machine(
        'miniflare 5.20261102.0-beta (workerd 1.20261102.1), SQLite of each object in a temp directory on disk',
      ),
      sizes: { n: config.doN },
      tables: [result],
      notes: [
        'Locally every object runs in one workerd process on a 2-core machine: more shards add no CPU, so the shard rows show the cost of fan-out, not the gain of spreading load over machines.',
        'Queues in miniflare: max_batch_size 100, max_batch_timeout 0; bodies sent with `contentType: "v8"` so bytes stay bytes.',
      ],
    };
  } finally {
    await mf.dispose();
  }
}
