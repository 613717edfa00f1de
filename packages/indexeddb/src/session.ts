/**
 * Internal (used by engine.ts): the IndexedDB session. Each primitive is one transaction that
 * reads the rows it needs, applies core's pure rules (record.ts) and writes the result; nothing
 * but IndexedDB requests is awaited inside it. Because IndexedDB serialises overlapping readwrite
 * transactions across every tab and worker of the origin, each primitive is atomic there too.
 */
import type {
  ClaimedMessage,
  DeleteManyResult,
  Lease,
  MessageId,
  MessageMeta,
  MetaValue,
  QueueStats,
} from '@mailspool/core';
import {
  type AttemptChange,
  applyAttempt,
  assertCurrent,
  BaseSession,
  claimableAt,
  claimedRecord,
  dueAt,
  isActive,
  isComplete,
  isDue,
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
import type { IDBPObjectStore, IDBPTransaction } from 'idb';
import type { ChangeBridge } from './changes.js';
import type { Database } from './database.js';
import {
  BY_DUE,
  BY_LOCK,
  BY_PRIORITY,
  BY_RETRY,
  CONTENTS,
  fromContents,
  fromRow,
  MESSAGES,
  type MessageRow,
  type OutboxSchema,
  type StoreName,
  toRow,
} from './schema.js';

/** Greater than every `[due, id]` key with `due <= now`: arrays sort after strings. */
const dueUpTo = (now: number) => IDBKeyRange.upperBound([now, []]);
// Ranges over `retryAt` and `lockedUntil`, which rows hold as `null` when unset, always have a
// lower bound: WebKit (WebKitGTK 2.50, the engine Safari is built on) answers an index's
// getAll/getAllKeys with no range, or with only an upper bound, with the `null` rows too, which
// the spec leaves out of the index (its count() and cursors do). `due` is left out of a row, not
// set to null, so `by-due` is not affected. README "Browser notes".
/** Every retry time (a number), or those `<= dueBy`. */
const scheduledUpTo = (dueBy: number | undefined) =>
  dueBy === undefined ? IDBKeyRange.lowerBound(-Infinity) : IDBKeyRange.bound(-Infinity, dueBy);
/** `lockedUntil > now`: the lock is unexpired (it expires exactly at `lockedUntil`). */
const lockedAfter = (now: number) => IDBKeyRange.lowerBound(now, true);

/**
 * Marks a request's promise as observed at once. When several requests are queued and a later
 * one throws synchronously (the transaction died), the earlier ones reject after the body has
 * already failed; without this they would surface as unhandled rejections.
 */
function observed<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** A contents read waiting for the turn's shared transaction. */
interface PendingRead {
  readonly id: MessageId;
  readonly resolve: (contents: Uint8Array) => void;
  readonly reject: (error: unknown) => void;
}

export class IndexedDbSession extends BaseSession {
  readonly #db: Database;
  /** Contents reads queued in this turn; see `_getMessageContents`. */
  #reads: PendingRead[] | undefined;

  constructor(db: Database, changes: ChangeBridge, config: SessionConfig) {
    super({ ...config, onChange: (event) => changes.publish(event.type, event.ids) });
    this.#db = db;
  }

  protected async _claimMessageId(id: MessageId, now: number): Promise<boolean> {
    const claimed = await this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const store = tx.objectStore(MESSAGES);
      if ((await store.getKey(id)) !== undefined) return false;
      await store.add(toRow(claimedRecord(id, now)));
      return true;
    });
    return claimed;
  }

  protected async _storeMessages(messages: readonly PreparedMessage[], now: number): Promise<void> {
    await this.#db.run([MESSAGES, CONTENTS], 'readwrite', async (tx) => {
      // All requests are queued at once (one round of events, not one per message).
      await Promise.all(addMessages(tx, messages, now));
    });
  }

  protected async _getMessageMeta(id: MessageId): Promise<MessageMeta> {
    return this.#db.run([MESSAGES], 'readonly', async (tx) => {
      const value = await tx.objectStore(MESSAGES).get(id);
      if (value === undefined) throw notFound(id);
      return fromRow(value, id).meta ?? {};
    });
  }

  protected async _setMessageMeta(
    id: MessageId,
    meta: MessageMeta,
    lease: Lease | undefined,
  ): Promise<void> {
    await this.#update(id, lease, (record) => withMeta(record, meta));
  }

  protected async _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ): Promise<void> {
    await this.#update(id, lease, (record) => withMetaKey(record, key, value));
  }

  protected _getMessageContents(id: MessageId): Promise<Uint8Array> {
    // Reads asked for in the same turn (e.g. `Promise.all(leases.map(getMessageContents))`)
    // share one readonly transaction: in Chromium a transaction costs a round trip to the
    // browser process, which dominated a drain. Each read still settles on its own.
    return new Promise((resolve, reject) => {
      if (this.#reads === undefined) {
        this.#reads = [];
        queueMicrotask(() => this.#flushReads());
      }
      this.#reads.push({ id, resolve, reject });
    });
  }

  /** Runs every queued contents read in one readonly transaction. */
  #flushReads(): void {
    const reads = this.#reads ?? [];
    this.#reads = undefined;
    this.#db
      .run([CONTENTS], 'readonly', async (tx) => {
        const store = tx.objectStore(CONTENTS);
        return Promise.all(reads.map((read) => observed(store.get(read.id))));
      })
      .then(
        (values) => {
          reads.forEach((read, n) => {
            const value = values[n];
            if (value === undefined) read.reject(notFound(read.id, 'contents of message'));
            else {
              try {
                read.resolve(fromContents(value, read.id));
              } catch (error) {
                read.reject(error);
              }
            }
          });
        },
        (error: unknown) => {
          for (const read of reads) read.reject(error);
        },
      );
  }

  protected async _setMessageContents(id: MessageId, contents: Uint8Array): Promise<void> {
    await this.#db.run([MESSAGES, CONTENTS], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value = await rows.get(id);
      if (value === undefined) throw notFound(id);
      const record = fromRow(value, id);
      await Promise.all([
        observed(tx.objectStore(CONTENTS).put(contents, id)),
        observed(rows.put(toRow(withContents(record, contents.byteLength)))),
      ]);
    });
  }

  protected async _setMessageRetry(
    id: MessageId,
    at: number,
    lease: Lease | undefined,
  ): Promise<void> {
    await this.#update(id, lease, (record) => withRetry(record, at));
  }

  protected async _lockMessage(id: MessageId, ttl: number, now: number): Promise<Lease | null> {
    const lease = await this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value = await rows.get(id);
      if (value === undefined) throw notFound(id);
      const locked = lockRecord(fromRow(value, id), ttl, now);
      if (!locked) return null;
      await rows.put(toRow(locked.record));
      return locked.lease;
    });
    return lease;
  }

  protected async _unlockMessage(id: MessageId): Promise<boolean> {
    return this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value = await rows.get(id);
      if (value === undefined) return false;
      const record = fromRow(value, id);
      if (record.lockedUntil === null) return false;
      await rows.put(toRow(unlockRecord(record)));
      return true;
    });
  }

  protected async _renewLease(lease: Lease, ttl: number, now: number): Promise<Lease> {
    const renewed = await this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value = await rows.get(lease.id);
      const result = renewRecord(value && fromRow(value, lease.id), lease, ttl, now);
      await rows.put(toRow(result.record));
      return result.lease;
    });
    return renewed;
  }

  protected async _releaseLease(lease: Lease): Promise<void> {
    await this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value = await rows.get(lease.id);
      const record = value && fromRow(value, lease.id);
      assertCurrent(record, lease);
      await rows.put(toRow(unlockRecord(record)));
    });
  }

  protected async _deleteMessage(id: MessageId, lease: Lease | undefined): Promise<boolean> {
    return this.#db.run([MESSAGES, CONTENTS], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value = await rows.get(id);
      if (lease !== undefined) assertCurrent(value && fromRow(value, id), lease);
      if (value === undefined) return false;
      await Promise.all([observed(rows.delete(id)), observed(tx.objectStore(CONTENTS).delete(id))]);
      return true;
    });
  }

  protected async _commitAttempt(
    lease: Lease,
    change: AttemptChange,
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void> {
    await this.#db.run([MESSAGES, CONTENTS], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const contents = tx.objectStore(CONTENTS);
      const value = await rows.get(lease.id);
      const record = value && fromRow(value, lease.id);
      assertCurrent(record, lease);
      // One transaction: the leased message's change and the new messages commit together.
      const requests: Promise<unknown>[] = [];
      const next = applyAttempt(record, change);
      if (next === undefined) {
        requests.push(observed(rows.delete(lease.id)), observed(contents.delete(lease.id)));
      } else {
        requests.push(observed(rows.put(toRow(next))));
      }
      requests.push(...addMessages(tx, messages, now));
      await Promise.all(requests);
    });
  }

  protected async _deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult> {
    return this.#db.run([MESSAGES, CONTENTS], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const contents = tx.objectStore(CONTENTS);
      const values = await Promise.all(leases.map((lease) => observed(rows.get(lease.id))));
      const result = partitionByLease(
        leases,
        values.map((value, n) => value && fromRow(value, leases[n]!.id)),
      );
      await Promise.all(
        result.deleted.flatMap((id) => [observed(rows.delete(id)), observed(contents.delete(id))]),
      );
      return result;
    });
  }

  protected async _listMessages(
    kind: ListKind,
    now: number,
    dueBy: number | undefined,
  ): Promise<MessageId[]> {
    return this.#db.run([MESSAGES], 'readonly', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      if (kind === 'all') return rows.getAllKeys();
      const active = observed(rows.index(BY_LOCK).getAllKeys(lockedAfter(now)));
      if (kind === 'active') return active;
      // Deferred: a retry time (≤ dueBy when given) and no unexpired lock. Both lists come from
      // key-only index reads; the active list is short (what is being delivered right now).
      const [held, scheduled] = await Promise.all([
        active,
        rows.index(BY_RETRY).getAllKeys(scheduledUpTo(dueBy)),
      ]);
      const heldSet = new Set(held);
      return scheduled.filter((id) => !heldSet.has(id));
    });
  }

  protected async _claimDue(limit: number, ttl: number, now: number): Promise<Lease[]> {
    return this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const claimed = await claimRows(tx.objectStore(MESSAGES), limit, ttl, now);
      return claimed.map(({ lease }) => lease);
    });
  }

  protected override async _claimDueMessages(
    limit: number,
    ttl: number,
    now: number,
  ): Promise<ClaimedMessage[]> {
    // The claim and the contents reads share one transaction: one commit for the whole batch.
    return this.#db.run([MESSAGES, CONTENTS], 'readwrite', async (tx) => {
      const claimed = await claimRows(tx.objectStore(MESSAGES), limit, ttl, now);
      const store = tx.objectStore(CONTENTS);
      const contents = await Promise.all(claimed.map(({ lease }) => observed(store.get(lease.id))));
      return claimed.map(({ lease, meta }, n) => ({
        ...lease,
        meta,
        contents: fromContents(contents[n], lease.id),
      }));
    });
  }

  protected async _stats(now: number): Promise<QueueStats> {
    return this.#db.run([MESSAGES], 'readonly', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      // Three index counts plus the rows of messages in flight (few, and without contents):
      // counts over the whole queue never touch a row.
      const [total, held, scheduledLater, dueOrHeld] = await Promise.all([
        observed(rows.count()),
        observed(rows.index(BY_LOCK).getAll(lockedAfter(now))),
        observed(rows.index(BY_RETRY).count(IDBKeyRange.lowerBound(now, true))),
        observed(rows.index(BY_DUE).count(dueUpTo(now))),
      ]);
      let heldLater = 0;
      let heldDue = 0;
      for (const value of held) {
        const record = fromRow(value);
        if (!isActive(record, now)) continue;
        if (record.retryAt !== null && record.retryAt > now) heldLater++;
        if (isComplete(record) && dueAt(record) <= now) heldDue++;
      }
      return {
        total,
        active: held.length,
        deferred: scheduledLater - heldLater,
        due: dueOrHeld - heldDue,
      };
    });
  }

  protected async _inspect(id: MessageId): Promise<MessageRecord | undefined> {
    return this.#db.run([MESSAGES], 'readonly', async (tx) => {
      const value = await tx.objectStore(MESSAGES).get(id);
      return value === undefined ? undefined : fromRow(value, id);
    });
  }

  protected async _nextDueAt(now: number): Promise<number | null> {
    return this.#db.run([MESSAGES], 'readonly', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      // The locked rows (few: what is in flight) each count from the end of their lock; of the
      // rest, the first row of `by-due` that is not locked is the earliest. Reading one more row
      // of `by-due` than there are locks always reaches it.
      const held = (await rows.index(BY_LOCK).getAll(lockedAfter(now))).map((v) => fromRow(v));
      const heldIds = new Set(held.map((record) => record.id));
      const candidates = held.map((record) => claimableAt(record, now));
      // A lower bound on purpose: WebKit answers an unbounded index read with rows that have no
      // key (incomplete messages) too.
      const all = IDBKeyRange.lowerBound([Number.NEGATIVE_INFINITY]);
      for (const value of await rows.index(BY_DUE).getAll(all, held.length + 1)) {
        const at = heldIds.has(value.id) ? null : claimableAt(fromRow(value), now);
        if (at === null) continue;
        candidates.push(at);
        break;
      }
      const times = candidates.filter((at) => at !== null);
      return times.length === 0 ? null : Math.min(...times);
    });
  }

  protected async _close(): Promise<void> {
    // The connection belongs to the engine and is shared by its sessions: nothing to release.
  }

  /** A fenced or unfenced read-modify-write of one row (NOT_FOUND / STALE_LEASE), then an event. */
  async #update(
    id: MessageId,
    lease: Lease | undefined,
    change: (record: ReturnType<typeof fromRow>) => ReturnType<typeof fromRow>,
  ): Promise<void> {
    await this.#db.run([MESSAGES], 'readwrite', async (tx) => {
      const rows = tx.objectStore(MESSAGES);
      const value: MessageRow | undefined = await rows.get(id);
      const record = writableRecord(value && fromRow(value, id), id, lease);
      await rows.put(toRow(change(record)));
    });
  }
}

/**
 * Queues the writes of new messages (row and contents each) in `tx`, without awaiting them.
 * `add` refuses an id that is taken, so a colliding random id can not overwrite a message.
 */
function addMessages(
  tx: IDBPTransaction<OutboxSchema, StoreName[], 'readwrite'>,
  messages: readonly PreparedMessage[],
  now: number,
): Promise<unknown>[] {
  const rows = tx.objectStore(MESSAGES);
  const contents = tx.objectStore(CONTENTS);
  return messages.flatMap((m) => [
    observed(
      rows.add(
        toRow(storedRecord(m.id, now, m.meta, m.contents.byteLength, m.retryAt, m.priority)),
      ),
    ),
    observed(contents.add(m.contents, m.id)),
  ]);
}

/** The messages store inside a readwrite transaction. */
type WritableMessages = IDBPObjectStore<OutboxSchema, StoreName[], 'messages', 'readwrite'>;

/** Locks up to `limit` due rows, oldest due first, inside the caller's transaction. */
async function claimRows(
  rows: WritableMessages,
  limit: number,
  ttl: number,
  now: number,
): Promise<{ lease: Lease; meta: MessageMeta }[]> {
  const byPriority = rows.index(BY_PRIORITY);
  const taken: { lease: Lease; meta: MessageMeta }[] = [];
  const writes: Promise<unknown>[] = [];
  // Due rows of one rank: [rank, due, id] from [rank] up to [rank, now, []] (arrays sort after
  // strings, and every range has a lower bound: see the browser notes).
  const dueOfRank = (rank: number, after?: MessageRow) =>
    after === undefined
      ? IDBKeyRange.bound([rank], [rank, now, []])
      : IDBKeyRange.bound([rank, after.due!, after.id], [rank, now, []], true);
  // Higher priority first, each rank oldest due first. The first read of every rank is issued at
  // once (the usual queue has one rank: the others answer empty in the same round trip); a rank
  // is read further, `wanted` rows per request, only while it fills the claim. Rows whose lock
  // is still held are skipped, so the work stays `limit` plus the messages in flight.
  const first = await Promise.all(
    [0, 1, 2].map((rank) => observed(byPriority.getAll(dueOfRank(rank), limit))),
  );
  for (let rank = 0; rank < first.length && taken.length < limit; rank++) {
    let batch = first[rank]!;
    let asked = limit;
    for (;;) {
      for (const value of batch) {
        if (taken.length === limit) break;
        const record = fromRow(value);
        if (!isDue(record, now)) continue;
        const locked = lockRecord(record, ttl, now)!;
        writes.push(observed(rows.put(toRow(locked.record))));
        taken.push({ lease: locked.lease, meta: record.meta! });
      }
      const last = batch[batch.length - 1];
      if (taken.length === limit || batch.length < asked || last === undefined) break;
      asked = limit - taken.length;
      batch = await byPriority.getAll(dueOfRank(rank, last), asked);
    }
  }
  await Promise.all(writes);
  return taken;
}
