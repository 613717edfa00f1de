/**
 * Suite `do-delivery`: the relay Worker (apps/relay-worker) delivering a burst of mail from its
 * Durable Object shards to a real SMTP server, in workerd through miniflare's Node API (the same
 * miniflare as the `durable-objects` suite; SQLite in a temp directory).
 *
 * The Worker's own entry (apps/relay-worker/src/index.ts, `RelayShard` on SQLite) is bundled with
 * esbuild as worker.ts is, and started twice in one workerd process: `relay-4` with `SHARDS=4`
 * and `relay-1` with `SHARDS=1`, each with one tenant and the smarthost pointing at the bench's
 * SMTP receiver on 127.0.0.1 (smtp-receiver.ts). No Cloudflare Queues anywhere: each shard's
 * alarm relays its own due mail, at most 4 SMTP connections per shard.
 *
 * One run (row `delivery-<k>-shard(s)`), timed in Node:
 * 1. untimed: `n` mails made (mail.ts: 10 KiB text bodies, each marked with the run's tag and its
 *    index), the receiver's gate closed (connections are accepted, their greeting held);
 * 2. t0: the mails are POSTed to `/v1/messages` with the tenant's token, 8 requests at a time
 *    (each its own request and session, so each lands on a random shard); every answer must be
 *    202 with an id `s<shard>.…`, recorded per index;
 * 3. t1, the last answer: the gate opens; the shards' alarms (armed when their first mail was
 *    stored, their first connections waiting for the greeting) deliver everything;
 * 4. t2: the last mail's DATA ends at the receiver.
 *
 * The row's number is end to end, `n / (t2 - t0)`; the same runs also give the delivery phase
 * (`n / (t2 - t1)`) and the submission phase (`n / (t1 - t0)`) as two more tables with the same
 * row ids. Each run verifies (untimed): every mail received exactly once (no mail of another run
 * or of none), its bytes equal to what was submitted, its envelope as submitted, and the tenant's
 * queue empty afterwards (so nothing is left to arrive later). Per shard it reports how many mails
 * it delivered and when its last one arrived: how evenly the shards shared the work.
 *
 * Both rows reuse their tenant's shards from run to run (checked empty before each run): the relay
 * compares a request's token with every configured tenant's, so a fresh tenant per run would make
 * each submission pay for all the others; a relay's shards live long anyway, so warm, empty
 * shards are its usual state. The warm-up run creates them.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import type { BenchConfig } from '../lib/config.js';
import {
  median,
  type RowResult,
  runTable,
  type Sample,
  type TableResult,
  type TableSpec,
  verify,
} from '../lib/harness.js';
import { machine, type SuiteResult } from '../lib/report.js';
import { DeliveryTally, makeMail, RECIPIENTS, SENDER } from './mail.js';
import { PRIORITY_ROWS, runPriorityTable } from './priority.js';
import { type Receiver, startReceiver } from './smtp-receiver.js';
import { bundleWorker, cpuMs, ourWorkerd } from './workerd.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = join(root, '.wrangler', 'bench', 'relay-worker.js');
const relayEntry = fileURLToPath(
  new URL('../../../apps/relay-worker/src/index.ts', import.meta.url),
);

/** A row's Worker: its name (and route), its shards, and the limits it runs with. */
interface RelayRow {
  readonly worker: string;
  readonly shards: number;
  readonly limits: Readonly<Record<string, string>>;
}

/**
 * The relay as it ran before the limiter existed: no connection limit and no suspension, so no
 * limiter object is ever asked (apps/relay-worker/src/run-limits.ts).
 */
const NO_LIMITER = { SMARTHOST_MAX_CONNECTIONS: 'unlimited', SUSPEND_SECONDS: '0' };

/**
 * Each row's Worker. Row ids are stable (issue 12): keep them. The first two run without the
 * limiter, as they always did; `delivery-4-shards-limiter` is the same relay asking the
 * smarthost's limiter before every run (a limit of 16 connections, which 4 shards × 4 connections
 * never exceed, and the suspension on): its ratio to `delivery-4-shards` is the limiter's cost.
 */
const ROWS: Record<string, RelayRow> = {
  'delivery-4-shards': { worker: 'relay-4', shards: 4, limits: NO_LIMITER },
  'delivery-1-shard': { worker: 'relay-1', shards: 1, limits: NO_LIMITER },
  'delivery-4-shards-limiter': {
    worker: 'relay-4-limiter',
    shards: 4,
    limits: { SMARTHOST_MAX_CONNECTIONS: '16' },
  },
};
/** Submissions in flight at once. */
const SUBMITTERS = 8;
const TENANT = 'bench';
const TOKEN = 'bench-tenant-token-0123456789abcdef';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

const BASELINES = [
  { key: 'one', label: 'vs 1 shard', row: 'delivery-1-shard' },
  { key: 'limiter', label: 'vs no limiter', row: 'delivery-4-shards' },
];

function rowSpecs() {
  return [
    {
      id: 'delivery-4-shards',
      label:
        "**relay Worker, 4 shards**: each shard's alarm delivers its own mail, ≤ 4 SMTP connections each",
    },
    {
      id: 'delivery-1-shard',
      label: 'relay Worker, 1 shard (`SHARDS=1`): one alarm, ≤ 4 SMTP connections — baseline',
    },
    {
      id: 'delivery-4-shards-limiter',
      label:
        "relay Worker, 4 shards, **with the limiter**: every relay run leases its connections from the smarthost's limiter object (`SMARTHOST_MAX_CONNECTIONS=16`, not binding) and reports back",
    },
  ];
}

function table(n: number): TableSpec {
  return {
    id: 'do-delivery',
    title: 'relay delivery, end to end: submit → every mail received over SMTP (workerd)',
    unit: 'mails/s',
    workload: `${n} mails (3 recipients, 10 KiB text body) POSTed to the relay Worker's \`/v1/messages\`, ${SUBMITTERS} at a time, while the SMTP receiver holds its greeting; then the gate opens and the shards' alarms deliver them to the receiver on 127.0.0.1. Timed from the first POST to the last mail received; each mail checked received once, byte for byte, and the queue empty after.`,
    baselines: BASELINES,
    rows: rowSpecs(),
  };
}

/** The timings of one measured run, kept for the phase tables and the notes. */
interface RunRecord {
  readonly submitMs: number;
  readonly deliverMs: number;
  readonly perShard: number[];
  /** Each shard's last mail, ms after the gate opened. */
  readonly shardDoneMs: number[];
  readonly workerdCpuMs: number;
  readonly nodeCpuMs: number;
  readonly connections: number;
  readonly peakConnections: number;
}

const nodeCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** What workerd logged: problem lines (a deferral, a bounce, an error) fail the current run. */
class RuntimeLog {
  readonly lines: string[] = [];
  problem: string | undefined;
  count = 0;

  add(level: string, message: string): void {
    this.count++;
    this.lines.push(`[${level}] ${message}`);
    if (this.lines.length > 40) this.lines.shift();
    const bad =
      level === 'error' ||
      level === 'warn' ||
      /^mailspool\[[^\]]*\]: (deferred|bounced|bounce-dropped|error|lease-lost) /.test(message);
    if (bad && this.problem === undefined) this.problem = `workerd logged: ${message}`;
  }
}

async function startRelays(
  receiver: Receiver,
  priorityReceiver: Receiver,
  log: RuntimeLog,
): Promise<Miniflare> {
  await bundleWorker(relayEntry, bundle);
  // The priority table's Workers: production limits, a receiver of their own.
  const workers = [
    ...Object.values(ROWS).map((row) => ({ ...row, port: receiver.port })),
    ...Object.values(PRIORITY_ROWS).map((worker) => ({
      worker,
      shards: 4,
      limits: {},
      port: priorityReceiver.port,
    })),
  ];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      cf: false,
      handleStructuredLogs: ({ level, message }) => log.add(level, message),
      workers: workers.map(({ worker, shards, limits, port }) => ({
        name: worker,
        modules: true,
        scriptPath: bundle,
        // As apps/relay-worker/wrangler.jsonc.
        compatibilityDate: '2026-04-01',
        routes: [`${worker}.bench/*`],
        durableObjects: {
          QUEUE_SHARD: { className: 'RelayShard', useSQLite: true },
          LIMITER: { className: 'RelayLimiter', useSQLite: true },
        },
        bindings: {
          SHARDS: String(shards),
          SMARTHOST_HOST: '127.0.0.1',
          SMARTHOST_PORT: String(port),
          SMARTHOST_TLS: 'off',
          HOSTNAME: 'relay.bench.invalid',
          TENANT_TOKENS: JSON.stringify({ [TENANT]: TOKEN }),
          TENANT_SENDERS: JSON.stringify({ [TENANT]: ['*'] }),
          ADMIN_TOKEN,
          ...limits,
        },
      })),
    }),
  );
  await mf.ready;
  return mf;
}

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

async function queued(mf: Miniflare, worker: string): Promise<number> {
  const response = await mf.dispatchFetch(
    `http://${worker}.bench/admin/tenants/${TENANT}/messages`,
    { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
  );
  const body = (await response.json()) as { total?: number };
  verify(
    response.status === 200 && typeof body.total === 'number',
    `admin list: ${response.status}`,
  );
  return body.total;
}

/** Polls until the tenant's queue is empty (deletes follow the receiver's 250 by a moment). */
async function drained(mf: Miniflare, worker: string, log: RuntimeLog): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const left = await queued(mf, worker);
    if (left === 0) return;
    verify(log.problem === undefined, log.problem ?? '');
    verify(performance.now() < deadline, `${left} messages still queued 30 s after delivery`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function runOnce(
  mf: Miniflare,
  receiver: Receiver,
  log: RuntimeLog,
  row: string,
  n: number,
): Promise<{ sample: Sample; record: RunRecord }> {
  const { shards, worker } = ROWS[row]!;
  const url = `http://${worker}.bench/v1/messages`;
  const tag = Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString('hex');
  const mails = Array.from({ length: n }, (_, i) => makeMail(tag, i));
  const bodies = mails.map((raw) =>
    JSON.stringify({ from: SENDER, to: RECIPIENTS, raw: base64(raw) }),
  );
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const tally = new DeliveryTally(tag, mails, shards);

  verify(receiver.strays.length === 0, `receiver: ${receiver.strays.join('; ')}`);
  verify(log.problem === undefined, log.problem ?? '');
  verify((await queued(mf, worker)) === 0, 'the queue is not empty before the run');
  receiver.sink = (mail) => tally.accept(mail);
  receiver.close();
  receiver.resetStats();
  const pids = ourWorkerd();
  const cpu0 = cpuMs(pids);
  const node0 = nodeCpuMs();

  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(SUBMITTERS, n) }, async () => {
      while (next < n) {
        const index = next++;
        const response = await mf.dispatchFetch(url, {
          method: 'POST',
          headers,
          body: bodies[index]!,
        });
        const answer = (await response.json()) as { id?: string; error?: unknown };
        verify(
          response.status === 202 && typeof answer.id === 'string',
          `POST of mail ${index}: ${response.status} ${JSON.stringify(answer)}`,
        );
        tally.stored(index, answer.id);
      }
    }),
  );
  const t1 = performance.now();
  receiver.open();
  await tally
    .done(60_000 + 100 * n, () => log.problem)
    .catch((error: Error) => {
      throw new Error(
        `${error.message}; workerd's last lines:\n${log.lines.slice(-10).join('\n')}`,
      );
    });
  const workerdCpu = cpuMs(pids) - cpu0;
  const nodeCpu = nodeCpuMs() - node0;
  const { connections, peak } = receiver.stats;

  // Untimed checks: every mail once and byte for byte, then nothing left to deliver.
  const check = tally.check();
  await drained(mf, worker, log);
  verify(tally.received === n && tally.problems.length === 0, 'mail arrived after the last one');
  receiver.sink = undefined;

  const t2 = check.doneAt;
  const record: RunRecord = {
    submitMs: t1 - t0,
    deliverMs: t2 - t1,
    perShard: check.perShard,
    shardDoneMs: check.lastAt.map((at) => at - t1),
    workerdCpuMs: workerdCpu,
    nodeCpuMs: nodeCpu,
    connections,
    peakConnections: peak,
  };
  const seconds = (ms: number) => (Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2));
  return {
    sample: {
      ops: n,
      ms: t2 - t0,
      check: `${n} mails once, ${check.bytes} bytes equal, queue empty; per shard ${check.perShard.join('/')}, done at ${record.shardDoneMs.map(seconds).join('/')} s after the gate; submit ${seconds(record.submitMs)} s + deliver ${seconds(record.deliverMs)} s; ${connections} SMTP connections (≤ ${peak} open); workerd CPU ${Math.round(workerdCpu)} ms`,
      extra: {
        submitMs: record.submitMs,
        deliverMs: record.deliverMs,
        workerdCpuMsPerMail: workerdCpu / n,
      },
    },
    record,
  };
}

/** A table with `spec`'s rows from per-round rates computed by `rateOf` (same runs, same rounds). */
function derivedTable(
  spec: TableSpec,
  rounds: number,
  records: ReadonlyMap<string, RunRecord[]>,
  n: number,
  rateOf: (record: RunRecord) => number,
): TableResult {
  const rates = new Map(spec.rows.map((row) => [row.id, (records.get(row.id) ?? []).map(rateOf)]));
  const medians = new Map([...rates].map(([id, list]) => [id, median(list)]));
  const rows: RowResult[] = spec.rows.map((row) => {
    const list = rates.get(row.id)!;
    const ratios: Record<string, number> = {};
    for (const column of spec.baselines) {
      const base = medians.get(row.against?.[column.key] ?? column.row);
      if (base !== undefined && base > 0) ratios[column.key] = medians.get(row.id)! / base;
    }
    return {
      id: row.id,
      label: row.label,
      rates: list,
      median: medians.get(row.id)!,
      min: Math.min(...list),
      max: Math.max(...list),
      ratios,
      checks: [`${n} mails per run (the runs of the end-to-end table)`],
    };
  });
  return { ...spec, rounds, rows };
}

const pct = (x: number) => `${Math.round(100 * x)} %`;

/** Lines for the notes: how evenly the shards shared the work, and where the CPU went. */
function evenness(row: string, list: readonly RunRecord[], n: number): string {
  const { shards } = ROWS[row]!;
  const shares = list.flatMap((r) => r.perShard.map((count) => count / (n / shards)));
  // Spread of the shards' finishing times, as a share of the delivery phase.
  const spreads = list.map((r) => {
    const done = r.shardDoneMs.filter((ms) => !Number.isNaN(ms));
    return (Math.max(...done) - Math.min(...done)) / r.deliverMs;
  });
  const cpu = list.map((r) => r.workerdCpuMs / (r.submitMs + r.deliverMs));
  const cpuPerMail = list.map((r) => r.workerdCpuMs / n);
  const nodeCpu = list.map((r) => r.nodeCpuMs / (r.submitMs + r.deliverMs));
  const conns = list.map((r) => r.peakConnections);
  const cpuText = Number.isNaN(median(cpu))
    ? ''
    : ` workerd CPU ${median(cpuPerMail).toFixed(2)} ms per mail, busy ${pct(median(cpu))} of one core over the run; the Node process (submitter + receiver) ${pct(median(nodeCpu))}.`;
  const split =
    shards === 1
      ? ''
      : ` Mails per shard ${pct(Math.min(...shares))}–${pct(Math.max(...shares))} of an even share over all runs (placement is random per submission); the shards finished within ${pct(median(spreads))} of the delivery phase of each other (median).`;
  return `\`${row}\`:${split} At most ${Math.max(...conns)} SMTP connections open at once.${cpuText}`;
}

export async function runDelivery(config: BenchConfig): Promise<SuiteResult> {
  const log = new RuntimeLog();
  const receiver = await startReceiver();
  const priorityReceiver = await startReceiver();
  let mf: Miniflare | undefined;
  try {
    mf = await startRelays(receiver, priorityReceiver, log);
    const relays = mf;
    const n = config.deliveryN;
    const records = new Map<string, RunRecord[]>(Object.keys(ROWS).map((row) => [row, []]));
    const spec = table(n);
    const result = await runTable(
      spec,
      async (row, { warmup }) => {
        const { sample, record } = await runOnce(
          relays,
          receiver,
          log,
          row,
          warmup ? Math.min(n, 100) : n,
        );
        if (!warmup) records.get(row)!.push(record);
        return sample;
      },
      { rounds: config.rounds, log: config.log },
    );
    verify(receiver.strays.length === 0, `receiver: ${receiver.strays.join('; ')}`);
    // After the delivery table, not interleaved with it: its backlog's connections wait at the
    // greeting between its runs, which must not outlast the relay's greeting timeout.
    const priority = await runPriorityTable(
      relays,
      priorityReceiver,
      () => log.problem,
      { token: TOKEN },
      config,
    );
    const deliverSpec: TableSpec = {
      id: 'do-delivery-smtp',
      title: 'relay delivery phase: gate open → every mail received (same runs)',
      unit: 'mails/s',
      workload: `The runs above, timed from the moment the receiver greets (all ${n} mails queued, the first connections waiting) to the last mail received.`,
      baselines: BASELINES,
      rows: rowSpecs(),
    };
    const submitSpec: TableSpec = {
      id: 'do-delivery-submit',
      title: 'relay submission phase: first POST → last 202 (same runs)',
      unit: 'mails/s',
      workload: `The runs above, timed from the first \`POST /v1/messages\` to the last answer (${SUBMITTERS} in flight; nothing delivered meanwhile, the receiver holding its greeting).`,
      baselines: BASELINES,
      rows: rowSpecs(),
    };
    return {
      suite: 'do-delivery',
      title: 'Relay Worker delivery from Durable Object shards in workerd (miniflare)',
      date: new Date().toISOString(),
      machine: machine(
        'miniflare 5.20261102.0-beta (workerd 1.20261102.1), SQLite of each object in a temp directory on disk',
      ),
      sizes: { n, priorityBulk: config.priorityBulkN },
      tables: [
        result,
        derivedTable(deliverSpec, config.rounds, records, n, (r) => n / (r.deliverMs / 1000)),
        derivedTable(submitSpec, config.rounds, records, n, (r) => n / (r.submitMs / 1000)),
        priority,
      ],
      notes: [
        'All shards of both Workers run in one workerd process on this 2-core machine, beside the Node process that submits and receives: 4 shards bring 4 alarms and up to 16 SMTP connections instead of 4, but no more CPU. So `vs 1 shard` measures what the extra parallel connections and alarms buy (SMTP round trips overlapped) against the cost of the fan-out, not the gain of spreading shards over machines, as in production.',
        "The smarthost is smtp-server on 127.0.0.1, answering every command at once (no disk, no DNS, no greylisting): the SMTP time here is mostly the relay's own. A remote MTA adds tens to hundreds of ms per transaction, and waiting is what more connections per shard and more shards overlap.",
        "`delivery-4-shards-limiter` is `delivery-4-shards` with the smarthost's limiter: before each relay run of up to 10 mails a shard leases its connections from one limiter Durable Object (shared by all shards) and releases them when the run's connections are closed, QUIT included. Its `vs no limiter` ratio is the limiter's cost; with a limit that does not bind (16), what it costs is two RPCs per run and waiting for QUIT before the next run.",
        '`do-delivery-priority`: the high mail waits for the runs already holding the 4 connections (up to 10 mails each) to finish; then the limiter gives the next free connection to its shard (the one with the most urgent due mail), and the shard claims it first.',
        ...Object.keys(ROWS).map((row) => evenness(row, records.get(row)!, n)),
      ],
    };
  } finally {
    await mf?.dispose();
    await receiver.stop();
    await priorityReceiver.stop();
  }
}
