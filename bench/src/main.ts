/**
 * `pnpm bench [suite…]` / `pnpm bench:smoke`: runs the suites (all by default) in order, prints
 * every round, and (full runs only) writes bench/results/<suite>.json and latest.md. Exits 1 when
 * any benchmark fails its own verification, so the smoke run in CI catches a rotting benchmark.
 */
import { benchConfig } from './lib/config.js';
import { renderSuite, type SuiteResult, writeSuite } from './lib/report.js';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const wanted = args.filter((a) => !a.startsWith('--'));

const suites: Record<string, (config: ReturnType<typeof benchConfig>) => Promise<SuiteResult>> = {
  memory: async (c) => (await import('./memory/memory.js')).runMemory(c),
  'memory-chromium': async (c) => (await import('./memory/chromium.js')).runMemoryChromium(c),
  'idb-node': async (c) => (await import('./idb/node.js')).runIdbNode(c),
  'idb-chromium': async (c) => (await import('./idb/chromium.js')).runIdbChromium(c),
  'idb-firefox': async (c) => (await import('./idb/other-browsers.js')).runIdbOther('firefox', c),
  'idb-webkit': async (c) => (await import('./idb/other-browsers.js')).runIdbOther('webkit', c),
  'durable-objects': async (c) => (await import('./do/durable-objects.js')).runDurableObjects(c),
  'do-delivery': async (c) => (await import('./do/delivery.js')).runDelivery(c),
};

async function main(): Promise<void> {
  const config = benchConfig(smoke);
  const names = wanted.length > 0 ? wanted : Object.keys(suites);
  for (const name of names) {
    if (!suites[name])
      throw new Error(`unknown suite ${name}; known: ${Object.keys(suites).join(', ')}`);
  }
  for (const name of names) {
    const started = performance.now();
    console.log(`▶ ${name}${smoke ? ' (smoke)' : ''}`);
    const result = await suites[name]!(config);
    console.log(renderSuite(result));
    if (config.tables !== null || config.rows !== null) {
      console.log('  (BENCH_TABLES or BENCH_ROWS chose a part: results not written)');
    } else if (!smoke) await writeSuite(result);
    console.log(`✔ ${name} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('✘ benchmark failed:', error);
    process.exit(1);
  },
);
