/**
 * Results on disk: one JSON file per suite in bench/results/ (git-ignored), and the markdown
 * table bench/results/latest.md rendered from every suite's JSON present there (committed).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TableResult } from './harness.js';

/** One memory measurement (bytes). */
export interface MemoryRow {
  readonly id: string;
  readonly label: string;
  readonly messages: number;
  /** Sum of all stored contents. */
  readonly contentsBytes: number;
  /** Highest heap (+ array buffers) above the pre-call level seen during the call. */
  readonly peakBytes: number;
  /** Still held after the call and a full GC, with the result kept alive. */
  readonly retainedBytes: number;
  /** Garbage collections seen during the call (0 = the peak is the whole allocation). */
  readonly gcs: number;
  /** What was verified. */
  readonly check: string;
  /** A control row (it must load contents, proving the measurement sees them). */
  readonly control?: boolean;
}

export interface MemoryTable {
  readonly id: string;
  readonly title: string;
  readonly method: string;
  readonly rows: MemoryRow[];
}

export interface SuiteResult {
  readonly suite: string;
  readonly title: string;
  readonly date: string;
  readonly machine: string;
  readonly sizes: Readonly<Record<string, number>>;
  readonly tables: TableResult[];
  readonly memory?: MemoryTable[];
  readonly notes?: string[];
}

export const resultsDir = fileURLToPath(new URL('../../results/', import.meta.url));

/** A one-line description of this machine and its load when the suite started. */
export function machine(extra = ''): string {
  const load = os
    .loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');
  return `${os.cpus().length} cores, Node ${process.version}${extra ? `, ${extra}` : ''}, load ${load}`;
}

const fmtRate = (n: number) =>
  n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3);
const fmtRatio = (n: number | undefined) => (n === undefined ? '' : `${n.toFixed(2)}×`);
const fmtBytes = (n: number) => {
  const abs = Math.abs(n);
  if (abs >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (abs >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
};

/** Markdown of one suite. */
export function renderSuite(result: SuiteResult): string {
  const out: string[] = [`## ${result.title}`, ''];
  out.push(`${result.date} · ${result.machine}`);
  out.push('');
  for (const table of result.tables) {
    out.push(`### ${table.title}`, '', `${table.workload} Median of ${table.rounds} rounds.`, '');
    const columns = table.baselines.map((b) => b.label);
    out.push(`| variant | ${table.unit} | min–max | ${columns.join(' | ')} |`);
    out.push(`|---|---:|---:|${columns.map(() => '---:|').join('')}`);
    for (const row of table.rows) {
      const ratios = table.baselines.map((b) => fmtRatio(row.ratios[b.key]));
      out.push(
        `| ${row.label} | ${fmtRate(row.median)} | ${fmtRate(row.min)}–${fmtRate(row.max)} | ${ratios.join(' | ')} |`,
      );
    }
    out.push('');
  }
  for (const table of result.memory ?? []) {
    out.push(`### ${table.title}`, '', table.method, '');
    out.push(
      '| call | messages | contents stored | peak during call | retained after GC | peak / contents | GCs in call |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const row of table.rows) {
      out.push(
        `| ${row.label} | ${row.messages.toLocaleString('en-US')} | ${fmtBytes(row.contentsBytes)} | ${fmtBytes(row.peakBytes)} | ${fmtBytes(row.retainedBytes)} | ${((100 * row.peakBytes) / row.contentsBytes).toFixed(1)} % | ${row.gcs} |`,
      );
    }
    out.push('');
  }
  for (const note of result.notes ?? []) out.push(`- ${note}`);
  if (result.notes?.length) out.push('');
  return out.join('\n');
}

const ORDER = [
  'idb-chromium',
  'idb-firefox',
  'idb-webkit',
  'idb-node',
  'durable-objects',
  'do-delivery',
  'memory',
  'memory-chromium',
];

/** Writes `<suite>.json` and re-renders latest.md from every suite JSON in the directory. */
export async function writeSuite(result: SuiteResult, dir = resultsDir): Promise<void> {
  await writeFile(join(dir, `${result.suite}.json`), `${JSON.stringify(result, null, 2)}\n`);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  const suites: SuiteResult[] = [];
  for (const file of files) {
    suites.push(JSON.parse(await readFile(join(dir, file), 'utf8')) as SuiteResult);
  }
  suites.sort((a, b) => rank(a.suite) - rank(b.suite));
  const md = [
    '# mailspool benchmarks: latest results',
    '',
    'Written by `pnpm bench` (bench/src/main.ts) from the JSON files beside it; see bench/README.md',
    'for the method and what each row means. Ratios compare medians of the same run only.',
    '',
    ...suites.map(renderSuite),
  ].join('\n');
  await writeFile(join(dir, 'latest.md'), md);
}

function rank(suite: string): number {
  const n = ORDER.indexOf(suite);
  return n === -1 ? ORDER.length : n;
}
