/**
 * `MemoryEngine`: the reference engine. All sessions of one engine share one in-process store;
 * each primitive runs synchronously between awaits, so it is atomic by construction.
 */
import { ChangeHub } from './change-hub.js';
import type { Clock } from './clock.js';
import { resolveEngineOptions } from './options.js';
import {
  applyAttempt,
  assertCurrent,
  claimableAt,
  claimedRecord,
  compareDue,
  isActive,
  isDeferred,
  isDue,
  isWaiting,
  lockRecord,
  type MessageRecord,
  notFound,
  partitionByLease,
  renewRecord,
  storedRecord,
  unlockRecord,
  withContents,
  withMeta,
  withMetaKey,
  withRetry,
  writableRecord,
} from './record.js';
import { type AttemptChange, BaseSession, type ListKind, type PreparedMessage } from './session.js';
import type {
  Capabilities,
  ChangeListener,
  ClaimedMessage,
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
import { cloneMeta } from './validate.js';

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
    const { clock, maxMessageBytes } = resolveEngineOptions(options);
    this.store = options.store ?? new MemoryStore();
    this.#clock = clock;
    this.supports = { persistent: false, shared: false, changeEvents: true, maxMessageBytes };
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

  constructor(store: MemoryStore, config: { clock: Clock | undefined; maxMessageBytes: number }) {
    super({ ...config, onChange: (event) => store.changes.emit(event) });
    this.#messages = store.messages;
  }

  #get(id: MessageId): StoredMessage {
    const message = this.#messages.get(id);
    if (!message) throw notFound(id);
    return message;
  }

  /** A fenced or unfenced change of one record (`NOT_FOUND` / `STALE_LEASE`). */
  #update(
    id: MessageId,
    lease: Lease | undefined,
    change: (record: MessageRecord) => MessageRecord,
  ): void {
    const message = this.#messages.get(id);
    message!.record = change(writableRecord(message?.record, id, lease));
  }

  #assertFree(messages: readonly PreparedMessage[]): void {
    for (const m of messages) {
      if (this.#messages.has(m.id)) throw new TypeError(`id ${m.id} is taken`);
    }
  }

  #put(messages: readonly PreparedMessage[], now: number): void {
    // The contents are the session's own copy (BaseSession made it): kept as they are.
    for (const m of messages) {
      const record = storedRecord(m.id, now, m.meta, m.contents.byteLength, m.retryAt, m.priority);
      this.#messages.set(m.id, { record, contents: m.contents });
    }
  }

  protected async _claimMessageId(id: MessageId, now: number): Promise<boolean> {
    if (this.#messages.has(id)) return false;
    this.#messages.set(id, { record: claimedRecord(id, now), contents: null });
    return true;
  }

  protected async _storeMessages(messages: readonly PreparedMessage[], now: number): Promise<void> {
    this.#assertFree(messages);
    this.#put(messages, now);
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
    this.#update(id, lease, (record) => withMeta(record, meta));
  }

  protected async _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ): Promise<void> {
    this.#update(id, lease, (record) => withMetaKey(record, key, value));
  }

  protected async _getMessageContents(id: MessageId): Promise<Uint8Array> {
    const { contents } = this.#get(id);
    if (contents === null) throw notFound(id, 'contents of message');
    return contents.slice();
  }

  protected async _setMessageContents(id: MessageId, contents: Uint8Array): Promise<void> {
    const message = this.#get(id);
    message.contents = contents;
    message.record = withContents(message.record, contents.byteLength);
  }

  protected async _setMessageRetry(
    id: MessageId,
    at: number,
    lease: Lease | undefined,
  ): Promise<void> {
    this.#update(id, lease, (record) => withRetry(record, at));
  }

  protected async _lockMessage(id: MessageId, ttl: number, now: number): Promise<Lease | null> {
    const message = this.#get(id);
    const locked = lockRecord(message.record, ttl, now);
    if (!locked) return null;
    message.record = locked.record;
    return locked.lease;
  }

  protected async _unlockMessage(id: MessageId): Promise<boolean> {
    const message = this.#messages.get(id);
    if (!message || message.record.lockedUntil === null) return false;
    message.record = unlockRecord(message.record);
    return true;
  }

  protected async _renewLease(lease: Lease, ttl: number, now: number): Promise<Lease> {
    const message = this.#messages.get(lease.id);
    const renewed = renewRecord(message?.record, lease, ttl, now);
    message!.record = renewed.record;
    return renewed.lease;
  }

  protected async _releaseLease(lease: Lease): Promise<void> {
    const message = this.#messages.get(lease.id);
    assertCurrent(message?.record, lease);
    message!.record = unlockRecord(message!.record);
  }

  protected async _deleteMessage(id: MessageId, lease: Lease | undefined): Promise<boolean> {
    const message = this.#messages.get(id);
    if (lease !== undefined) assertCurrent(message?.record, lease);
    return this.#messages.delete(id);
  }

  protected async _commitAttempt(
    lease: Lease,
    change: AttemptChange,
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void> {
    const message = this.#messages.get(lease.id);
    assertCurrent(message?.record, lease);
    this.#assertFree(messages);
    // Everything below is synchronous: the commit is atomic.
    const next = applyAttempt(message!.record, change);
    if (next === undefined) this.#messages.delete(lease.id);
    else message!.record = next;
    this.#put(messages, now);
  }

  protected async _deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult> {
    const result = partitionByLease(
      leases,
      leases.map((lease) => this.#messages.get(lease.id)?.record),
    );
    for (const id of result.deleted) this.#messages.delete(id);
    return result;
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

  /** The `limit` oldest due records, in claim order. */
  #oldestDue(limit: number, now: number): MessageRecord[] {
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
    return chosen;
  }

  protected async _claimDue(limit: number, ttl: number, now: number): Promise<Lease[]> {
    return this.#oldestDue(limit, now).map((record) => {
      const locked = lockRecord(record, ttl, now)!;
      this.#messages.get(record.id)!.record = locked.record;
      return locked.lease;
    });
  }

  protected override async _claimDueMessages(
    limit: number,
    ttl: number,
    now: number,
  ): Promise<ClaimedMessage[]> {
    // Synchronous, so the claim and the reads are one step.
    return this.#oldestDue(limit, now).map((record) => {
      const locked = lockRecord(record, ttl, now)!;
      const message = this.#messages.get(record.id)!;
      message.record = locked.record;
      return {
        ...locked.lease,
        meta: cloneMeta(record.meta!),
        contents: message.contents!.slice(),
      };
    });
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

  protected async _inspect(id: MessageId): Promise<MessageRecord | undefined> {
    return this.#messages.get(id)?.record;
  }

  protected async _nextDueAt(now: number): Promise<number | null> {
    let earliest: number | null = null;
    for (const { record } of this.#messages.values()) {
      const at = claimableAt(record, now);
      if (at !== null && (earliest === null || at < earliest)) earliest = at;
    }
    return earliest;
  }

  protected async _close(): Promise<void> {}
}
