/**
 * The injectable timer: lease renewal and every SMTP timeout go through one, so tests move time
 * with a `ManualClock` instead of sleeping.
 */
import type { ManualClock } from '@mailspool/core';

/** Schedules callbacks; `setTimeout`/`clearTimeout` semantics. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The runtime's own timers. */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
}

/**
 * Timers driven by a {@link ManualClock}: nothing fires until {@link ManualTimers.advance}, which
 * moves the clock to each due timer in turn and runs it. For tests and simulations.
 */
export class ManualTimers implements Timers {
  readonly clock: ManualClock;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;

  constructor(clock: ManualClock) {
    this.clock = clock;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#pending.set(seq, { at: this.clock.now() + delay, seq, callback });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.#pending.delete(handle);
  }

  /** How many timers are waiting. */
  get size(): number {
    return this.#pending.size;
  }

  /** When the next timer fires, or `undefined` when none waits. */
  nextAt(): number | undefined {
    let next: number | undefined;
    for (const { at } of this.#pending.values()) if (next === undefined || at < next) next = at;
    return next;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, in order, each at
   * its own time. Between timers it lets pending promise callbacks and already-completed I/O
   * run, so that work a timer starts (a lease renewal) finishes before the next one.
   * Resolves with the new time.
   */
  async advance(ms: number): Promise<number> {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('advance(ms) needs a finite ms >= 0');
    const end = this.clock.now() + ms;
    // Bounded: each round removes one timer; timers set while firing that fall due before `end`
    // are fired too, up to a generous cap that only a runaway timer loop reaches.
    for (let round = 0; round < 10_000; round++) {
      const due = this.#nextDue(end);
      if (!due) break;
      this.#pending.delete(due.seq);
      if (due.at > this.clock.now()) this.clock.set(due.at);
      due.callback();
      await settle();
    }
    if (end > this.clock.now()) this.clock.set(end);
    await settle();
    return this.clock.now();
  }

  #nextDue(end: number): Pending | undefined {
    let best: Pending | undefined;
    for (const timer of this.#pending.values()) {
      if (timer.at > end) continue;
      if (!best || timer.at < best.at || (timer.at === best.at && timer.seq < best.seq))
        best = timer;
    }
    return best;
  }
}

/**
 * Lets queued promise reactions run: a macrotask turn of the real event loop (not a sleep; no
 * time passes on any clock a test reads).
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => globalThis.setTimeout(resolve, 0));
}
