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
 *
 * Where `BroadcastChannel` is missing (Safari before 15.4) a page posts through `localStorage`
 * instead: other documents of the origin get a `storage` event for each write to it, the
 * transport cross-tab libraries used before BroadcastChannel existed. Workers have no
 * `localStorage`; there, as in a page that can't use it (storage blocked), events reach this
 * context's subscribers only.
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

/** What the bridge needs of a cross-context transport: BroadcastChannel, or its fallback. */
interface Channel {
  postMessage(event: ChangeEvent): void;
  close(): void;
}

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
  #channel: Channel | null | undefined;
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

  #open(): Channel | null {
    if (this.#channel !== undefined || this.#closed) return this.#channel ?? null;
    const receive = (data: unknown) => {
      if (isChangeEvent(data)) this.#hub.emit(data);
    };
    const channel =
      typeof BroadcastChannel === 'function'
        ? broadcastChannel(channelName(this.#name), receive)
        : storageEventChannel(channelName(this.#name), receive);
    // A page going away posts what is pending first (its timers may never run).
    if (channel) globalThis.addEventListener?.('pagehide', this.#onPageHide);
    this.#channel = channel;
    return channel;
  }
}

function broadcastChannel(name: string, receive: (data: unknown) => void): Channel {
  const channel = new BroadcastChannel(name);
  channel.onmessage = (message: MessageEvent) => receive(message.data);
  // Node's BroadcastChannel keeps the process alive; a change feed must not.
  (channel as { unref?: () => void }).unref?.();
  return channel;
}

/**
 * The fallback transport: each post writes the event under `key` and removes it again. Every
 * other document of the origin gets a `storage` event carrying the written value (the removal's
 * event has none and is ignored); the writer itself gets none. A nonce makes two equal events in
 * a row two writes. `null` when there is no usable `localStorage` (workers, storage blocked).
 */
function storageEventChannel(key: string, receive: (data: unknown) => void): Channel | null {
  let storage: Storage;
  try {
    storage = globalThis.localStorage;
    if (!storage || typeof globalThis.addEventListener !== 'function') return null;
  } catch {
    // Reading `localStorage` throws where the user blocked site data.
    return null;
  }
  const onStorage = (event: StorageEvent) => {
    if (event.key !== key || event.newValue === null) return;
    try {
      receive((JSON.parse(event.newValue) as { event?: unknown }).event);
    } catch {
      // Not ours (another script wrote the key): nothing to announce.
    }
  };
  globalThis.addEventListener('storage', onStorage);
  // WebKit sends `storage` events only to documents whose storage area is loaded, and a
  // listener alone does not load it: one read does.
  try {
    storage.getItem(key);
  } catch {
    // Unreadable now: the events may still come; nothing else to do.
  }
  const nonce = `${Math.random().toString(36).slice(2)}:`;
  let sent = 0;
  return {
    postMessage(event) {
      // Throws when localStorage is full or read-only (old Safari's private mode); the caller
      // treats a failed post as a lost notification.
      storage.setItem(key, JSON.stringify({ event, nonce: nonce + sent++ }));
      storage.removeItem(key);
    },
    close() {
      globalThis.removeEventListener('storage', onStorage);
    },
  };
}

const now = (): number => globalThis.performance?.now() ?? Date.now();
