/** Run sizes: the IndexedDB drain table has its own size and rounds (issue 8). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runSize, tableRounds } from '../src/idb/tables.js';
import { benchConfig } from '../src/lib/config.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('benchConfig', () => {
  it('drains a 10,000-message queue in a full run and 20 in the smoke run, at most 3 rounds', () => {
    for (const name of ['BENCH_SIZE', 'BENCH_DRAIN_SIZE', 'BENCH_ROUNDS', 'BENCH_DRAIN_ROUNDS']) {
      vi.stubEnv(name, '');
    }
    const full = benchConfig(false);
    expect([full.n, full.drainN, full.rounds, full.drainRounds]).toEqual([2000, 10_000, 5, 3]);
    expect([runSize(full, 'drain'), runSize(full, 'enqueue-one'), runSize(full, 'stats')]).toEqual([
      10_000,
      2000,
      full.statsCalls,
    ]);
    expect([tableRounds(full, 'drain'), tableRounds(full, 'enqueue-batch')]).toEqual([3, 5]);
    const smoke = benchConfig(true);
    expect([smoke.n, smoke.drainN, smoke.rounds, smoke.drainRounds]).toEqual([20, 20, 1, 1]);
  });

  it('takes BENCH_DRAIN_SIZE and BENCH_DRAIN_ROUNDS, and refuses a bad one', () => {
    vi.stubEnv('BENCH_ROUNDS', '2');
    vi.stubEnv('BENCH_DRAIN_SIZE', '500');
    vi.stubEnv('BENCH_DRAIN_ROUNDS', '');
    expect(benchConfig(false)).toMatchObject({ drainN: 500, rounds: 2, drainRounds: 2 });
    vi.stubEnv('BENCH_DRAIN_ROUNDS', '5');
    expect(benchConfig(false).drainRounds).toBe(5);
    vi.stubEnv('BENCH_DRAIN_SIZE', '0');
    expect(() => benchConfig(false)).toThrow(TypeError);
  });
});
