/**
 * The memory table in real Chromium: IndexedDbEngine in the system's Chromium (headless, fresh
 * on-disk profile, launched as ../idb/chromium.ts does), `BENCH_MEMORY_SIZE` messages of 8 KiB,
 * the renderer measured by renderer-meter.ts. page.ts is bundled in memory by esbuild (workspace
 * packages resolved to their sources) and served from 127.0.0.1; nothing is downloaded.
 */
import { fileURLToPath } from 'node:url';
import { launchWithDiskProfile } from '@mailspool/test-support/chromium';
import { type FileServer, MODULE_PAGE_HTML, serveFiles } from '@mailspool/test-support/net';
import { build } from 'esbuild';
import type { CDPSession, Page } from 'playwright-core';
import type { BenchConfig } from '../lib/config.js';
import { type MemoryRow, machine, type SuiteResult } from '../lib/report.js';
import { controlReads, verifyControlSeen, verifyNoContentsLoaded } from './checks.js';
import type { MemoryCall } from './page.js';
import { measureRenderer } from './renderer-meter.js';
import { CONTENTS, SEED_BATCH } from './seed.js';

/** Serves page.ts (bundled) on 127.0.0.1 until `close()`. */
async function servePage(): Promise<FileServer> {
  const bundled = await build({
    entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    conditions: ['@mailspool/source'],
    write: false,
    logLevel: 'silent',
  });
  return serveFiles({
    '/': { type: 'text/html', body: MODULE_PAGE_HTML },
    '/page.js': { type: 'text/javascript', body: bundled.outputFiles[0]!.contents },
  });
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** Seeds the page's queue of `n` batch by batch (one evaluate per batch, so progress shows). */
async function seed(page: Page, n: number, log: (line: string) => void): Promise<void> {
  const started = performance.now();
  let next = started;
  for (let from = 0; from < n; from += SEED_BATCH) {
    const count = Math.min(SEED_BATCH, n - from);
    await page.evaluate(([f, c, total]) => window.memoryBench.store(f, c, total), [
      from,
      count,
      n,
    ] as const);
    if (performance.now() >= next) {
      log(
        `seeding: ${(from + count).toLocaleString('en-US')} of ${n.toLocaleString('en-US')} stored (${seconds(started)})`,
      );
      next = performance.now() + 10_000;
    }
  }
  await page.evaluate((total) => window.memoryBench.lock(total), n);
  log(
    `seeded ${n.toLocaleString('en-US')} messages (${((n * CONTENTS) / 2 ** 20).toFixed(0)} MiB contents) in ${seconds(started)} (untimed)`,
  );
}

/** One measured call of the page, checked after the retained level is taken. */
async function measureCall(
  page: Page,
  cdp: CDPSession,
  call: MemoryCall,
  n: number,
  log: (line: string) => void,
) {
  const started = performance.now();
  const measured = await measureRenderer(cdp, () =>
    page.evaluate((c) => window.memoryBench.run(c), call),
  );
  const check = await page.evaluate(([c, total]) => window.memoryBench.check(c, total), [
    call,
    n,
  ] as const);
  await page.evaluate(() => window.memoryBench.release());
  log(
    `${call}: peak ${(measured.peakBytes / 2 ** 20).toFixed(1)} MiB, retained ${(measured.retainedBytes / 2 ** 20).toFixed(1)} MiB, ${measured.gcs} GCs, ${measured.samples} samples in ${seconds(started)}`,
  );
  return { ...measured, check };
}

export async function runMemoryChromium(config: BenchConfig): Promise<SuiteResult> {
  const n = config.memoryN;
  const contentsBytes = n * CONTENTS;
  const server = await servePage();
  const browser = await launchWithDiskProfile('mailspool-bench-memory');
  const { context } = browser;
  try {
    const version = context.browser()?.version() ?? 'unknown';
    // The persistent context's first tab: no second renderer in the trace.
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(server.origin);
    await page.waitForFunction(() => window.memoryBench !== undefined);
    const cdp = await context.newCDPSession(page);
    await page.evaluate((name) => window.memoryBench.open(name), `bench-memory-${Date.now()}`);
    await seed(page, n, config.log);

    const label = 'IndexedDbEngine';
    const rows: MemoryRow[] = [];
    const all = await measureCall(page, cdp, 'all', n, config.log);
    rows.push({
      id: 'chromium-all',
      label: `${label} \`getAllMessages()\``,
      messages: n,
      contentsBytes,
      peakBytes: all.peakBytes,
      retainedBytes: all.retainedBytes,
      gcs: all.gcs,
      check: all.check,
    });
    const stats = await measureCall(page, cdp, 'stats', n, config.log);
    rows.push({
      id: 'chromium-stats',
      label: `${label} \`stats()\``,
      messages: n,
      contentsBytes,
      peakBytes: stats.peakBytes,
      retainedBytes: stats.retainedBytes,
      gcs: stats.gcs,
      check: stats.check,
    });
    // Control: read the contents of a tenth of the queue, one by one, and keep them.
    const reads = await page.evaluate(
      (count) => window.memoryBench.prepareControl(count),
      controlReads(n),
    );
    const control = await measureCall(page, cdp, 'control', n, config.log);
    verifyControlSeen(control, reads * CONTENTS);
    rows.push({
      id: 'chromium-control',
      label: `control: ${label} \`getMessageContents\` × ${reads.toLocaleString('en-US')} (kept)`,
      messages: n,
      contentsBytes,
      peakBytes: control.peakBytes,
      retainedBytes: control.retainedBytes,
      gcs: control.gcs,
      check: control.check,
      control: true,
    });
    verifyNoContentsLoaded(rows);
    await page.evaluate(() => window.memoryBench.close());
    if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);
    return {
      suite: 'memory-chromium',
      title: 'Memory in Chromium: getAllMessages and stats never load contents',
      date: new Date().toISOString(),
      machine: machine(`Chromium ${version} headless, on-disk profile`),
      sizes: { memoryN: n, contentsBytes: CONTENTS },
      tables: [],
      memory: [
        {
          id: 'indexeddb-chromium',
          title: "IndexedDbEngine in Chromium (the page's renderer)",
          method:
            `${n.toLocaleString('en-US')} messages of ${CONTENTS / 1024} KiB contents (a tenth locked, a fifth deferred), stored by the page in batches of ${SEED_BATCH} (untimed). ` +
            "Level = the renderer's V8 heap used + Blink's heap used + ArrayBuffer backing stores (DevTools `Runtime.getHeapUsage`: usedSize + embedderHeapUsedSize + backingStorageSize), after two full GCs (`HeapProfiler.collectGarbage`); peak = highest level sampled from Node back to back during the call (the renderer answers between tasks), minus the level before; retained = level after the call and two full GCs with the result still referenced by the page; GCs = MinorGC/MajorGC trace events on the renderer's main thread during the call. " +
            'IndexedDB keeps values in the browser process (and on disk): this is what the page itself pays. A GC during the call frees garbage between samples, so the peak is the most held at once, not all that was allocated. The control row reads contents on purpose and must show them, or the suite fails.',
          rows,
        },
      ],
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
