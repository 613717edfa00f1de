/**
 * `storeMessage` one at a time and the drain in Debian's Firefox ESR and WebKitGTK (suites
 * `idb-firefox`, `idb-webkit`): the Chromium tables' rows for the engine and raw idb only, with the
 * same row ids, on the same page (page.ts, served by chromium.ts's server), driven by
 * test-support's tabs.js. Each sample is timed inside the page, as in Chromium. Firefox runs on a
 * fresh on-disk profile; WebKitGTK under WebDriver keeps a session's storage in memory (see the
 * README).
 */
import type { OtherBrowser } from '@mailspool/test-support/browsers';
import { launchTabs } from '@mailspool/test-support/tabs';
import type { BenchConfig } from '../lib/config.js';
import { runTable, type Sample, type TableResult, type TableSpec } from '../lib/harness.js';
import { machine, type SuiteResult } from '../lib/report.js';
import { startServer } from './chromium.js';
import { idbTables, runSize, tableRounds } from './tables.js';

/** The rows measured outside Chromium: the engine against raw idb, per table. */
const ROWS: Readonly<Record<string, readonly string[]>> = {
  'enqueue-one': ['raw-strict', 'engine-strict', 'raw-relaxed', 'engine-relaxed'],
  drain: ['raw-strict', 'engine-strict', 'engine-concurrent-strict'],
};

function tables(config: BenchConfig): TableSpec[] {
  return idbTables(config, false)
    .filter((spec) => ROWS[spec.id])
    .map((spec) => {
      const rows = spec.rows.filter((row) => ROWS[spec.id]!.includes(row.id));
      const ids = new Set(rows.map((row) => row.id));
      return { ...spec, rows, baselines: spec.baselines.filter((b) => ids.has(b.row)) };
    });
}

const newTag = () => crypto.getRandomValues(new Uint32Array(1))[0]!;

const TITLES: Record<OtherBrowser, string> = { firefox: 'Firefox ESR', webkit: 'WebKitGTK' };

export async function runIdbOther(name: OtherBrowser, config: BenchConfig): Promise<SuiteResult> {
  const server = await startServer();
  const browser = await launchTabs(name);
  try {
    const tab = await browser.openTab(server.origin, () => window.bench !== undefined);
    const userAgent = await tab.run(() => navigator.userAgent, undefined);
    const results: TableResult[] = [];
    for (const spec of tables(config)) {
      results.push(
        await runTable(
          spec,
          (row, { warmup }) => {
            const size = runSize(config, spec.id);
            const n = warmup ? Math.min(size, 50) : size;
            return tab.run(({ t, r, count, tag }) => window.bench.run(t, r, count, tag), {
              t: spec.id,
              r: row,
              count: n,
              tag: newTag(),
            }) as Promise<Sample>;
          },
          { rounds: tableRounds(config, spec.id), log: config.log },
        ),
      );
    }
    return {
      suite: `idb-${name}`,
      title: `IndexedDB engine in ${TITLES[name]}`,
      date: new Date().toISOString(),
      machine: machine(
        `${TITLES[name]} (${userAgent}), ${name === 'firefox' ? 'headless, on-disk profile' : 'MiniBrowser under WebKitWebDriver on Xvfb, in-memory session storage'}`,
      ),
      sizes: {
        n: config.n,
        drainN: config.drainN,
        statsN: config.statsN,
        statsCalls: config.statsCalls,
      },
      tables: results,
      notes: [
        "The Chromium tables' engine and raw idb rows, same ids and workloads; ratios divide by the raw row of the same durability in the same run.",
      ],
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
