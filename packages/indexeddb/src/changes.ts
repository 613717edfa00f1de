/**
 * Internal (used by engine.ts and session.ts): change events for one database, delivered to the
 * engine's own subscribers at once and to every other tab and worker of the origin through a
 * BroadcastChannel named after the database.
 */
import { type ChangeEvent, ChangeHub, type ChangeListener } from '@mailspool/core';

const TYPES = new Set<string>(['stored', 'updated', 'deleted']);

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

  constructor(name: string) {
    this.#name = name;
  }

  /** Adds a listener for changes made here and in other contexts; returns its unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    const unsubscribe = this.#hub.subscribe(listener);
    this.#open();
    return unsubscribe;
  }

  /** Announces a committed change. Never throws: a committed write must not turn into a failure. */
  publish(type: ChangeEvent['type'], ids: readonly string[]): void {
    if (ids.length === 0 || this.#closed) return;
    const event: ChangeEvent = { type, ids: [...ids] };
    this.#hub.emit(event);
    try {
      this.#open()?.postMessage(event);
    } catch {
      // A closed or unclonable channel only costs other tabs a notification; they still read
      // the truth from IndexedDB.
    }
  }

  /** Stops listening and announcing. */
  close(): void {
    this.#closed = true;
    this.#channel?.close();
    this.#channel = null;
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
    this.#channel = channel;
    return channel;
  }
}
