/**
 * Measures the memory one call takes in a Chromium page's renderer, from Node over the DevTools
 * protocol (a playwright CDPSession on the page).
 *
 * Level = `Runtime.getHeapUsage`: `usedSize` (V8 heap) + `embedderHeapUsedSize` (Blink's
 * garbage-collected C++ heap: IDB requests, transactions, key ranges) + `backingStorageSize`
 * (ArrayBuffer backing stores, i.e. message contents). Before the call: two
 * `HeapProfiler.collectGarbage`, then the level. During the call: the level sampled back to
 * back from Node until the call resolves; peak = the highest sample minus the base. Then the
 * result (kept by the page) goes through two more full GCs: what is still above the base is
 * retained. GCs in the call are counted from a trace of the call (`MinorGC` / `MajorGC` events on
 * the renderer's main thread), since a GC inside the call can hide garbage from the peak.
 *
 * Why from Node and not from inside the page: the renderer answers a `getHeapUsage` between two
 * tasks (not during one: probed, a 2 s synchronous loop got no answer until it ended), which is
 * exactly the granularity an in-page sampler on every macrotask would have — but the sampler
 * itself then adds nothing to the measured heap, needs no `--enable-precise-memory-info`, does
 * not compete with IndexedDB's callbacks for the page's task queue, and reports the three parts
 * separately. (requestAnimationFrame only fires when a frame is produced, which a headless
 * page does not promise; `performance.measureUserAgentSpecificMemory()` is undefined without
 * cross-origin isolation — probed — and resolves at a later GC, so it sees what survives, not a
 * peak.)
 */
import type { CDPSession } from 'playwright-core';
import type { Measured } from './meter.js';

export interface RendererMeasured<T> extends Measured<T> {
  /** Level samples taken during the call. */
  readonly samples: number;
}

interface TraceEvent {
  readonly name: string;
  readonly ph: string;
  readonly pid: number;
  readonly tid: number;
  readonly args?: { readonly name?: string };
}

/** The page's JS heap, its Blink heap and its ArrayBuffers, in bytes (see the module doc). */
export async function rendererLevel(cdp: CDPSession): Promise<number> {
  // Chromium 156 reports all three; one that reports only usedSize would leave the meter blind to
  // ArrayBuffers, and the control row would then fail the suite.
  const usage = (await cdp.send('Runtime.getHeapUsage')) as {
    usedSize: number;
    embedderHeapUsedSize?: number;
    backingStorageSize?: number;
  };
  return usage.usedSize + (usage.embedderHeapUsedSize ?? 0) + (usage.backingStorageSize ?? 0);
}

async function collectGarbage(cdp: CDPSession): Promise<void> {
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
}

/** Starts a trace of GC events; the returned function ends it and counts the main thread's GCs. */
async function traceGcs(cdp: CDPSession): Promise<() => Promise<number>> {
  const events: TraceEvent[] = [];
  const collect = (event: { value: object[] }) => events.push(...(event.value as TraceEvent[]));
  cdp.on('Tracing.dataCollected', collect);
  await cdp.send('Tracing.start', {
    traceConfig: { includedCategories: ['devtools.timeline'], excludedCategories: ['*'] },
    transferMode: 'ReportEvents',
  });
  return async () => {
    const complete = new Promise<void>((resolve) =>
      cdp.once('Tracing.tracingComplete', () => resolve()),
    );
    await cdp.send('Tracing.end');
    await complete;
    cdp.off('Tracing.dataCollected', collect);
    const main = new Set(
      events
        .filter(
          (e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain',
        )
        .map((e) => `${e.pid}:${e.tid}`),
    );
    return events.filter(
      (e) =>
        (e.name === 'MinorGC' || e.name === 'MajorGC') &&
        (e.ph === 'X' || e.ph === 'B') &&
        (main.size === 0 || main.has(`${e.pid}:${e.tid}`)),
    ).length;
  };
}

/**
 * Runs `call` (which starts the work in the page and resolves when it is done, the page keeping
 * its result) and measures the renderer around it.
 */
export async function measureRenderer<T>(
  cdp: CDPSession,
  call: () => Promise<T>,
): Promise<RendererMeasured<T>> {
  await collectGarbage(cdp);
  const endTrace = await traceGcs(cdp);
  const base = await rendererLevel(cdp);
  let peak = base;
  let samples = 0;
  let settled = false;
  const pending = call().finally(() => {
    settled = true;
  });
  // Handled below, after sampling; this only keeps Node from calling it unhandled meanwhile.
  pending.catch(() => {});
  while (!settled) {
    peak = Math.max(peak, await rendererLevel(cdp));
    samples++;
  }
  const result = await pending;
  peak = Math.max(peak, await rendererLevel(cdp));
  const gcs = await endTrace();
  await collectGarbage(cdp);
  const retainedBytes = (await rendererLevel(cdp)) - base;
  return { result, peakBytes: peak - base, retainedBytes, gcs, samples };
}
