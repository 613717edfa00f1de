/**
 * Measures the memory one async call takes in this Node process (run with `--expose-gc`; the
 * bench scripts also pass `--max-semi-space-size=64` so that short calls finish without a young
 * GC and the peak below is their whole allocation).
 *
 * Level = V8 heap used + external memory (ArrayBuffers, i.e. message contents). Before the call:
 * two full GCs, then the level. During the call: the level sampled on every turn of the event
 * loop, and after it returns, the highest sample minus the base is the peak. Then the result is
 * kept alive through two more full GCs: what is still above the base is retained.
 */
import { PerformanceObserver } from 'node:perf_hooks';

export interface Measured<T> {
  readonly result: T;
  readonly peakBytes: number;
  readonly retainedBytes: number;
  readonly gcs: number;
}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run node with --expose-gc (pnpm bench does)');
  collect();
  collect();
};

const level = (): number => {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
};

export async function measure<T>(call: () => Promise<T>): Promise<Measured<T>> {
  gc();
  let gcs = 0;
  const observer = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  const base = level();
  let peak = base;
  let sampling = true;
  const sample = () => {
    peak = Math.max(peak, level());
    if (sampling) setImmediate(sample);
  };
  observer.observe({ entryTypes: ['gc'] });
  setImmediate(sample);
  const result = await call();
  peak = Math.max(peak, level());
  sampling = false;
  // GC entries are delivered asynchronously: let them arrive before disconnecting.
  await new Promise((resolve) => setTimeout(resolve, 20));
  observer.disconnect();
  gc();
  // `result` is still referenced (returned below), so it counts as retained.
  const retainedBytes = level() - base;
  return { result, peakBytes: peak - base, retainedBytes, gcs };
}
