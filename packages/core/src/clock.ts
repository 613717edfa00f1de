/** The injectable clock: every engine reads time through one, so tests control time without sleeping. */

/** A source of the current time in epoch milliseconds. */
export interface Clock {
  now(): number;
}

/** The wall clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to; for tests and simulations. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms` (must be ≥ 0) and returns the new time. */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('advance(ms) needs a finite ms >= 0');
    this.#now += ms;
    return this.#now;
  }

  /** Sets the time; it may not go backwards. */
  set(time: number): void {
    if (!Number.isFinite(time) || time < this.#now) {
      throw new TypeError('set(time) needs a finite time not before now');
    }
    this.#now = time;
  }
}
