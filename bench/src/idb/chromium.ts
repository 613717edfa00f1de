/**
 * The IndexedDB tables in real Chromium: the system's Chromium (CHROMIUM_PATH, default
 * /usr/bin/chromium, flags from docs/toolchain-notes.md) with a fresh on-disk profile, driven by
 * playwright-core. page.ts and sw.ts are bundled in memory by esbuild (workspace packages
 * resolved to their sources) and served from 127.0.0.1; nothing is downloaded.
 */
import { fileURLToPath } from 'node:url';
import { launchWithDiskProfile } from '@mailspool/test-support/chromium';
import { type FileServer, MODULE_PAGE_HTML, serveFiles } from '@mailspool/test-support/net';
import { build } from 'esbuild';
import type { BenchConfig } from '../lib/config.js';
import { runTable, type Sample, type TableResult } from '../lib/harness.js';
import { machine, type SuiteResult } from '../lib/report.js';
import { idbTables, runSize, tableRounds } from './tables.js';

async function bundle(entry: string, format: 'esm' | 'iife'): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    format,
    platform: 'browser',
    // The same page runs in Firefox and WebKitGTK too (other-browsers.ts).
    target: ['chrome120', 'firefox128', 'safari17'],
    conditions: ['@mailspool/source'],
    // Workbox reads process.env.NODE_ENV; production drops its dev-only logging.
    define: { 'process.env.NODE_ENV': '"production"' },
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.contents;
}

/** Serves the page and the service worker on 127.0.0.1 until `close()`. */
export async function startServer(): Promise<FileServer> {
  const [page, sw] = await Promise.all([bundle('./page.ts', 'esm'), bundle('./sw.ts', 'iife')]);
  const js = 'text/javascript';
  return serveFiles({
    '/': { type: 'text/html', body: MODULE_PAGE_HTML },
    '/page.js': { type: js, body: page },
    '/sw.js': { type: js, body: sw },
  });
}

const newTag = () => crypto.getRandomValues(new Uint32Array(1))[0]!;

export async function runIdbChromium(config: BenchConfig): Promise<SuiteResult> {
  const server = await startServer();
  const browser = await launchWithDiskProfile('mailspool-bench');
  const { context } = browser;
  try {
    const version = context.browser()?.version() ?? 'unknown';
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(server.origin);
    await page.waitForFunction(() => window.bench !== undefined);
    await page.evaluate(() => window.bench.ready());
    const tables: TableResult[] = [];
    for (const spec of idbTables(config, true)) {
      if (spec.id === 'stats') {
        config.log(`stats: seeding ${config.statsN} messages per variant`);
        await page.evaluate(([n, tag]) => window.bench.prepareStats(n, tag, true), [
          config.statsN,
          newTag(),
        ] as const);
      }
      try {
        tables.push(
          await runTable(
            spec,
            (row, { warmup }) => {
              const size = runSize(config, spec.id);
              const n = warmup ? Math.min(size, 50) : size;
              return page.evaluate(([t, r, count, tag]) => window.bench.run(t, r, count, tag), [
                spec.id,
                row,
                n,
                newTag(),
              ] as const) as Promise<Sample>;
            },
            { rounds: tableRounds(config, spec.id), log: config.log },
          ),
        );
      } finally {
        if (spec.id === 'stats') await page.evaluate(() => window.bench.disposeStats(true));
      }
    }
    if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);
    return {
      suite: 'idb-chromium',
      title: 'IndexedDB engine in Chromium',
      date: new Date().toISOString(),
      machine: machine(`Chromium ${version} headless, on-disk profile`),
      sizes: {
        n: config.n,
        drainN: config.drainN,
        statsN: config.statsN,
        statsCalls: config.statsCalls,
      },
      tables,
      notes: [
        "Durability: the engine defaults to `'strict'` (flushed to disk when a store resolves); Chromium's default behaves like `'relaxed'`, which is what Dexie (default) and Workbox (explicitly relaxed) use. Each engine row's `vs limit` divides by the raw idb row of the same durability.",
        'Workbox rows run in a service worker (its Queue can not be built in a window); all other rows run in the page.',
      ],
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
