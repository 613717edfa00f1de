/**
 * The measuring method shared by every suite (the bench method's (bench/README.md)): a warm-up round that is thrown
 * away, then several rounds in which every row runs once, interleaved (each round starts one row
 * later, so drift from other jobs on the machine hits every row alike); per row the median of the
 * rounds; ratios are medians divided by a baseline's median from the same run.
 *
 * A row's run must check its own result (counts, bytes) and throw when it is wrong: a failing
 * check fails the whole suite, so a fast wrong answer can never be reported.
 */

/** One timed run of one row. */
export interface Sample {
  /** Operations done (messages stored or drained, calls made). */
  readonly ops: number;
  /** Wall time of the timed part only (setup and checks are excluded). */
  readonly ms: number;
  /** What was verified, e.g. `2000 ids, 20480000 bytes`. */
  readonly check: string;
  /** Optional numbers the row wants to show (e.g. transactions per message). */
  readonly extra?: Readonly<Record<string, number>>;
}

/** A row of a table. */
export interface RowSpec {
  readonly id: string;
  readonly label: string;
  /** Per-column baseline override: column key → row id (e.g. the limit of the same durability). */
  readonly against?: Readonly<Record<string, string>>;
}

/** A ratio column: every row's median divided by this row's median. */
export interface BaselineSpec {
  readonly key: string;
  readonly label: string;
  /** The row id used unless a row overrides it in `against`. */
  readonly row: string;
}

export interface TableSpec {
  readonly id: string;
  readonly title: string;
  /** Unit of the rate, e.g. `msgs/s`. */
  readonly unit: string;
  /** What one run does, in one line (sizes included). */
  readonly workload: string;
  readonly baselines: readonly BaselineSpec[];
  readonly rows: readonly RowSpec[];
}

export interface RowResult {
  readonly id: string;
  readonly label: string;
  /** ops/s of each measured round, in round order. */
  readonly rates: number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Column key → median ratio to that column's baseline (absent when the row is not comparable). */
  readonly ratios: Record<string, number>;
  readonly checks: string[];
  readonly extra?: Readonly<Record<string, number>>;
}

export interface TableResult {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly workload: string;
  readonly rounds: number;
  readonly baselines: readonly BaselineSpec[];
  readonly rows: RowResult[];
}

/** The table with only the `chosen` rows (a ratio whose baseline row is not chosen is left out). */
export function chosenRows(table: TableSpec, chosen: ReadonlySet<string> | null): TableSpec {
  return chosen === null
    ? table
    : { ...table, rows: table.rows.filter((row) => chosen.has(row.id)) };
}

/** The median of a non-empty list (mean of the middle two for an even length). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Throws `Error(message)` unless `ok`: the verification primitive of every benchmark. */
export function verify(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(`verification failed: ${message}`);
}

export interface RunOptions {
  /** Measured rounds (after the warm-up). */
  readonly rounds: number;
  /** Whether to run a discarded warm-up round first. Default true. */
  readonly warmup?: boolean;
  /** Progress lines go here. */
  readonly log?: (line: string) => void;
}

/**
 * Runs `table`: `exec(rowId, { warmup, round })` does one run of one row and returns its sample
 * (throwing if its own check fails). Rejects on the first failure, naming the row.
 */
export async function runTable(
  table: TableSpec,
  exec: (rowId: string, context: { warmup: boolean; round: number }) => Promise<Sample>,
  options: RunOptions,
): Promise<TableResult> {
  const log = options.log ?? (() => {});
  const rows = table.rows;
  const samples = new Map<string, Sample[]>(rows.map((row) => [row.id, []]));
  const runOne = async (row: RowSpec, warmup: boolean, round: number) => {
    let sample: Sample;
    try {
      sample = await exec(row.id, { warmup, round });
    } catch (error) {
      throw new Error(`${table.id} / ${row.id}: ${(error as Error)?.message ?? String(error)}`, {
        cause: error,
      });
    }
    if (!(sample.ms > 0) || !(sample.ops > 0)) {
      throw new Error(
        `${table.id} / ${row.id}: empty sample (${sample.ops} ops in ${sample.ms} ms)`,
      );
    }
    return sample;
  };
  if (options.warmup ?? true) {
    for (const row of rows) await runOne(row, true, -1);
    log(`${table.id}: warm-up done`);
  }
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the order each round so no row always runs first (or right after a heavy one).
    for (let k = 0; k < rows.length; k++) {
      const row = rows[(k + round) % rows.length]!;
      const sample = await runOne(row, false, round);
      samples.get(row.id)!.push(sample);
      log(
        `${table.id} r${round} ${row.id}: ${rate(sample).toFixed(0)} ${table.unit} (${sample.check})`,
      );
    }
  }
  const medians = new Map(rows.map((row) => [row.id, median(samples.get(row.id)!.map(rate))]));
  return {
    id: table.id,
    title: table.title,
    unit: table.unit,
    workload: table.workload,
    rounds: options.rounds,
    baselines: table.baselines,
    rows: rows.map((row) => {
      const list = samples.get(row.id)!;
      const rates = list.map(rate);
      const ratios: Record<string, number> = {};
      for (const column of table.baselines) {
        const base = medians.get(row.against?.[column.key] ?? column.row);
        if (base !== undefined && base > 0) ratios[column.key] = medians.get(row.id)! / base;
      }
      const last = list[list.length - 1];
      return {
        id: row.id,
        label: row.label,
        rates,
        median: medians.get(row.id)!,
        min: Math.min(...rates),
        max: Math.max(...rates),
        ratios,
        checks: [...new Set(list.map((s) => s.check))],
        ...(last?.extra ? { extra: last.extra } : {}),
      };
    }),
  };
}

/** ops per second of a sample. */
export function rate(sample: Sample): number {
  return sample.ops / (sample.ms / 1000);
}
