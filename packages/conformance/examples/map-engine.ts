/**
 * The example engine of docs/engine-authors.md: a whole mailspool engine in one file, on a toy
 * transactional key-value store. Everything that is not storage comes from
 * `@mailspool/core/engine`: `BaseSession` validates arguments, reads the clock and announces
 * changes; the record rules decide every state change. The engine only reads and writes records
 * and contents, one transaction per primitive. `test/example-engine.test.ts` runs the whole
 * conformance suite on it, and the broken-engine proofs extend it.
 */
import type {
  Capabilities,
  ChangeListener,
  Clock,
  DeleteManyResult,
  EngineOptions,
  Lease,
  MessageId,
  MessageMeta,
  MetaValue,
  QueueStats,
  StorageEngine,
  StorageSession,
} from '@mailspool/core';
import { ErrorCode, MailspoolError } from '@mailspool/core';
import {
  type AttemptChange,
  applyAttempt,
  assertCurrent,
  BaseSession,
  ChangeHub,
  claimableAt,
  claimedRecord,
  cloneMeta,
  compareDue,
  DEFAULT_MAX_MESSAGE_BYTES,
  isActive,
  isDeferred,
  isDue,
  isWaiting,
  type ListKind,
  lockRecord,
  type MessageRecord,
  notFound,
  type PreparedMessage,
  partitionByLease,
  renewRecord,
  type SessionConfig,
  storedRecord,
  unlockRecord,
  withContents,
  withMeta,
  withMetaKey,
  withRetry,
  writableRecord,
} from '@mailspool/core/engine';

// ---- the storage: a toy transactional store ----------------------------------------------------

/** One transaction's view: reads see its own writes; nothing is visible to others until commit. */
export class MapTransaction {
  readonly #store: MapStore;
  readonly records = new Map<MessageId, MessageRecord | undefined>();
  readonly contents = new Map<MessageId, Uint8Array | undefined>();

  constructor(store: MapStore) {
    this.#store = store;
  }

  getRecord(id: MessageId): MessageRecord | undefined {
    return this.records.has(id) ? this.records.get(id) : this.#store.records.get(id);
  }
  putRecord(record: MessageRecord): void {
    this.#store.countWrite();
    this.records.set(record.id, record);
  }
  deleteRecord(id: MessageId): void {
    this.#store.countWrite();
    this.records.set(id, undefined);
  }
  getContents(id: MessageId): Uint8Array | undefined {
    return this.contents.has(id) ? this.contents.get(id) : this.#store.contents.get(id);
  }
  putContents(id: MessageId, bytes: Uint8Array): void {
    this.#store.countWrite();
    this.contents.set(id, bytes);
  }
  deleteContents(id: MessageId): void {
    this.#store.countWrite();
    this.contents.set(id, undefined);
  }
  /** Every committed record (a scan; a real store would read an index). */
  allRecords(): MessageRecord[] {
    const ids = new Set([...this.#store.records.keys(), ...this.records.keys()]);
    return [...ids].flatMap((id) => this.getRecord(id) ?? []);
  }
}

/**
 * The store: records and contents, written only by transactions that commit whole. Like a real
 * database it can fail a write (`failAtWrite`, for the conformance suite's atomicity cases).
 */
export class MapStore {
  readonly records = new Map<MessageId, MessageRecord>();
  readonly contents = new Map<MessageId, Uint8Array>();
  #failAt: number | undefined;
  #writes = 0;

  /** What the store holds: entries of both maps, and content bytes (the suite's `footprint`). */
  footprint(): { rows: number; bytes: number } {
    let bytes = 0;
    for (const contents of this.contents.values()) bytes += contents.byteLength;
    return { rows: this.records.size + this.contents.size, bytes };
  }

  /** From now on the `write`-th write fails, once; `undefined` disarms. */
  failAtWrite(write: number | undefined): void {
    this.#failAt = write;
    this.#writes = 0;
  }

  /** @internal Counts a write; throws the injected fault when its turn comes. */
  countWrite(): void {
    if (this.#failAt === undefined) return;
    if (++this.#writes === this.#failAt) {
      this.#failAt = undefined;
      throw new MailspoolError(ErrorCode.UNAVAILABLE, 'storage write failed (injected fault)');
    }
  }

  /**
   * Runs `body` in a transaction after a turn of the event loop (as a database round trip
   * would), and commits its writes together when it returns; a throw commits nothing.
   */
  async transaction<T>(body: (tx: MapTransaction) => T): Promise<T> {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    const tx = new MapTransaction(this);
    const result = body(tx);
    for (const [id, record] of tx.records) {
      if (record === undefined) this.records.delete(id);
      else this.records.set(id, record);
    }
    for (const [id, bytes] of tx.contents) {
      if (bytes === undefined) this.contents.delete(id);
      else this.contents.set(id, bytes);
    }
    return result;
  }
}

// ---- the engine ---------------------------------------------------------------------------------

/** Options of {@link MapEngine}. */
export interface MapEngineOptions extends EngineOptions {
  readonly store?: MapStore;
}

/** The example engine: sessions over one {@link MapStore}. */
export class MapEngine implements StorageEngine {
  readonly supports: Capabilities;
  readonly store: MapStore;
  readonly #changes = new ChangeHub();
  readonly #clock: Clock | undefined;

  constructor(options: MapEngineOptions = {}) {
    this.store = options.store ?? new MapStore();
    this.#clock = options.clock;
    this.supports = {
      persistent: false,
      shared: false,
      changeEvents: true,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    };
  }

  async connect(): Promise<StorageSession> {
    return this.createSession({
      clock: this.#clock,
      maxMessageBytes: this.supports.maxMessageBytes,
      // BaseSession calls this after each primitive that changed something.
      onChange: (event) => this.#changes.emit(event),
    });
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#changes.subscribe(listener);
  }

  /** The session class to use (a subclass may bring its own). */
  protected createSession(config: SessionConfig): StorageSession {
    return new MapSession(this.store, config);
  }
}

/** The session: each `_` primitive is one transaction that applies core's record rules. */
export class MapSession extends BaseSession {
  protected readonly store: MapStore;

  constructor(store: MapStore, config: SessionConfig) {
    super(config);
    this.store = store;
  }

  /** A fenced (with `lease`) or unfenced change of one record: `NOT_FOUND` / `STALE_LEASE`. */
  protected update(
    id: MessageId,
    lease: Lease | undefined,
    change: (record: MessageRecord) => MessageRecord,
  ): Promise<void> {
    return this.store.transaction((tx) => {
      tx.putRecord(change(writableRecord(tx.getRecord(id), id, lease)));
    });
  }

  protected putMessages(tx: MapTransaction, messages: readonly PreparedMessage[], now: number) {
    for (const m of messages) {
      if (tx.getRecord(m.id)) throw new TypeError(`id ${m.id} is taken`);
      tx.putRecord(storedRecord(m.id, now, m.meta, m.contents.byteLength, m.retryAt, m.priority));
      // `m.contents` is already the engine's own copy: BaseSession made it.
      tx.putContents(m.id, m.contents);
    }
  }

  protected removeMessage(tx: MapTransaction, id: MessageId): void {
    tx.deleteRecord(id);
    tx.deleteContents(id);
  }

  protected _claimMessageId(id: MessageId, now: number): Promise<boolean> {
    return this.store.transaction((tx) => {
      if (tx.getRecord(id)) return false;
      tx.putRecord(claimedRecord(id, now));
      return true;
    });
  }

  protected _storeMessages(messages: readonly PreparedMessage[], now: number): Promise<void> {
    return this.store.transaction((tx) => this.putMessages(tx, messages, now));
  }

  protected _getMessageMeta(id: MessageId): Promise<MessageMeta> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(id);
      if (!record) throw notFound(id);
      return record.meta === null ? {} : cloneMeta(record.meta);
    });
  }

  protected _setMessageMeta(id: MessageId, meta: MessageMeta, lease: Lease | undefined) {
    return this.update(id, lease, (record) => withMeta(record, meta));
  }

  protected _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ): Promise<void> {
    // Read and write in one transaction: the compare-and-swap that keeps concurrent writers of
    // different keys from losing each other's update.
    return this.update(id, lease, (record) => withMetaKey(record, key, value));
  }

  protected _getMessageContents(id: MessageId): Promise<Uint8Array> {
    return this.store.transaction((tx) => {
      if (!tx.getRecord(id)) throw notFound(id);
      const bytes = tx.getContents(id);
      if (!bytes) throw notFound(id, 'contents of message');
      return bytes.slice();
    });
  }

  protected _setMessageContents(id: MessageId, contents: Uint8Array): Promise<void> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(id);
      if (!record) throw notFound(id);
      tx.putContents(id, contents);
      tx.putRecord(withContents(record, contents.byteLength));
    });
  }

  protected _setMessageRetry(id: MessageId, at: number, lease: Lease | undefined) {
    return this.update(id, lease, (record) => withRetry(record, at));
  }

  protected _lockMessage(id: MessageId, ttl: number, now: number): Promise<Lease | null> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(id);
      if (!record) throw notFound(id);
      const locked = lockRecord(record, ttl, now);
      if (!locked) return null;
      tx.putRecord(locked.record);
      return locked.lease;
    });
  }

  protected _unlockMessage(id: MessageId): Promise<boolean> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(id);
      if (!record || record.lockedUntil === null) return false;
      tx.putRecord(unlockRecord(record));
      return true;
    });
  }

  protected _renewLease(lease: Lease, ttl: number, now: number): Promise<Lease> {
    return this.store.transaction((tx) => {
      const renewed = renewRecord(tx.getRecord(lease.id), lease, ttl, now);
      tx.putRecord(renewed.record);
      return renewed.lease;
    });
  }

  protected _releaseLease(lease: Lease): Promise<void> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(lease.id);
      assertCurrent(record, lease);
      tx.putRecord(unlockRecord(record));
    });
  }

  protected _deleteMessage(id: MessageId, lease: Lease | undefined): Promise<boolean> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(id);
      if (lease !== undefined) assertCurrent(record, lease);
      if (!record) return false;
      this.removeMessage(tx, id);
      return true;
    });
  }

  protected _commitAttempt(
    lease: Lease,
    change: AttemptChange,
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void> {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(lease.id);
      assertCurrent(record, lease);
      const next = applyAttempt(record, change);
      if (next === undefined) this.removeMessage(tx, lease.id);
      else tx.putRecord(next);
      this.putMessages(tx, messages, now);
    });
  }

  protected _deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult> {
    return this.store.transaction((tx) => {
      const result = partitionByLease(
        leases,
        leases.map((lease) => tx.getRecord(lease.id)),
      );
      for (const id of result.deleted) this.removeMessage(tx, id);
      return result;
    });
  }

  protected _listMessages(kind: ListKind, now: number, dueBy: number | undefined) {
    return this.store.transaction((tx) =>
      tx
        .allRecords()
        .filter((record) =>
          kind === 'all'
            ? true
            : kind === 'active'
              ? isActive(record, now)
              : isDeferred(record, now, dueBy),
        )
        .map((record) => record.id),
    );
  }

  protected _claimDue(limit: number, ttl: number, now: number): Promise<Lease[]> {
    return this.store.transaction((tx) =>
      tx
        .allRecords()
        .filter((record) => isDue(record, now))
        .sort(compareDue)
        .slice(0, limit)
        .map((record) => {
          const locked = lockRecord(record, ttl, now)!;
          tx.putRecord(locked.record);
          return locked.lease;
        }),
    );
  }

  protected _stats(now: number): Promise<QueueStats> {
    return this.store.transaction((tx) => {
      const records = tx.allRecords();
      return {
        total: records.length,
        active: records.filter((r) => isActive(r, now)).length,
        deferred: records.filter((r) => isWaiting(r, now)).length,
        due: records.filter((r) => isDue(r, now)).length,
      };
    });
  }

  protected _inspect(id: MessageId): Promise<MessageRecord | undefined> {
    return this.store.transaction((tx) => tx.getRecord(id));
  }

  protected _nextDueAt(now: number): Promise<number | null> {
    return this.store.transaction((tx) => {
      const times = tx
        .allRecords()
        .map((record) => claimableAt(record, now))
        .filter((at) => at !== null);
      return times.length === 0 ? null : Math.min(...times);
    });
  }

  protected async _close(): Promise<void> {}
}
