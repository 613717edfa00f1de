/**
 * Internal (used by engine.ts and session.ts): change events for one database, delivered to the
 * engine's own subscribers at once and to every other tab and worker of the origin through a
 * BroadcastChannel named after the database.
 *
 * Posts to the channel are coalesced: events published in one turn go out together at the end
 * of it, and after a post the next one waits until {@link POST_GAP_MS} have passed, merging
 * consecutive events of the same type meanwhile. In Chromium every `postMessage` on a
 * BroadcastChannel is a trip through the browser process; one post per write made
 * `storeMessage` with `durability: 'relaxed'` ~0.8× of raw idb in a loop of single writes
 * (bench/README.md, issue 8), and it is ~1.0× without. Nothing is dropped or reordered: every
 * id reaches other contexts, in publish order, at most {@link POST_GAP_MS} later (a lone write's
 * event still goes out in the turn it committed), and `close()` (or the page being hidden for
 * good, `pagehide`) posts what is pending first. Messages keep the plain `ChangeEvent` shape, so
 * tabs running older code still understand them.
 */
import type { ChangeEvent, ChangeListener } from '@mailspool/core';
import { ChangeHub } from '@mailspool/core/engine';

const TYPES = new Set<string>(['stored', 'updated', 'deleted']);

/**
 * Least time between two posts to the channel while writes keep coming (one frame): bounds the
 * delay an event can see in another tab. Browsers may run timers later in a hidden page; its
 * pending events are posted on `pagehide` at the latest.
 */
export const POST_GAP_MS = 16;

/** An event waiting to be posted; `ids` keeps each id once, in first-seen order. */
interface Pending {
  readonly type: ChangeEvent['type'];
  readonly ids: Set<string>;
}

type Timer = ReturnType<typeof setTimeout>;

/** The BroadcastChannel name an engine on database `name` uses. */
export function channelName(name: string): string {
  return `mailspool:indexeddb:${name}`;
}

function isChangeEvent(value: unknown): value is ChangeEvent {
  if (typeof value !== 'object' || value === null) return false;
  const { type, ids } = value as { type?: unknown; ids?: unknown };
  return (
    typeof type === 'string' &&
    TYPES.has(type) &&
    Array.isArray(ids) &&
    ids.every((id) => typeof id === 'string')
  );
}

export class ChangeBridge {
  readonly #hub = new ChangeHub();
  readonly #name: string;
  #channel: BroadcastChannel | null | undefined;
  #closed = false;
  /** Events not yet posted to the channel, in publish order. */
  #pending: Pending[] = [];
  /** A flush is scheduled (a microtask, or a timer when the last post was too recent). */
  #scheduled = false;
  #timer: Timer | undefined;
  /** `performance.now()` (or `Date.now()`) of the last post. */
  #lastPost = Number.NEGATIVE_INFINITY;
  readonly #onPageHide = () => this.#flush();

  constructor(name: string) {
    this.#name = name;
  }

  /** Adds a listener for changes made here and in other contexts; returns its unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    const unsubscribe = this.#hub.subscribe(listener);
    this.#open();
    return unsubscribe;
  }

  /**
   * Announces a committed change: to this engine's subscribers at once, to other contexts with
   * the next post (see the module's header). Never throws: a committed write must not turn into
   * a failure.
   */
  publish(type: ChangeEvent['type'], ids: readonly string[]): void {
    if (ids.length === 0 || this.#closed) return;
    this.#hub.emit({ type, ids: [...ids] });
    if (!this.#open()) return;
    const last = this.#pending[this.#pending.length - 1];
    if (last?.type === type) for (const id of ids) last.ids.add(id);
    else this.#pending.push({ type, ids: new Set(ids) });
    if (this.#scheduled) return;
    this.#scheduled = true;
    const wait = this.#lastPost + POST_GAP_MS - now();
    if (wait <= 0) {
      queueMicrotask(() => this.#flush());
    } else {
      const timer = setTimeout(() => this.#flush(), wait);
      // Node: pending change events must not keep the process alive (nor does the channel).
      (timer as { unref?: () => void }).unref?.();
      this.#timer = timer;
    }
  }

  /** Posts what is pending, then stops listening and announcing. */
  close(): void {
    this.#flush();
    this.#closed = true;
    globalThis.removeEventListener?.('pagehide', this.#onPageHide);
    this.#channel?.close();
    this.#channel = null;
  }

  /** Posts every pending event, in order, one message each. */
  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    this.#lastPost = now();
    for (const { type, ids } of pending) {
      try {
        this.#channel?.postMessage({ type, ids: [...ids] } satisfies ChangeEvent);
      } catch {
        // A closed or unclonable channel only costs other tabs a notification; they still read
        // the truth from IndexedDB.
      }
    }
  }

  #open(): BroadcastChannel | null {
    if (this.#channel !== undefined || this.#closed) return this.#channel ?? null;
    if (typeof BroadcastChannel !== 'function') {
      this.#channel = null;
      return null;
    }
    const channel = new BroadcastChannel(channelName(this.#name));
    channel.onmessage = (message: MessageEvent) => {
      if (isChangeEvent(message.data)) this.#hub.emit(message.data);
    };
    // Node's BroadcastChannel keeps the process alive; a change feed must not.
    (channel as { unref?: () => void }).unref?.();
    // A page going away posts what is pending first (its timers may never run).
    globalThis.addEventListener?.('pagehide', this.#onPageHide);
    this.#channel = channel;
    return channel;
  }
}

const now = (): number => globalThis.performance?.now() ?? Date.now();
