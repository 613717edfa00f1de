/**
 * The memory page (bundled by chromium.ts; nothing else runs in it): `window.memoryBench` opens
 * an IndexedDbEngine, seeds it batch by batch, and runs one measured call at a time. A call keeps
 * its result in `kept` and returns only a small summary, so that the result stays in the heap for
 * the retained measurement and the checks (which allocate) run after it, in `check()`.
 */
import type { MessageId, QueueStats, StorageSession } from '@mailspool/core';
import { IndexedDbEngine } from '@mailspool/indexeddb';
import { queueShape, verifyStats } from '../idb/messages.js';
import { verify } from '../lib/harness.js';
import { CONTENTS, HOUR, lockTenth, storeBatch } from './seed.js';

export type MemoryCall = 'all' | 'stats' | 'control';

let engine: IndexedDbEngine | undefined;
let session: StorageSession | undefined;
/** Ids from the last `getAllMessages()`, the control row's reads come from them. */
let ids: MessageId[] = [];
/** The control's ids, sliced before its measurement so the slice is not counted. */
let controlIds: MessageId[] = [];
/** The result of the last measured call, alive until `release()`. */
let kept: unknown;
let later = 0;

const open = (): StorageSession => {
  if (!session) throw new Error('memoryBench.open() first');
  return session;
};

const memoryBench = {
  async open(name: string): Promise<void> {
    engine = new IndexedDbEngine({ name, durability: 'relaxed' });
    session = await engine.connect();
    later = Date.now() + HOUR;
  },
  /** Stores messages `from`…`from + count - 1` of a queue of `n` (seed.ts). */
  async store(from: number, count: number, n: number): Promise<void> {
    await storeBatch(open(), from, count, n, later);
  },
  async lock(n: number): Promise<void> {
    await lockTenth(open(), n);
  },
  /** Picks the control's ids (the first `count` listed) before it is measured. */
  prepareControl(count: number): number {
    controlIds = ids.slice(0, count);
    return controlIds.length;
  },
  /** The measured call. Resolves to a count only; the result itself stays in `kept`. */
  async run(call: MemoryCall): Promise<number> {
    const s = open();
    if (call === 'all') {
      const all = await s.getAllMessages();
      kept = all;
      return all.length;
    }
    if (call === 'stats') {
      kept = await s.stats();
      return 1;
    }
    const out: Uint8Array[] = [];
    for (const id of controlIds) out.push(await s.getMessageContents(id));
    kept = out;
    return out.length;
  },
  /** Checks the kept result of `call` (throws when wrong) and says what was verified. */
  check(call: MemoryCall, n: number): string {
    if (call === 'all') {
      const all = kept as MessageId[];
      verify(all.length === n, `getAllMessages: ${all.length} ids, expected ${n}`);
      verify(new Set(all).size === n, 'getAllMessages: duplicate ids');
      ids = all;
      return `${n} distinct ids`;
    }
    if (call === 'stats') {
      const got = kept as QueueStats;
      const expected = queueShape(n);
      verifyStats(got, expected);
      return JSON.stringify(got);
    }
    const read = (kept as Uint8Array[]).reduce((sum, bytes) => sum + bytes.byteLength, 0);
    verify(read === controlIds.length * CONTENTS, `control read ${read} bytes`);
    return `${read} bytes read`;
  },
  release(): void {
    kept = undefined;
  },
  async close(): Promise<void> {
    await session?.close();
    await engine?.close();
    session = undefined;
    engine = undefined;
    ids = [];
    controlIds = [];
  },
};

declare global {
  interface Window {
    memoryBench: typeof memoryBench;
  }
}

window.memoryBench = memoryBench;
