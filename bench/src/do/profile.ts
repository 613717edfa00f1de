/**
 * `pnpm --filter @mailspool/bench profile:do`: where the Durable Objects engine spends its time,
 * phase by phase, against the same calls made as raw SQL over RPC.
 *
 * Each round runs the cycle (store n one per call, claim 50 until empty, read each, delete each
 * claim) as four requests per variant, interleaved, and measures the **CPU time workerd spent**
 * on each: the sum of the first field of `/proc/<pid>/task/<tid>/schedstat` (ns on CPU) over the
 * runtime's threads. While other jobs loaded this 2-core box, wall times swung 2–3× between
 * runs and these CPU ratios about ±15 %: enough to find a phase 1.5× over raw, not a 5 % one.
 * Linux only.
 *
 * `PROFILE_CPU=1` also records a V8 CPU profile of the runtime through miniflare's inspector
 * port (one extra engine round, or a raw one with `PROFILE_VARIANT=raw`) and prints the functions
 * with the most self time; the raw profile is written to bench/.wrangler/<variant>.cpuprofile
 * (open it in Chrome DevTools).
 *
 * Sizes: `BENCH_DO_SIZE` messages per run (default 1000), `BENCH_ROUNDS` measured rounds
 * (default 7, after one warm-up).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Miniflare } from 'miniflare';
import { call, startBenchWorker } from './durable-objects.js';
import { cpuMs, ourWorkerd } from './workerd.js';

const PHASES = ['store', 'claim', 'read', 'delete'] as const;
const VARIANTS = ['engine', 'raw'] as const;
const INSPECTOR_PORT = 9339;

const n = Number(process.env.BENCH_DO_SIZE ?? 1000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const withCpuProfile = process.env.PROFILE_CPU === '1';
const profiled = process.env.PROFILE_VARIANT === 'raw' ? 'raw' : 'engine';
const profilePath = join(
  fileURLToPath(new URL('../..', import.meta.url)),
  '.wrangler',
  `${profiled}.cpuprofile`,
);

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** A minimal DevTools protocol client over the inspector's WebSocket. */
async function inspector(): Promise<{
  send(method: string, params?: object): Promise<Record<string, unknown>>;
  close(): void;
}> {
  const targets = (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json()) as {
    webSocketDebuggerUrl: string;
    title: string;
  }[];
  // The user worker's isolate (the others are miniflare's own services).
  const target = targets.find((t) => t.title.includes('core:user')) ?? targets[0]!;
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve);
    socket.addEventListener('error', reject);
  });
  let next = 0;
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as {
      id?: number;
      result?: Record<string, unknown>;
    };
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++next;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

function printHotspots(profile: CpuProfile): void {
  const self = new Map<number, number>();
  profile.samples.forEach((node, i) => {
    self.set(node, (self.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  console.log(
    `\nV8 CPU profile of a ${profiled} round: self time by function (of ${total / 1000} ms)`,
  );
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(
      `${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}`,
    );
  }
}

async function main(): Promise<void> {
  const mf: Miniflare = await startBenchWorker(withCpuProfile ? INSPECTOR_PORT : undefined);
  try {
    const pids = ourWorkerd();
    const devtools = withCpuProfile ? await inspector() : undefined;
    if (devtools) {
      await devtools.send('Profiler.enable');
      await devtools.send('Profiler.setSamplingInterval', { interval: 200 });
    }
    const cpu: Record<string, Record<string, number[]>> = {};
    const wall: Record<string, Record<string, number[]>> = {};
    const record = (
      into: Record<string, Record<string, number[]>>,
      variant: string,
      phase: string,
      ms: number,
    ) => {
      const byPhase = into[variant] ?? {};
      into[variant] = byPhase;
      byPhase[phase] = [...(byPhase[phase] ?? []), ms];
    };
    const cycle = async (variant: string, measured: boolean) => {
      const tag = crypto.getRandomValues(new Uint32Array(1))[0]!;
      for (const phase of PHASES) {
        const before = cpuMs(pids);
        const started = performance.now();
        await call<string>(mf, `/phase?variant=${variant}&phase=${phase}&n=${n}&tag=${tag}`);
        if (measured) {
          record(wall, variant, phase, performance.now() - started);
          record(cpu, variant, phase, cpuMs(pids) - before);
        }
      }
    };
    for (let round = 0; round <= rounds; round++) {
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const variant of order) await cycle(variant, round > 0);
      console.log(`  round ${round === 0 ? 'warm-up' : round} done`);
    }
    // The CPU profile is taken in a round of its own: sampling costs CPU, which must not be
    // counted in the table above.
    let firstProfile: CpuProfile | undefined;
    if (devtools) {
      await devtools.send('Profiler.start');
      await cycle(profiled, false);
      firstProfile = (await devtools.send('Profiler.stop')).profile as CpuProfile;
    }
    devtools?.close();
    const print = (title: string, of: Record<string, Record<string, number[]>>) => {
      console.log(`\n${title}, ${n} messages (median of ${rounds} rounds); engine = 1 shard`);
      console.log('phase     engine       raw   engine/raw');
      let engineTotal = 0;
      let rawTotal = 0;
      for (const phase of PHASES) {
        const engine = median(of.engine![phase]!);
        const raw = median(of.raw![phase]!);
        engineTotal += engine;
        rawTotal += raw;
        console.log(
          `${phase.padEnd(7)} ${engine.toFixed(1).padStart(8)}  ${raw.toFixed(1).padStart(8)}   ${(engine / raw).toFixed(2)}×`,
        );
      }
      console.log(
        `${'total'.padEnd(7)} ${engineTotal.toFixed(1).padStart(8)}  ${rawTotal.toFixed(1).padStart(8)}   ${(engineTotal / rawTotal).toFixed(2)}×`,
      );
    };
    print('workerd CPU ms per phase', cpu);
    // Wall time shows what CPU time can't: a call waiting for something (a commit, a timer).
    print('wall ms per phase (noisier: other jobs share the cores)', wall);
    if (firstProfile) {
      writeFileSync(profilePath, JSON.stringify(firstProfile));
      printHotspots(firstProfile);
      console.log(`\n(the whole profile: ${profilePath})`);
    }
  } finally {
    await mf.dispose();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('✘ profile failed:', error);
    process.exit(1);
  },
);
