/**
 * Peak memory of `getAllMessages()` and `stats()` over a large queue (100,000 messages by
 * default, `BENCH_MEMORY_SIZE`): neither may load contents. Each message carries 8 KiB of
 * contents, so loading them would show as hundreds of MiB; each table also has a control row
 * that does read contents (of a tenth of the queue) and must show at least those bytes, proving
 * the meter would have seen a load.
 */
import 'fake-indexeddb/auto';
import { MemoryEngine, type MessageId, type StorageEngine } from '@mailspool/core';
import { IndexedDbEngine } from '@mailspool/indexeddb';
import { deleteDB } from 'idb';
import { verifyStats } from '../idb/messages.js';
import type { BenchConfig } from '../lib/config.js';
import { verify } from '../lib/harness.js';
import { type MemoryRow, type MemoryTable, machine, type SuiteResult } from '../lib/report.js';
import { controlReads, verifyControlSeen, verifyNoContentsLoaded } from './checks.js';
import { measure } from './meter.js';
import { CONTENTS, seedQueue } from './seed.js';

async function measureEngine(
  label: string,
  engine: StorageEngine,
  n: number,
  log: (line: string) => void,
): Promise<MemoryRow[]> {
  const started = performance.now();
  const seeding = await engine.connect();
  const expected = await seedQueue(seeding, n);
  await seeding.close();
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
    verifyStats(got, expected);
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
    // Control: read the contents of a tenth of the queue and keep them; the meter must see them.
    const ids: MessageId[] = all.result.slice(0, controlReads(n));
    const control = await measure(async () => {
      const out: Uint8Array[] = [];
      for (const id of ids) out.push(await session.getMessageContents(id));
      return out;
    });
    const read = control.result.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    verify(read === ids.length * CONTENTS, `control read ${read} bytes`);
    verifyControlSeen(control, read);
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
    // The claim of this suite: neither call comes anywhere near loading contents.
    verifyNoContentsLoaded(rows);
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
