/**
 * The IndexedDB tables in Node on fake-indexeddb 6.2.8 (an in-memory implementation of the
 * spec): a second table that shows the engine's CPU overhead, not the browser's disk costs.
 * bench/README.md: it is ~20× faster than Chromium and changes the ratios.
 */
import 'fake-indexeddb/auto';
import type { BenchConfig } from '../lib/config.js';
import type { TableResult } from '../lib/harness.js';
import { runTable } from '../lib/harness.js';
import { machine, type SuiteResult } from '../lib/report.js';
import { idbTables, runSize, tableRounds } from './tables.js';
import { idbRows, prepareStats, type StatsFixture, statsRows } from './workloads.js';

const newTag = () => crypto.getRandomValues(new Uint32Array(1))[0]!;

export async function runIdbNode(config: BenchConfig): Promise<SuiteResult> {
  const tables: TableResult[] = [];
  const specs = idbTables(config, false);
  let fixture: StatsFixture | undefined;
  try {
    for (const spec of specs) {
      let rows = idbRows[spec.id];
      if (spec.id === 'stats') {
        fixture = await prepareStats(config.statsN, newTag());
        const ready = fixture;
        rows = statsRows(() => ready);
      }
      const table = await runTable(
        spec,
        (row, { warmup }) => {
          const work = rows?.[row];
          if (!work) throw new Error(`no workload ${spec.id}/${row}`);
          const n = runSize(config, spec.id);
          return work(warmup ? Math.min(n, 50) : n, newTag());
        },
        { rounds: tableRounds(config, spec.id), log: config.log },
      );
      tables.push(table);
    }
  } finally {
    await fixture?.dispose();
  }
  return {
    suite: 'idb-node',
    title: 'IndexedDB engine in Node on fake-indexeddb 6.2.8',
    date: new Date().toISOString(),
    machine: machine('fake-indexeddb 6.2.8'),
    sizes: {
      n: config.n,
      drainN: config.drainN,
      statsN: config.statsN,
      statsCalls: config.statsCalls,
    },
    tables,
    notes: [
      'fake-indexeddb keeps everything in memory and has no durability: strict and relaxed rows do the same work here. It shows CPU overhead per call, not disk costs (bench/README.md).',
    ],
  };
}
