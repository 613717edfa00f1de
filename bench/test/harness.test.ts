/**
 * The measuring harness itself: medians, ratios to baselines of the same run, interleaving, and
 * above all that a failing self-check fails the run (so a fast wrong answer can't be reported).
 */
import { describe, expect, it } from 'vitest';
import { makeBodies, Tally } from '../src/idb/messages.js';
import { median, runTable, type Sample, type TableSpec, verify } from '../src/lib/harness.js';
import { renderSuite } from '../src/lib/report.js';

const spec: TableSpec = {
  id: 't',
  title: 'T',
  unit: 'ops/s',
  workload: 'test.',
  baselines: [
    { key: 'limit', label: 'vs limit', row: 'base' },
    { key: 'other', label: 'vs other', row: 'other' },
  ],
  rows: [
    { id: 'base', label: 'base' },
    { id: 'fast', label: 'fast', against: { limit: 'other' } },
    { id: 'other', label: 'other' },
  ],
};

/** ms per op for each row: base 10 ms, fast 2 ms, other 5 ms (rates 100, 500, 200 ops/s). */
const cost: Record<string, number> = { base: 10, fast: 2, other: 5 };

describe('median', () => {
  it('takes the middle value, or the mean of the middle two', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });
});

describe('runTable', () => {
  it('reports medians and ratios to each column baseline (or a row override)', async () => {
    const result = await runTable(
      spec,
      async (row, { round }) => ({
        ops: 10,
        ms: 10 * cost[row]! * (round === 1 ? 3 : 1),
        check: 'ok',
      }),
      { rounds: 3, warmup: false },
    );
    const byId = Object.fromEntries(result.rows.map((r) => [r.id, r]));
    expect(byId.base!.median).toBeCloseTo(100);
    expect(byId.base!.min).toBeCloseTo(100 / 3);
    expect(byId.fast!.ratios.limit).toBeCloseTo(500 / 200); // overridden: vs `other`
    expect(byId.fast!.ratios.other).toBeCloseTo(500 / 200);
    expect(byId.other!.ratios.limit).toBeCloseTo(2);
    expect(byId.base!.ratios.limit).toBeCloseTo(1);
  });

  it('runs a warm-up, then rotates the row order every round', async () => {
    const calls: string[] = [];
    await runTable(
      spec,
      async (row, { warmup }) => {
        calls.push(warmup ? `w:${row}` : row);
        return { ops: 1, ms: 1, check: 'ok' };
      },
      { rounds: 2 },
    );
    expect(calls).toEqual([
      'w:base',
      'w:fast',
      'w:other',
      'base',
      'fast',
      'other',
      'fast',
      'other',
      'base',
    ]);
  });

  it('fails the whole table, naming the row, when a self-check fails', async () => {
    const run = runTable(
      spec,
      async (row): Promise<Sample> => {
        verify(row !== 'fast', '3 of 10 messages missing');
        return { ops: 10, ms: 1, check: 'ok' };
      },
      { rounds: 1, warmup: false },
    );
    await expect(run).rejects.toThrow('t / fast: verification failed: 3 of 10 messages missing');
  });

  it('rejects an empty sample instead of reporting an infinite rate', async () => {
    const run = runTable(spec, async () => ({ ops: 10, ms: 0, check: 'ok' }), {
      rounds: 1,
      warmup: false,
    });
    await expect(run).rejects.toThrow('empty sample');
  });

  it('renders a markdown row per variant with its ratios', async () => {
    const table = await runTable(
      spec,
      async (row) => ({ ops: 10, ms: 10 * cost[row]!, check: 'ok' }),
      {
        rounds: 1,
        warmup: false,
      },
    );
    const md = renderSuite({
      suite: 's',
      title: 'S',
      date: 'd',
      machine: 'm',
      sizes: {},
      tables: [table],
    });
    expect(md).toContain('| fast | 500 | 500–500 | 2.50× | 2.50× |');
  });
});

describe('Tally (the message check)', () => {
  const bodies = makeBodies(4, 7, 64);

  it('passes exactly the run’s messages, once each', () => {
    const tally = new Tally(7);
    for (const body of bodies) tally.add(body);
    expect(tally.check(4, 64)).toBe('4 msgs, 256 bytes');
  });

  it('fails on a missing, a repeated, a foreign or a truncated body', () => {
    const missing = new Tally(7);
    for (const body of bodies.slice(1)) missing.add(body);
    expect(() => missing.check(4, 64)).toThrow('3 distinct bodies');

    const repeated = new Tally(7);
    for (const body of [...bodies.slice(1), bodies[1]!]) repeated.add(body);
    expect(() => repeated.check(4, 64)).toThrow('verification failed');

    const foreign = new Tally(7);
    for (const body of [...bodies.slice(1), makeBodies(1, 8, 64)[0]!]) foreign.add(body);
    expect(() => foreign.check(4, 64)).toThrow('another run');

    const truncated = new Tally(7);
    for (const body of [...bodies.slice(1), bodies[0]!.subarray(0, 32)]) truncated.add(body);
    expect(() => truncated.check(4, 64)).toThrow('bytes');
  });
});
