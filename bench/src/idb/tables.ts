/**
 * The IndexedDB tables: which rows each has, what they mean, and which row each ratio column
 * divides by. Shared by the Chromium suite and the Node (fake-indexeddb) suite; Workbox rows
 * exist only in Chromium (its Queue needs a service worker).
 */
import { type BaselineSpec, chosenRows, type RowSpec, type TableSpec } from '../lib/harness.js';
import { SEED_BATCH } from './messages.js';
import { BATCH } from './workloads.js';

const KIB10 = '10 KiB';

export interface IdbSizes {
  /** Messages stored per run. */
  readonly n: number;
  /** Messages in the queue one drain run empties (`BENCH_DRAIN_SIZE`). */
  readonly drainN: number;
  /** Measured rounds of the drain table (`BENCH_DRAIN_ROUNDS`). */
  readonly drainRounds: number;
  /** Measured rounds of the other tables. */
  readonly rounds: number;
  /** Messages in the queue that stats() counts. */
  readonly statsN: number;
  /** stats() calls per run. */
  readonly statsCalls: number;
  /** Only these tables (`BENCH_TABLES`); `null`: all. */
  readonly tables: ReadonlySet<string> | null;
  /** Only these rows (`BENCH_ROWS`); `null`: all. */
  readonly rows: ReadonlySet<string> | null;
}

function columns(workbox: boolean, dexie = true): BaselineSpec[] {
  return [
    { key: 'limit', label: 'vs limit', row: 'raw-strict' },
    ...(dexie ? [{ key: 'dexie', label: 'vs Dexie', row: 'dexie' }] : []),
    ...(workbox ? [{ key: 'workbox', label: 'vs Workbox', row: 'workbox' }] : []),
  ];
}

const relaxedLimit = { limit: 'raw-relaxed' };

/** What one run of a table does `n` of: stats() calls, messages drained, or messages stored. */
export function runSize(sizes: IdbSizes, table: string): number {
  if (table === 'stats') return sizes.statsCalls;
  return table === 'drain' ? sizes.drainN : sizes.n;
}

/** Measured rounds of a table: the drain table has its own knob (a 10,000-message run is long). */
export function tableRounds(sizes: IdbSizes, table: string): number {
  return table === 'drain' ? sizes.drainRounds : sizes.rounds;
}

export function idbTables(sizes: IdbSizes, workbox: boolean): TableSpec[] {
  const wanted = (table: TableSpec) => sizes.tables === null || sizes.tables.has(table.id);
  return allTables(sizes, workbox)
    .filter(wanted)
    .map((table) => chosenRows(table, sizes.rows));
}

function allTables(sizes: IdbSizes, workbox: boolean): TableSpec[] {
  const wb = (row: RowSpec): RowSpec[] => (workbox ? [row] : []);
  return [
    {
      id: 'enqueue-one',
      title: `storeMessage of a ${KIB10} message, one at a time`,
      unit: 'msgs/s',
      workload: `${sizes.n} messages (meta + ${KIB10}), each awaited before the next; a fresh database per run.`,
      baselines: columns(workbox),
      rows: [
        { id: 'raw-strict', label: 'raw idb, 1 message per readwrite tx, strict — **limit**' },
        { id: 'engine-strict', label: '**engine** `storeMessage`, strict (default)' },
        { id: 'raw-relaxed', label: 'raw idb, 1 message per tx, relaxed — limit (relaxed)' },
        {
          id: 'engine-relaxed',
          label: '**engine** `storeMessage`, relaxed',
          against: relaxedLimit,
        },
        { id: 'dexie', label: 'Dexie 4, 1 message per `rw` transaction (default durability)' },
        ...wb({ id: 'workbox', label: 'Workbox `Queue.pushRequest` (service worker; relaxed)' }),
      ],
    },
    {
      id: 'enqueue-batch',
      title: `storeMessages in batches of ${BATCH}`,
      unit: 'msgs/s',
      workload: `${sizes.n} messages (meta + ${KIB10}) in batches of ${BATCH}, one transaction each.`,
      baselines: columns(false),
      rows: [
        { id: 'raw-strict', label: `raw idb, ${BATCH} per tx, strict — **limit**` },
        { id: 'engine-strict', label: `**engine** \`storeMessages\` ×${BATCH}, strict` },
        { id: 'raw-relaxed', label: `raw idb, ${BATCH} per tx, relaxed — limit (relaxed)` },
        {
          id: 'engine-relaxed',
          label: `**engine** \`storeMessages\` ×${BATCH}, relaxed`,
          against: relaxedLimit,
        },
        { id: 'dexie', label: `Dexie 4 \`bulkAdd\` ×${BATCH} in one transaction` },
      ],
    },
    {
      id: 'drain',
      title: `drain: claimDue(${BATCH}) + read contents + fenced delete`,
      unit: 'msgs/s',
      workload: `a queue of ${sizes.drainN.toLocaleString('en-US')} due messages (seeded untimed, ${SEED_BATCH} per transaction) drained: claim ${BATCH}, read each one's contents, delete the batch with its leases; repeat until empty.`,
      baselines: columns(workbox),
      rows: [
        {
          id: 'raw-strict',
          label: `raw idb, the engine's transactions (claim tx by \`getAll\` + 1 read tx per message + delete tx), strict — **limit**`,
        },
        {
          id: 'raw-cursor-strict',
          label: 'raw idb, the same but claiming with a cursor (`continue` + `update` per row)',
        },
        {
          id: 'engine-strict',
          label:
            '**engine** claimDue + `getMessageContents` awaited one by one + deleteMessages, strict',
        },
        {
          id: 'engine-concurrent-strict',
          label: '**engine**, the 50 `getMessageContents` issued together (`Promise.all`), strict',
        },
        {
          id: 'engine-concurrent-relaxed',
          label:
            "**engine**, the 50 reads issued together, relaxed (Dexie's durability; vs limit: the strict raw row)",
        },
        {
          id: 'engine-claim-messages-strict',
          label: `**engine** \`claimDueMessages\` (claim + contents in 1 tx) + deleteMessages, strict`,
        },
        {
          id: 'engine-claim-messages-relaxed',
          label:
            "**engine** `claimDueMessages` + deleteMessages, relaxed (Dexie's durability; vs limit: the strict raw row)",
        },
        {
          id: 'raw-batch-read-strict',
          label: `raw idb, contents of the ${BATCH} read in one tx (a \`getMessages(ids)\` prototype: 3 tx per ${BATCH}), strict`,
        },
        {
          id: 'raw-one-tx-strict',
          label: `raw idb, take + read + delete in one tx per ${BATCH} (no leases), strict`,
        },
        { id: 'dexie', label: 'Dexie 4: claim tx, `bulkGet` contents, fenced `bulkDelete` tx' },
        ...wb({ id: 'workbox', label: 'Workbox `shiftRequest` + read body (service worker)' }),
      ],
    },
    {
      id: 'stats',
      title: `stats over ${sizes.statsN.toLocaleString('en-US')} messages`,
      unit: 'calls/s',
      workload: `${sizes.statsCalls} calls over a queue of ${sizes.statsN} (${KIB10} each; a tenth locked, a fifth deferred), each result checked.`,
      baselines: [
        { key: 'limit', label: 'vs limit', row: 'raw-stats' },
        { key: 'dexie', label: 'vs Dexie', row: 'dexie-stats' },
        ...(workbox ? [{ key: 'workbox', label: 'vs Workbox', row: 'workbox-stats' }] : []),
      ],
      rows: [
        { id: 'raw-stats', label: 'raw idb, the same four index reads in one tx — **limit**' },
        { id: 'engine-stats', label: '**engine** `stats()`' },
        { id: 'dexie-stats', label: 'Dexie 4, the same counts in one transaction' },
        ...wb({ id: 'workbox-stats', label: 'Workbox `Queue.size()` (a total only)' }),
      ],
    },
  ];
}
