/**
 * When to flush. The scheduler runs a {@link Flusher} pass when:
 * - it starts, and when the page becomes visible again (`visibilitychange`);
 * - the network comes back (`online`): first it wakes the messages that waited for it;
 * - the engine reports new mail (`stored` change events, from this tab or any other);
 * - the next stored retry time is reached: one timer, set from the engine's `nextDueAt()`
 *   and re-set after every pass and every change event; it never polls.
 * DOM-free: it takes the event targets and timers it listens to, so it runs in a page and in
 * tests (the service worker runs single passes from its `sync` event instead).
 */
import type { Clock, StorageEngine } from '@mailspool/core';
import type { Flusher, FlushReport, Timers } from './flusher.js';
import { nextDueAt, wake } from './outbox.js';

/** The subset of EventTarget the scheduler listens on. */
export interface Listenable {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** Options of {@link FlushScheduler}. */
export interface SchedulerOptions {
  readonly flusher: Flusher;
  readonly engine: StorageEngine;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Where `online`/`offline` fire (`window` or `self`). */
  readonly network?: Listenable;
  /** Where `visibilitychange` fires (`document`), with whether the page is visible now. */
  readonly visibility?: Listenable & { readonly visibilityState?: string };
  /** Called after each pass (for the UI); errors of the pass arrive as `error`. */
  readonly onPass?: (report: FlushReport | null, error?: unknown) => void;
}

/** Timers longer than this overflow to 1 ms in browsers (2^31 - 1 ms); re-check after an hour instead. */
const MAX_TIMER_MS = 60 * 60_000;
/** Least delay of a timer when a pass found nothing to claim, so inconsistent meta can't spin. */
const IDLE_GUARD_MS = 1_000;

/** Runs flusher passes on events and at the next retry time. */
export class FlushScheduler {
  readonly #o: SchedulerOptions;
  #timer: unknown;
  #timerAt: number | null = null;
  #unsubscribe: (() => void) | undefined;
  #started = false;
  #rescheduling: Promise<void> | undefined;
  #rescheduleAgain = false;
  #lastClaimed = 1;

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  /** When the timer will fire (epoch ms), `null` when none is set; for the UI and tests. */
  get nextRunAt(): number | null {
    return this.#timerAt;
  }

  /** Subscribes to the engine and the events, then flushes once. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#unsubscribe = this.#o.engine.subscribe?.((event) => {
      if (event.type === 'stored') void this.kick();
      else void this.reschedule();
    });
    this.#o.network?.addEventListener('online', this.#onOnline);
    this.#o.visibility?.addEventListener('visibilitychange', this.#onVisibility);
    void this.kick();
  }

  /** Stops listening and clears the timer. A pass already running finishes. */
  stop(): void {
    this.#started = false;
    this.#unsubscribe?.();
    this.#o.network?.removeEventListener('online', this.#onOnline);
    this.#o.visibility?.removeEventListener('visibilitychange', this.#onVisibility);
    this.#clearTimer();
  }

  /** Runs a pass now, then re-sets the timer. Never rejects (errors go to `onPass`). */
  async kick(): Promise<void> {
    if (!this.#started) return;
    try {
      const report = await this.#o.flusher.flush();
      this.#lastClaimed = report.claimed;
      this.#o.onPass?.(report);
    } catch (error) {
      this.#o.onPass?.(null, error);
    }
    await this.reschedule();
  }

  /** Wakes what waited for `kinds` (e.g. after the settings changed), then flushes. */
  async wakeAndKick(kinds: Parameters<typeof wake>[1]): Promise<void> {
    try {
      await wake(this.#o.engine, kinds, this.#o.clock.now());
    } catch (error) {
      this.#o.onPass?.(null, error);
    }
    await this.kick();
  }

  /** Re-reads the stored retry times and sets the one timer. Coalesces concurrent calls. */
  reschedule(): Promise<void> {
    if (this.#rescheduling) {
      this.#rescheduleAgain = true;
      return this.#rescheduling;
    }
    this.#rescheduling = (async () => {
      do {
        this.#rescheduleAgain = false;
        await this.#setTimer();
      } while (this.#rescheduleAgain && this.#started);
    })()
      .catch((error) => this.#o.onPass?.(null, error))
      .finally(() => {
        this.#rescheduling = undefined;
      });
    return this.#rescheduling;
  }

  async #setTimer(): Promise<void> {
    if (!this.#started) return;
    const now = this.#o.clock.now();
    const due = await nextDueAt(this.#o.engine);
    if (!this.#started) return;
    this.#clearTimer();
    if (due === null) return;
    // A message "due now" that the last pass could not claim (another tab held it a moment
    // ago) is looked at again shortly, not in a tight loop.
    const floor = this.#lastClaimed === 0 ? IDLE_GUARD_MS : 0;
    const delay = Math.min(Math.max(due - now, floor), MAX_TIMER_MS);
    this.#timerAt = now + delay;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = null;
      void this.kick();
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = null;
  }

  readonly #onOnline = (): void => {
    void this.wakeAndKick(['offline']);
  };

  readonly #onVisibility = (): void => {
    if (this.#o.visibility?.visibilityState !== 'hidden') void this.kick();
  };
}
