/**
 * What the Durable Objects suites share about running code in workerd through miniflare: bundling
 * a Worker from the workspace sources, and the CPU time of the workerd processes this Node process
 * started (the sum of the first field of /proc/<pid>/task/<tid>/schedstat, in ns).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';

/** Bundles `entry` (workspace packages resolved to their TypeScript sources) into `outfile`. */
export async function bundleWorker(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['@mailspool/source', 'workerd', 'worker', 'import', 'module'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*'],
    logLevel: 'error',
  });
}

/** The workerd processes this Node process started (its children only). */
export function ourWorkerd(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), 'workerd'], { encoding: 'utf8' })
      .trim()
      .split(/\s+/)
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** ms of CPU the given processes' threads have used so far (NaN where /proc can't tell). */
export function cpuMs(pids: readonly string[]): number {
  if (pids.length === 0) return Number.NaN;
  let ns = 0;
  for (const pid of pids) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between listing and reading: its time is gone with it.
      }
    }
  }
  return ns / 1e6;
}
