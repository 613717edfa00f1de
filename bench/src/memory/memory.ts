/**
 * Peak memory of `getAllMessages()` and `stats()` over a large queue (100,000 messages by
 * default, `BENCH_MEMORY_SIZE`): neither may load contents. Each message carries 8 KiB of
 * contents, so loading them would show as hundreds of MiB; each table also has a control row
 * that does read contents (of a tenth of the queue) and must show at least those bytes, proving
 * the meter would have seen a load.
 */
import 'fake-indexeddb/auto';
import { MemoryEngine, type MessageId, type QueueStats, type StorageEngine } from '@mailspool/core';
import { IndexedDbEngine } from '@mailspool/indexeddb';
import { deleteDB } from 'idb';
import { makeBodies, makeMeta } from '../idb/messages.js';
import { statsShape } from '../idb/workloads.js';
import type { BenchConfig } from '../lib/config.js';
import { verify } from '../lib/harness.js';
import { type MemoryRow, type MemoryTable, machine, type SuiteResult } from '../lib/report.js';
import { measure } from './meter.js';

/** Contents per message in this suite. */
const CONTENTS = 8192;
const HOUR = 3_600_000;
const MIB = 1024 * 1024;

/** Stores `n` messages (a tenth locked, a fifth deferred, the rest due) in batches of 1000. */
async function seed(engine: StorageEngine, n: number): Promise<QueueStats> {
  const expected = statsShape(n);
  const deferredFrom = n - expected.deferred;
  const later = Date.now() + HOUR;
  const session = await engine.connect();
  for (let from = 0; from < n; from += 1000) {
    const count = Math.min(1000, n - from);
    const bodies = makeBodies(count, from, CONTENTS);
    await session.storeMessages(
      bodies.map((contents, k) => ({
        meta: makeMeta(from + k),
        contents,
        ...(from + k >= deferredFrom ? { retryAt: later } : {}),
      })),
    );
  }
  const locked = await session.claimDue({ limit: expected.active, ttl: HOUR });
  verify(locked.length === expected.active, `locked ${locked.length}`);
  await session.close();
  return expected;
}

async function measureEngine(
  label: string,
  engine: StorageEngine,
  n: number,
  log: (line: string) => void,
): Promise<MemoryRow[]> {
  const started = performance.now();
  const expected = await seed(engine, n);
  log(`${label}: seeded ${n} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const contentsBytes = n * CONTENTS;
  const session = await engine.connect();
  const rows: MemoryRow[] = [];
  try {
    const all = await measure(() => session.getAllMessages());
    verify(all.result.length === n, `getAllMessages: ${all.result.length} ids, expected ${n}`);
    verify(new Set(all.result).size === n, 'getAllMessages: duplicate ids');
    rows.push({
      id: `${label}-all`,
      label: `${label} \`getAllMessages()\``,
      messages: n,
      contentsBytes,
      peakBytes: all.peakBytes,
      retainedBytes: all.retainedBytes,
      gcs: all.gcs,
      check: `${n} distinct ids`,
    });
    const stats = await measure(() => session.stats());
    const got = stats.result;
    verify(
      got.total === expected.total &&
        got.active === expected.active &&
        got.deferred === expected.deferred &&
        got.due === expected.due,
      `stats ${JSON.stringify(got)} ≠ ${JSON.stringify(expected)}`,
    );
    rows.push({
      id: `${label}-stats`,
      label: `${label} \`stats()\``,
      messages: n,
      contentsBytes,
      peakBytes: stats.peakBytes,
      retainedBytes: stats.retainedBytes,
      gcs: stats.gcs,
      check: JSON.stringify(got),
    });
    // Control: read the contents of a tenth of the queue (at least 1000 messages, so that in a
    // tiny smoke run the read still dwarfs the heap's own noise) and keep them; the meter must
    // see them.
    const ids: MessageId[] = all.result.slice(0, Math.max(1000, Math.floor(n / 10)));
    const control = await measure(async () => {
      const out: Uint8Array[] = [];
      for (const id of ids) out.push(await session.getMessageContents(id));
      return out;
    });
    const read = control.result.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    verify(read === ids.length * CONTENTS, `control read ${read} bytes`);
    verify(
      // 1 MiB of slack for the heap's own ups and downs around a GC (it matters only in smoke runs).
      control.peakBytes >= 0.9 * read - MIB && control.retainedBytes >= 0.9 * read - MIB,
      `the meter missed a contents load: ${control.peakBytes} B peak for ${read} B read`,
    );
    rows.push({
      id: `${label}-control`,
      label: `control: ${label} \`getMessageContents\` × ${ids.length.toLocaleString('en-US')} (kept)`,
      messages: n,
      contentsBytes,
      peakBytes: control.peakBytes,
      retainedBytes: control.retainedBytes,
      gcs: control.gcs,
      check: `${read} bytes read`,
      control: true,
    });
    // The claim of this suite: neither call comes anywhere near loading contents, which would
    // cost at least their whole size (ids and rows cost a few hundred bytes per message on
    // fake-indexeddb; 2 MiB of slack covers fixed costs that dominate tiny smoke-run queues).
    for (const row of rows) {
      if (row.control) continue;
      verify(
        row.peakBytes < contentsBytes / 4 + 2 * 1024 * 1024,
        `${row.label} peaked at ${row.peakBytes} B: contents (${contentsBytes} B) loaded?`,
      );
    }
  } finally {
    await session.close();
  }
  return rows;
}

export async function runMemory(config: BenchConfig): Promise<SuiteResult> {
  const n = config.memoryN;
  const memoryRows = await measureEngine('MemoryEngine', new MemoryEngine(), n, config.log);
  const name = `bench-memory-${Date.now()}`;
  const idb = new IndexedDbEngine({ name, durability: 'relaxed' });
  let idbRows: MemoryRow[];
  try {
    idbRows = await measureEngine('IndexedDbEngine', idb, n, config.log);
  } finally {
    await idb.close();
    await deleteDB(name);
  }
  const method =
    `${n.toLocaleString('en-US')} messages of ${CONTENTS / 1024} KiB contents (a tenth locked, a fifth deferred). ` +
    'Level = V8 heap used + external (ArrayBuffers), after two full GCs; peak = highest level sampled on every event-loop turn during the call, minus the level before; retained = level after the call and two full GCs with the result still referenced. The control row reads contents on purpose and must show them, or the suite fails.';
  return {
    suite: 'memory',
    title: 'Memory: getAllMessages and stats never load contents',
    date: new Date().toISOString(),
    machine: machine('--expose-gc --max-semi-space-size=64'),
    sizes: { memoryN: n, contentsBytes: CONTENTS },
    tables: [],
    memory: [
      { id: 'memory-engine', title: 'MemoryEngine (Node)', method, rows: memoryRows },
      {
        id: 'indexeddb-fake',
        title: 'IndexedDbEngine on fake-indexeddb (Node)',
        method: `${method} fake-indexeddb keeps every value as a structured clone and clones again on each read, so a contents read shows as a copy.`,
        rows: idbRows,
      } satisfies MemoryTable,
    ],
  };
}
