/**
 * `MemoryEngine`: the reference engine. All sessions of one engine share one in-process store;
 * each primitive runs synchronously between awaits, so it is atomic by construction.
 */
import { ChangeHub } from './change-hub.js';
import type { Clock } from './clock.js';
import {
  assertCurrent,
  claimedRecord,
  compareDue,
  isActive,
  isCurrent,
  isDeferred,
  isDue,
  isWaiting,
  lockRecord,
  type MessageRecord,
  notFound,
  renewRecord,
  storedRecord,
  unlockRecord,
  writableRecord,
} from './record.js';
import {
  type AttemptChange,
  BaseSession,
  DEFAULT_MAX_MESSAGE_BYTES,
  type ListKind,
  type PreparedMessage,
} from './session.js';
import type {
  Capabilities,
  ChangeEvent,
  ChangeListener,
  DeleteManyResult,
  EngineOptions,
  Lease,
  MessageId,
  MessageMeta,
  MetaValue,
  QueueStats,
  StorageEngine,
  StorageSession,
} from './types.js';
import { assertMetaSize, cloneMeta } from './validate.js';

interface StoredMessage {
  record: MessageRecord;
  contents: Uint8Array | null;
}

/**
 * The state of a memory store. Pass the same `MemoryStore` to several engines to give them one
 * store (for instance to simulate a second process in tests).
 */
export class MemoryStore {
  /** @internal */
  readonly messages = new Map<MessageId, StoredMessage>();
  /** @internal */
  readonly changes = new ChangeHub();
}

/** Options of {@link MemoryEngine}. */
export interface MemoryEngineOptions extends EngineOptions {
  /** The store to use; a new empty one by default. */
  readonly store?: MemoryStore;
}

/** The in-memory engine: fast, not persistent, visible only inside this JavaScript realm. */
export class MemoryEngine implements StorageEngine {
  readonly supports: Capabilities;
  readonly store: MemoryStore;
  readonly #clock: Clock | undefined;

  constructor(options: MemoryEngineOptions = {}) {
    this.store = options.store ?? new MemoryStore();
    this.#clock = options.clock;
    this.supports = {
      persistent: false,
      shared: false,
      changeEvents: true,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    };
  }

  /** Opens a session on the shared store; never rejects. */
  async connect(): Promise<StorageSession> {
    return new MemorySession(this.store, {
      clock: this.#clock,
      maxMessageBytes: this.supports.maxMessageBytes,
    });
  }

  /** Calls `listener` after each change made through any session of this store. */
  subscribe(listener: ChangeListener): () => void {
    return this.store.changes.subscribe(listener);
  }
}

class MemorySession extends BaseSession {
  readonly #messages: Map<MessageId, StoredMessage>;
  readonly #changes: ChangeHub;

  constructor(store: MemoryStore, config: { clock: Clock | undefined; maxMessageBytes: number }) {
    super(config);
    this.#messages = store.messages;
    this.#changes = store.changes;
  }

  #emit(type: ChangeEvent['type'], ids: readonly MessageId[]): void {
    this.#changes.emit({ type, ids });
  }

  #get(id: MessageId): StoredMessage {
    const message = this.#messages.get(id);
    if (!message) throw notFound(id);
    return message;
  }

  protected async _claimMessageId(id: MessageId, now: number): Promise<boolean> {
    if (this.#messages.has(id)) return false;
    this.#messages.set(id, { record: claimedRecord(id, now), contents: null });
    this.#emit('stored', [id]);
    return true;
  }

  protected async _storeMessages(messages: readonly PreparedMessage[], now: number): Promise<void> {
    for (const m of messages) {
      if (this.#messages.has(m.id)) throw new TypeError(`id ${m.id} is taken`);
    }
    for (const m of messages) {
      const record = storedRecord(m.id, now, m.meta, m.contents.byteLength, m.retryAt);
      this.#messages.set(m.id, { record, contents: m.contents.slice() });
    }
    this.#emit(
      'stored',
      messages.map((m) => m.id),
    );
  }

  protected async _getMessageMeta(id: MessageId): Promise<MessageMeta> {
    const { record } = this.#get(id);
    return record.meta === null ? {} : cloneMeta(record.meta);
  }

  protected async _setMessageMeta(
    id: MessageId,
    meta: MessageMeta,
    lease: Lease | undefined,
  ): Promise<void> {
    const message = this.#messages.get(id);
    const record = writableRecord(message?.record, id, lease);
    message!.record = { ...record, meta };
    this.#emit('updated', [id]);
  }

  protected async _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ): Promise<void> {
    const message = this.#messages.get(id);
    const record = writableRecord(message?.record, id, lease);
    const meta: Record<string, MetaValue> = { ...(record.meta ?? {}) };
    if (value === undefined) delete meta[key];
    else meta[key] = value;
    assertMetaSize(meta);
    message!.record = { ...record, meta };
    this.#emit('updated', [id]);
  }

  protected async _getMessageContents(id: MessageId): Promise<Uint8Array> {
    const { contents } = this.#get(id);
    if (contents === null) throw notFound(id, 'contents of message');
    return contents.slice();
  }

  protected async _setMessageContents(id: MessageId, contents: Uint8Array): Promise<void> {
    const message = this.#get(id);
    message.contents = contents.slice();
    message.record = { ...message.record, size: contents.byteLength };
    this.#emit('updated', [id]);
  }

  protected async _setMessageRetry(
    id: MessageId,
    at: number,
    lease: Lease | undefined,
  ): Promise<void> {
    const message = this.#messages.get(id);
    const record = writableRecord(message?.record, id, lease);
    message!.record = { ...record, retryAt: at };
    this.#emit('updated', [id]);
  }

  protected async _lockMessage(id: MessageId, ttl: number, now: number): Promise<Lease | null> {
    const message = this.#get(id);
    const locked = lockRecord(message.record, ttl, now);
    if (!locked) return null;
    message.record = locked.record;
    this.#emit('updated', [id]);
    return locked.lease;
  }

  protected async _unlockMessage(id: MessageId): Promise<void> {
    const message = this.#messages.get(id);
    if (!message || message.record.lockedUntil === null) return;
    message.record = unlockRecord(message.record);
    this.#emit('updated', [id]);
  }

  protected async _renewLease(lease: Lease, ttl: number, now: number): Promise<Lease> {
    const message = this.#messages.get(lease.id);
    const renewed = renewRecord(message?.record, lease, ttl, now);
    message!.record = renewed.record;
    this.#emit('updated', [lease.id]);
    return renewed.lease;
  }

  protected async _releaseLease(lease: Lease): Promise<void> {
    const message = this.#messages.get(lease.id);
    assertCurrent(message?.record, lease);
    message!.record = unlockRecord(message!.record);
    this.#emit('updated', [lease.id]);
  }

  protected async _deleteMessage(id: MessageId, lease: Lease | undefined): Promise<void> {
    const message = this.#messages.get(id);
    if (lease !== undefined) assertCurrent(message?.record, lease);
    if (!message) return;
    this.#messages.delete(id);
    this.#emit('deleted', [id]);
  }

  protected async _commitAttempt(
    lease: Lease,
    change: AttemptChange,
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void> {
    const message = this.#messages.get(lease.id);
    assertCurrent(message?.record, lease);
    for (const m of messages) {
      if (this.#messages.has(m.id)) throw new TypeError(`id ${m.id} is taken`);
    }
    // Everything below is synchronous: the commit is atomic.
    if (change.delete) {
      this.#messages.delete(lease.id);
    } else {
      let record = message!.record;
      if (change.meta !== undefined) record = { ...record, meta: change.meta };
      if (change.retryAt !== undefined) record = { ...record, retryAt: change.retryAt };
      if (change.release) record = unlockRecord(record);
      message!.record = record;
    }
    for (const m of messages) {
      const record = storedRecord(m.id, now, m.meta, m.contents.byteLength, m.retryAt);
      this.#messages.set(m.id, { record, contents: m.contents.slice() });
    }
    this.#emit(change.delete ? 'deleted' : 'updated', [lease.id]);
    this.#emit(
      'stored',
      messages.map((m) => m.id),
    );
  }

  protected async _deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult> {
    const deleted: MessageId[] = [];
    const stale: MessageId[] = [];
    for (const lease of leases) {
      if (isCurrent(this.#messages.get(lease.id)?.record, lease)) {
        this.#messages.delete(lease.id);
        deleted.push(lease.id);
      } else {
        stale.push(lease.id);
      }
    }
    this.#emit('deleted', deleted);
    return { deleted, stale };
  }

  protected async _listMessages(
    kind: ListKind,
    now: number,
    dueBy: number | undefined,
  ): Promise<MessageId[]> {
    const ids: MessageId[] = [];
    for (const [id, { record }] of this.#messages) {
      if (
        kind === 'all' ||
        (kind === 'active' ? isActive(record, now) : isDeferred(record, now, dueBy))
      ) {
        ids.push(id);
      }
    }
    return ids;
  }

  protected async _claimDue(limit: number, ttl: number, now: number): Promise<Lease[]> {
    // Keep the `limit` oldest due records in a small sorted buffer: O(n log limit), no full sort.
    const chosen: MessageRecord[] = [];
    for (const { record } of this.#messages.values()) {
      if (!isDue(record, now)) continue;
      if (chosen.length === limit && compareDue(record, chosen[limit - 1]!) >= 0) continue;
      let at = chosen.length;
      while (at > 0 && compareDue(record, chosen[at - 1]!) < 0) at--;
      chosen.splice(at, 0, record);
      if (chosen.length > limit) chosen.pop();
    }
    const leases: Lease[] = [];
    for (const record of chosen) {
      const locked = lockRecord(record, ttl, now)!;
      this.#messages.get(record.id)!.record = locked.record;
      leases.push(locked.lease);
    }
    this.#emit(
      'updated',
      leases.map((lease) => lease.id),
    );
    return leases;
  }

  protected async _stats(now: number): Promise<QueueStats> {
    let active = 0;
    let deferred = 0;
    let due = 0;
    for (const { record } of this.#messages.values()) {
      if (isActive(record, now)) active++;
      else if (isWaiting(record, now)) deferred++;
      if (isDue(record, now)) due++;
    }
    return { total: this.#messages.size, active, deferred, due };
  }

  protected async _close(): Promise<void> {}
}
