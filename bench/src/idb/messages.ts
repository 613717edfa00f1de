/**
 * The benchmark message (the bench method's (bench/README.md)): meta `{sender, 3 recipients, attempts, timestamp}`
 * plus 10 KiB of random bytes. The first 8 bytes of each body carry its index and the run's tag,
 * so a run can prove it stored or read back exactly the messages it was given.
 */
import type { MessageMeta, QueueStats } from '@mailspool/core';
import { verify } from '../lib/harness.js';

export const CONTENT_BYTES = 10 * 1024;

/** Messages per transaction when a run seeds its queue (untimed setup). */
export const SEED_BATCH = 100;

/** `n` fresh bodies of `size` bytes for run `tag`: random filler, header = [index, tag] (u32 LE). */
export function makeBodies(n: number, tag: number, size = CONTENT_BYTES): Uint8Array[] {
  const filler = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) {
    crypto.getRandomValues(filler.subarray(at, Math.min(size, at + 65_536)));
  }
  return Array.from({ length: n }, (_, i) => {
    const body = filler.slice();
    const view = new DataView(body.buffer);
    view.setUint32(0, i, true);
    view.setUint32(4, tag, true);
    return body;
  });
}

export function makeMeta(i: number): MessageMeta {
  return {
    sender: 'alice@example.com',
    recipients: ['bob@example.org', 'carol@example.net', 'dave@example.com'],
    attempts: 0,
    timestamp: 1_764_000_000_000 + i,
  };
}

/** Counts bodies seen and checks, at the end, that they are exactly indices 0..n-1 of `tag`. */
export class Tally {
  readonly #seen = new Set<number>();
  #bytes = 0;
  #wrong = 0;

  constructor(readonly tag: number) {}

  add(body: Uint8Array | ArrayBuffer): void {
    const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : body;
    this.#bytes += bytes.byteLength;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 8 || view.getUint32(4, true) !== this.tag) {
      this.#wrong++;
      return;
    }
    this.#seen.add(view.getUint32(0, true));
  }

  get count(): number {
    return this.#seen.size;
  }

  /** Throws unless exactly the `n` bodies of this tag, `size` bytes each, were seen once each. */
  check(n: number, size = CONTENT_BYTES): string {
    verify(this.#wrong === 0, `${this.#wrong} bodies of another run or truncated`);
    verify(this.#seen.size === n, `${this.#seen.size} distinct bodies, expected ${n}`);
    for (let i = 0; i < n; i++) verify(this.#seen.has(i), `body ${i} missing`);
    verify(this.#bytes === n * size, `${this.#bytes} bytes, expected ${n * size}`);
    return `${n} msgs, ${this.#bytes} bytes`;
  }
}

/**
 * The stats of the benchmarks' seeded queues of `n`: a tenth locked, a fifth deferred, the rest
 * due (the stats table and both memory suites seed this shape).
 */
export function queueShape(n: number): QueueStats {
  const active = Math.floor(n / 10);
  const deferred = Math.floor(n / 5);
  return { total: n, active, deferred, due: n - active - deferred };
}

/** Throws unless `got` has exactly the counts of `expected`. */
export function verifyStats(got: QueueStats, expected: QueueStats, what = 'stats'): void {
  verify(
    got.total === expected.total &&
      got.active === expected.active &&
      got.deferred === expected.deferred &&
      got.due === expected.due,
    `${what} ${JSON.stringify(got)} ≠ ${JSON.stringify(expected)}`,
  );
}
