/**
 * `pnpm --filter @mailspool/bench ab:do`: builds of the bench Worker side by side in one run, so
 * that a change to the Durable Objects engine is measured against the code before it under the
 * same load (this shared machine swings 2–3× between runs; only same-run ratios count).
 *
 *   ab:do save <name>            bundle the sources as they are now into .wrangler/ab/<name>.js
 *   ab:do [rows] <name>...       run the saved builds and the current sources (`current`) side by
 *                                side: every round runs each row once per build, rotating the
 *                                order of rows and builds; medians of wall and workerd CPU time
 *   ab:do layers <name>...       per-call CPU of one read and one store, made three ways (raw SQL
 *                                over RPC, the shard's `call` directly, a session): which layer
 *                                costs what, to ±10 % where whole rows move by ±50 %
 *
 * Each build runs in a workerd of its own, so its CPU time (the sum of its threads' schedstat) is
 * its own. `AB_ROWS` (default `raw-rpc,engine,engine-1x8,engine-8x8`; any row id of the
 * durable-objects table), `BENCH_ROUNDS` (default 4, after a warm-up), `BENCH_DO_SIZE` (default
 * 1000; layers: 500 calls per sample). Ratios are to the same build's `raw-rpc` when it ran.
 * Linux only (CPU time from /proc).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Miniflare } from 'miniflare';
import { bundleBenchWorker, call, runOnce, startBundle, VARIANTS } from './durable-objects.js';
import { cpuMs, ourWorkerd } from './workerd.js';

const dir = join(fileURLToPath(new URL('../..', import.meta.url)), '.wrangler', 'ab');
const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
const LAYER_KINDS = [
  'raw-read',
  'shard-read',
  'session-read',
  'raw-store',
  'shard-store',
  'session-store',
];

interface Build {
  readonly name: string;
  readonly mf: Miniflare;
  readonly pids: string[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const rotate = <T>(list: readonly T[], by: number) =>
  list.map((_, i) => list[(i + by) % list.length]!);

async function start(names: readonly string[]): Promise<Build[]> {
  await bundleBenchWorker(join(dir, 'current.js'));
  const builds: Build[] = [];
  for (const name of [...names, 'current']) {
    const before = new Set(ourWorkerd());
    const mf = await startBundle(join(dir, `${name}.js`));
    builds.push({ name, mf, pids: ourWorkerd().filter((pid) => !before.has(pid)) });
  }
  return builds;
}

/** Runs `sample` for every (key, build) pair each round, rotated; returns the medians' inputs. */
async function measure(
  builds: readonly Build[],
  keys: readonly string[],
  sample: (build: Build, key: string, round: number) => Promise<{ wall: number; cpu: number }>,
): Promise<Map<string, { wall: number[]; cpu: number[] }>> {
  const results = new Map<string, { wall: number[]; cpu: number[] }>();
  for (let round = -1; round < rounds; round++) {
    const turn = Math.max(round, 0);
    for (const key of rotate(keys, turn)) {
      for (const build of rotate(builds, turn)) {
        const value = await sample(build, key, round);
        if (round < 0) continue;
        const at = `${build.name} ${key}`;
        const entry = results.get(at) ?? { wall: [], cpu: [] };
        entry.wall.push(value.wall);
        entry.cpu.push(value.cpu);
        results.set(at, entry);
      }
    }
    console.error(`  round ${round < 0 ? 'warm-up' : round + 1} done`);
  }
  return results;
}

async function rows(builds: readonly Build[], ids: readonly string[]): Promise<void> {
  const n = Number(process.env.BENCH_DO_SIZE ?? 1000);
  const results = await measure(builds, ids, async (build, row, round) => {
    const before = cpuMs(build.pids);
    const sample = await runOnce(build.mf, row, round < 0 ? 100 : n);
    const cpu = cpuMs(build.pids) - before;
    return { wall: (sample.ops / sample.ms) * 1000, cpu: (sample.ops / cpu) * 1000 };
  });
  console.log(`\nmsgs/s, ${n} messages, median of ${rounds} rounds (wall, and per CPU second)`);
  for (const build of builds) {
    const base = results.get(`${build.name} raw-rpc`);
    for (const row of ids) {
      const { wall, cpu } = results.get(`${build.name} ${row}`)!;
      const ratio = base
        ? `   vs raw-rpc: wall ${(median(wall) / median(base.wall)).toFixed(2)}×, CPU ${(median(cpu) / median(base.cpu)).toFixed(2)}×`
        : '';
      console.log(
        `${build.name.padEnd(10)} ${row.padEnd(18)} wall ${median(wall).toFixed(0).padStart(5)} (${Math.min(...wall).toFixed(0)}–${Math.max(...wall).toFixed(0)})  CPU ${median(cpu).toFixed(0).padStart(5)}${ratio}`,
      );
    }
  }
}

async function layers(builds: readonly Build[]): Promise<void> {
  const n = Number(process.env.BENCH_DO_SIZE ?? 500);
  const tags = new Map<string, number>();
  for (const build of builds) {
    const tag = crypto.getRandomValues(new Uint32Array(1))[0]!;
    tags.set(build.name, tag);
    await call(build.mf, `/layer?kind=setup&n=${n}&tag=${tag}&rep=0`);
  }
  let rep = 0;
  const results = await measure(builds, LAYER_KINDS, async (build, kind) => {
    const before = cpuMs(build.pids);
    const started = performance.now();
    await call(build.mf, `/layer?kind=${kind}&n=${n}&tag=${tags.get(build.name)}&rep=${++rep}`);
    return {
      wall: ((performance.now() - started) / n) * 1000,
      cpu: ((cpuMs(build.pids) - before) / n) * 1000,
    };
  });
  console.log(`\nµs per call, ${n} calls per sample, median of ${rounds} rounds`);
  for (const kind of LAYER_KINDS) {
    for (const build of builds) {
      const { wall, cpu } = results.get(`${build.name} ${kind}`)!;
      console.log(
        `${build.name.padEnd(10)} ${kind.padEnd(14)} CPU ${median(cpu).toFixed(0).padStart(5)} (${Math.min(...cpu).toFixed(0)}–${Math.max(...cpu).toFixed(0)})  wall ${median(wall).toFixed(0).padStart(5)}`,
      );
    }
  }
}

async function main(args: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (args[0] === 'save') {
    const name = args[1];
    if (!name || !/^[\w-]+$/.test(name) || name === 'current') {
      throw new Error('ab:do save <name>: a name of letters, digits, - or _ (not "current")');
    }
    await bundleBenchWorker(join(dir, `${name}.js`));
    console.log(`saved ${join(dir, `${name}.js`)}`);
    return;
  }
  const mode = args[0] === 'layers' ? 'layers' : 'rows';
  const names = mode === 'layers' ? args.slice(1) : args;
  const ids = (process.env.AB_ROWS ?? 'raw-rpc,engine,engine-1x8,engine-8x8').split(',');
  const unknown = ids.filter((id) => !(id in VARIANTS));
  if (unknown.length > 0) throw new Error(`unknown rows: ${unknown.join(', ')}`);
  const builds = await start(names);
  try {
    if (mode === 'layers') await layers(builds);
    else await rows(builds, ids);
  } finally {
    for (const build of builds) await build.mf.dispose();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('✘ ab:do failed:', error);
    process.exit(1);
  },
);
