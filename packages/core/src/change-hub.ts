/** `ChangeHub`: a small listener registry that engines use to deliver change events in-process. */
import type { ChangeEvent, ChangeListener } from './types.js';

/** Delivers change events to listeners; a throwing listener never affects the write or other listeners. */
export class ChangeHub {
  readonly #listeners = new Set<ChangeListener>();

  /** Adds a listener; returns the function that removes it (idempotent). */
  subscribe(listener: ChangeListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('subscribe needs a function');
    // Wrap so that subscribing the same function twice gives two independent subscriptions.
    const entry: ChangeListener = (event) => listener(event);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Number of current subscriptions. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Calls every listener with `event` (nothing when `ids` is empty). */
  emit(event: ChangeEvent): void {
    if (event.ids.length === 0) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug must not turn a committed write into a failure.
        reportListenerError(error);
      }
    }
  }
}

function reportListenerError(error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === 'function') report(error);
  else console.error('mailspool: a change listener threw', error);
}
