/**
 * Internal (used by memory.ts and chromium.ts): the two rules every memory table must pass, or
 * the suite fails. A control row that reads contents on purpose must show them (so a blind
 * meter can't pass), and no other row may come near loading the queue's contents.
 */
import { verify } from '../lib/harness.js';
import type { MemoryRow } from '../lib/report.js';

const MIB = 1024 * 1024;

/**
 * Messages whose contents a control row reads: a tenth of the queue, but at least 1000, so that
 * in a tiny smoke run the read still dwarfs the heap's own noise (never more than the queue).
 */
export const controlReads = (n: number): number => Math.min(n, Math.max(1000, Math.floor(n / 10)));

/** Throws unless a control that read (and kept) `read` bytes peaked and retained ≥ 90 % of them. */
export function verifyControlSeen(
  measured: { readonly peakBytes: number; readonly retainedBytes: number },
  read: number,
): void {
  verify(
    // 1 MiB of slack for the heap's own ups and downs around a GC (it matters only in smoke runs).
    measured.peakBytes >= 0.9 * read - MIB && measured.retainedBytes >= 0.9 * read - MIB,
    `the meter missed a contents load: ${measured.peakBytes} B peak, ${measured.retainedBytes} B retained for ${read} B read`,
  );
}

/**
 * Throws when a non-control row peaked above a quarter of the contents stored: loading contents
 * would cost at least their whole size, while ids and rows cost a few hundred bytes per message
 * (2 MiB of slack covers fixed costs that dominate tiny smoke-run queues).
 */
export function verifyNoContentsLoaded(rows: readonly MemoryRow[]): void {
  for (const row of rows) {
    if (row.control) continue;
    verify(
      row.peakBytes < row.contentsBytes / 4 + 2 * MIB,
      `${row.label} peaked at ${row.peakBytes} B: contents (${row.contentsBytes} B) loaded?`,
    );
  }
}
