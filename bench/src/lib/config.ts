/**
 * Run sizes. `BENCH_SIZE` is the number of messages one run stores (default 2000, as in
 * bench/README.md; 20 in the smoke run); the IndexedDB drain table empties a queue of
 * `BENCH_DRAIN_SIZE` (default 10,000, as issue 8 asks; 20 in the smoke run); stats() counts a queue five times that size (10,000
 * by default); the memory suite holds `BENCH_MEMORY_SIZE` messages (default 100,000).
 * Durable Objects runs use `BENCH_DO_SIZE` messages (default half of BENCH_SIZE: one message per
 * RPC commit is slow in workerd, and the machine is shared); relay delivery runs use
 * `BENCH_DELIVERY_SIZE` mails (default half of BENCH_DO_SIZE). `BENCH_ROUNDS` sets the measured rounds (default 5; 1 in the smoke run).
 */
export interface BenchConfig {
  readonly smoke: boolean;
  readonly n: number;
  /**
   * Messages in the queue the IndexedDB drain table empties (`BENCH_DRAIN_SIZE`, default 10,000
   * as the issue asks; 20 in the smoke run). Only the drain table uses it.
   */
  readonly drainN: number;
  /**
   * Measured rounds of the IndexedDB drain table (`BENCH_DRAIN_ROUNDS`, default BENCH_ROUNDS
   * but at most 3: a round of its 8 rows at 10,000 messages takes 4–6 minutes in Chromium here).
   */
  readonly drainRounds: number;
  readonly statsN: number;
  readonly statsCalls: number;
  readonly memoryN: number;
  /** Messages per Durable Objects run (`BENCH_DO_SIZE`, default half of BENCH_SIZE). */
  readonly doN: number;
  /**
   * Mails per relay delivery run (`BENCH_DELIVERY_SIZE`, default half of BENCH_DO_SIZE: 500; 20 in
   * the smoke run). Only the `do-delivery` suite uses it.
   */
  readonly deliveryN: number;
  /**
   * Bulk mails queued ahead of the high-priority one in the `do-delivery-priority` table
   * (`BENCH_PRIORITY_BULK`, default 10,000; 50 in the smoke run).
   */
  readonly priorityBulkN: number;
  readonly rounds: number;
  /**
   * Only these tables of a suite (`BENCH_TABLES`, comma-separated table ids such as `drain`);
   * `null`: all. A run with a choice is partial: printed, never written to bench/results/.
   * The IndexedDB suites honour it.
   */
  readonly tables: ReadonlySet<string> | null;
  /**
   * Only these rows of the chosen tables (`BENCH_ROWS`, comma-separated row ids such as
   * `engine-claim-messages-relaxed,dexie`; name a ratio's baseline row to get that ratio);
   * `null`: all. Partial like `tables`. The IndexedDB suites and `durable-objects` honour it.
   */
  readonly rows: ReadonlySet<string> | null;
  /** Where progress lines go. */
  readonly log: (line: string) => void;
}

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function benchConfig(smoke: boolean): BenchConfig {
  const n = positive('BENCH_SIZE', smoke ? 20 : 2000);
  const rounds = positive('BENCH_ROUNDS', smoke ? 1 : 5);
  const doN = positive('BENCH_DO_SIZE', Math.max(1, Math.floor(n / 2)));
  return {
    smoke,
    n,
    drainN: positive('BENCH_DRAIN_SIZE', smoke ? 20 : 10_000),
    drainRounds: positive('BENCH_DRAIN_ROUNDS', Math.min(rounds, 3)),
    statsN: n * 5,
    statsCalls: smoke ? 3 : 20,
    memoryN: positive('BENCH_MEMORY_SIZE', smoke ? 2000 : 100_000),
    doN,
    deliveryN: positive('BENCH_DELIVERY_SIZE', smoke ? 20 : Math.max(1, Math.floor(doN / 2))),
    priorityBulkN: positive('BENCH_PRIORITY_BULK', smoke ? 50 : 10_000),
    rounds,
    tables: tableChoice(process.env.BENCH_TABLES),
    rows: tableChoice(process.env.BENCH_ROWS),
    log: (line) => console.log(`  ${line}`),
  };
}

function tableChoice(raw: string | undefined): ReadonlySet<string> | null {
  if (raw === undefined || raw.trim() === '') return null;
  return new Set(
    raw
      .split(',')
      .map((id) => id.trim())
      .filter(Boolean),
  );
}
