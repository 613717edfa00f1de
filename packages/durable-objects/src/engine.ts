/**
 * `DurableObjectEngine`: the client side of the Durable Object queue. It runs in any Worker with
 * a binding to the `QueueShard` namespace; its sessions validate every call (core's
 * `BaseSession`) and forward each primitive over Workers RPC to the shard the id names.
 *
 * Time comes from the caller: the session reads its clock once per call and sends that `now` to
 * the shard, so an injected clock drives the shards too, and every client of one queue should
 * use clocks that agree (Workers' `Date.now()` does). Alarms are the exception: a shard
 * schedules those on its own wall clock.
 */
import {
  type Capabilities,
  type ClaimedMessage,
  type Clock,
  type DeleteManyResult,
  type EngineOptions,
  ErrorCode,
  type Lease,
  MailspoolError,
  type MessageId,
  type MessageMeta,
  type MetaValue,
  type QueueStats,
  type StorageEngine,
  type StorageSession,
  type StoreMessageInput,
  sumStats,
} from '@mailspool/core';
import {
  type AttemptChange,
  BaseSession,
  type IdPlacement,
  type ListKind,
  type MessageRecord,
  type PreparedMessage,
  resolveEngineOptions,
} from '@mailspool/core/engine';
import type { OperationArgs, OperationName, OperationResult, ShardCall } from './operations.js';
import type { QueueShard } from './queue-shard.js';
import { MAX_SHARDS, shardedId, shardName, shardOf } from './routing.js';
import { CHUNK_BYTES } from './schema.js';
import type { ClaimedLease, ContentsSource, DueKey, StoredOnce, StoreItem } from './shard-store.js';
import { unreachable, unwrap, type Wire } from './wire.js';

/** The default size of one piece of contents per RPC call: far below the 32 MiB RPC limit. */
export const DEFAULT_RPC_PIECE_BYTES = 8 * 1024 * 1024;

/** Largest piece allowed: leaves room for the rest of a call under the 32 MiB RPC limit. */
const MAX_RPC_PIECE_BYTES = 24 * 1024 * 1024;

/** Rounds of peek-and-claim one cross-shard `claimDue` makes at most (see `_claimDue`). */
const CLAIM_ROUNDS = 16;

/** How often a read restarts when the contents are rewritten between its pieces. */
const READ_ATTEMPTS = 4;

/**
 * What the engine needs of a Durable Object namespace binding (`env.MAILSPOOL_QUEUE`, declared
 * with `class_name: "QueueShard"` or a subclass of it).
 */
export interface ShardNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions): unknown;
}

/** Options of {@link DurableObjectEngine}. */
export interface DurableObjectEngineOptions extends EngineOptions {
  /** The binding of the `QueueShard` Durable Object namespace. */
  readonly namespace: ShardNamespace;
  /**
   * How many shards new messages are spread over (1–1024). It may grow later: ids carry their
   * shard, so existing messages stay where they are. It must never shrink (messages on the
   * dropped shards would no longer be listed or claimed).
   */
  readonly shards: number;
  /**
   * The queue's name: shard `i` is the object named `<name>:<i>`. Engines with the same name and
   * namespace see the same queue; another name is another queue. Default `mailspool`.
   */
  readonly name?: string;
  /**
   * Bytes of contents sent or read per RPC call (a multiple of 1 MiB, at most 24 MiB). Larger
   * contents are staged in several calls and committed atomically. Default 8 MiB.
   */
  readonly rpcPieceBytes?: number;
  /**
   * Where new shards should be created (`"weur"`, `"enam"`…), passed to `namespace.get`: put
   * them near the relayers. Only the first access places an object; later hints are ignored.
   */
  readonly locationHint?: DurableObjectLocationHint;
  /**
   * How long `storeMessageOnce` remembers an idempotency key (ms of the callers' clock).
   * Default 24 hours. Keep the shard count unchanged within this window: a key is routed by
   * a hash over the shard count.
   */
  readonly idempotencyRetentionMs?: number;
}

/** Default of `idempotencyRetentionMs`: 24 hours. */
export const DEFAULT_IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;

/** A session of the Durable Object engine: the contract plus an idempotent store. */
export interface DurableObjectStorageSession extends StorageSession {
  /**
   * Stores `input` once per `key`: the first call stores it and resolves `{ id, duplicate:
   * false }`; every later or concurrent call with the same key (within the retention window)
   * stores nothing and resolves `{ id, duplicate: true }` with the first call's id and
   * `fingerprint`, so the caller can tell a retry from a different request reusing the key.
   * Rejects like `storeMessage` (`TypeError`, `TOO_LARGE`, `UNAVAILABLE`).
   */
  storeMessageOnce(key: string, fingerprint: string, input: StoreMessageInput): Promise<StoredOnce>;
}

/** Idempotency keys: printable ASCII without spaces, at most 200 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The shard of an idempotency key: FNV-1a over its characters, modulo the shard count. */
function keyShard(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** What the engine calls on a shard: its one RPC method (a stub, or the shard itself). */
type ShardRpc = Pick<QueueShard, 'call'>;

/** A call waiting in a session's outbox for its shard (see `DurableObjectSession.#send`). */
interface Outgoing {
  readonly call: ShardCall;
  /** Contents bytes it sends inline. */
  readonly bytes: number;
  /** Gets the call's value, decoded from its answer. */
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface EngineConfig {
  /** `undefined` for a {@link ShardLocalEngine}, which reaches no other shard. */
  readonly namespace: ShardNamespace | undefined;
  readonly shards: number;
  readonly name: string;
  readonly piece: number;
  readonly clock: Clock | undefined;
  readonly maxMessageBytes: number;
  readonly locationHint: DurableObjectLocationHint | undefined;
  readonly idempotencyRetention: number;
  /** Set for a {@link ShardLocalEngine}: the one shard, called in-process, and its index. */
  readonly local: { readonly index: number; readonly shard: ShardRpc } | undefined;
}

/**
 * The Durable Object engine: a queue spread over `shards` `QueueShard` objects. `supports` is
 * `{ persistent: true, shared: true, changeEvents: false }`. The constructor throws a
 * `TypeError` for bad options.
 */
export class DurableObjectEngine implements StorageEngine {
  readonly supports: Capabilities;
  readonly #config: EngineConfig;

  constructor(options: DurableObjectEngineOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('DurableObjectEngine needs { namespace, shards }');
    }
    const {
      namespace,
      shards,
      name = 'mailspool',
      rpcPieceBytes = DEFAULT_RPC_PIECE_BYTES,
    } = options;
    if (
      typeof namespace?.idFromName !== 'function' ||
      typeof (namespace as { get?: unknown }).get !== 'function'
    ) {
      throw new TypeError('namespace must be a Durable Object namespace binding');
    }
    if (!Number.isSafeInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new TypeError(`shards must be an integer from 1 to ${MAX_SHARDS}`);
    }
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      throw new TypeError('name must be a string of 1-200 characters');
    }
    if (
      !Number.isSafeInteger(rpcPieceBytes) ||
      rpcPieceBytes < CHUNK_BYTES ||
      rpcPieceBytes > MAX_RPC_PIECE_BYTES ||
      rpcPieceBytes % CHUNK_BYTES !== 0
    ) {
      throw new TypeError('rpcPieceBytes must be a multiple of 1 MiB from 1 MiB to 24 MiB');
    }
    const idempotencyRetention = options.idempotencyRetentionMs ?? DEFAULT_IDEMPOTENCY_RETENTION_MS;
    if (!Number.isSafeInteger(idempotencyRetention) || idempotencyRetention < 0) {
      throw new TypeError('idempotencyRetentionMs must be an integer >= 0');
    }
    const maxMessageBytes = resolveEngineOptions(options).maxMessageBytes;
    this.#config = {
      namespace,
      shards,
      name,
      piece: rpcPieceBytes,
      clock: options.clock,
      maxMessageBytes,
      locationHint: options.locationHint,
      idempotencyRetention,
      local: undefined,
    };
    this.supports = capabilities(maxMessageBytes);
  }

  /** Opens a session; never rejects (shards are reached on first use). */
  async connect(): Promise<DurableObjectStorageSession> {
    return new DurableObjectSession(this.#config);
  }
}

/** What both engines support: shared, persistent storage without change events. */
function capabilities(maxMessageBytes: number): Capabilities {
  return { persistent: true, shared: true, changeEvents: false, maxMessageBytes };
}

/**
 * An engine over one shard, called in-process with no RPC: the engine a shard's due hook relays
 * its own due mail with (`QueueShard.localEngine`). Its sessions are the Durable Object engine's
 * sessions with every call going to that one shard: claims, lists and stats see only it, an id of
 * another shard answers as unknown, and new messages (an attempt's bounce) are stored on it.
 * Same `supports` as {@link DurableObjectEngine}.
 */
export class ShardLocalEngine implements StorageEngine {
  readonly supports: Capabilities;
  readonly #config: EngineConfig;

  /** `shard` is the QueueShard itself, `index` its index in its queue's name. */
  constructor(shard: ShardRpc, index: number, options: EngineOptions = {}) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_SHARDS) {
      throw new TypeError(`index must be an integer from 0 to ${MAX_SHARDS - 1}`);
    }
    const maxMessageBytes = resolveEngineOptions(options).maxMessageBytes;
    this.#config = {
      namespace: undefined,
      shards: 1,
      name: '',
      // Nothing crosses an RPC boundary, but the shard still bounds one answer by this budget.
      piece: DEFAULT_RPC_PIECE_BYTES,
      clock: options.clock,
      maxMessageBytes,
      locationHint: undefined,
      idempotencyRetention: DEFAULT_IDEMPOTENCY_RETENTION_MS,
      local: { index, shard },
    };
    this.supports = capabilities(maxMessageBytes);
  }

  async connect(): Promise<DurableObjectStorageSession> {
    return new DurableObjectSession(this.#config);
  }
}

function randomShard(shards: number): number {
  return shards === 1 ? 0 : crypto.getRandomValues(new Uint32Array(1))[0]! % shards;
}

/** A copy that owns its whole buffer: structured clone would otherwise send a view's entire buffer. */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : bytes.slice();
}

/** Orders by due time, then id: core's `compareDue`, for keys gathered from several shards. */
/** The claim order across shards (core's `compareDue`): priority rank, due time, id. */
function byDue(a: DueKey, b: DueKey): number {
  return a.priority - b.priority || a.dueAt - b.dueAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const keyOf = (claimed: ClaimedLease): DueKey => ({
  dueAt: claimed.dueAt,
  id: claimed.lease.id,
  priority: claimed.priority,
});

/**
 * A session. Stubs are made per session (Workers tie I/O objects to the request that made them,
 * and sessions are short-lived), so an engine may live at module scope.
 */
class DurableObjectSession extends BaseSession implements DurableObjectStorageSession {
  readonly #config: EngineConfig;
  readonly #stubs = new Map<number, ShardRpc>();
  /** The shard chosen for each placement of new ids (see `_newId`). */
  readonly #placed = new WeakMap<IdPlacement, number>();
  /** Per shard, the calls issued in this turn, sent together when the turn ends (`#send`). */
  readonly #outbox = new Map<number, Outgoing[]>();

  constructor(config: EngineConfig) {
    super({ clock: config.clock, maxMessageBytes: config.maxMessageBytes });
    this.#config = config;
  }

  #shard(index: number): ShardRpc {
    const { local } = this.#config;
    if (local) return local.shard;
    let stub = this.#stubs.get(index);
    if (!stub) {
      const { namespace, name, locationHint } = this.#config as EngineConfig & {
        namespace: ShardNamespace;
      };
      const id = namespace.idFromName(shardName(name, index));
      stub = (
        locationHint === undefined ? namespace.get(id) : namespace.get(id, { locationHint })
      ) as ShardRpc;
      this.#stubs.set(index, stub);
    }
    return stub;
  }

  /**
   * The shard an id lives on. An id this engine can't have made (no prefix, or a shard beyond
   * the count) goes to shard 0, which does not hold it and so answers as for any unknown id.
   */
  #indexOf(id: MessageId): number {
    if (this.#config.local) return this.#config.local.index;
    const index = shardOf(id);
    return index !== undefined && index < this.#config.shards ? index : 0;
  }

  #indexes(): number[] {
    const { local, shards } = this.#config;
    return local ? [local.index] : Array.from({ length: shards }, (_, index) => index);
  }

  /**
   * Calls operation `op` on shard `index`. Every call a session issues in one turn (a relayer
   * reading or committing 50 leases with `Promise.all`, a fan-out) waits in the outbox until the
   * turn ends and goes to its shard in one `call` RPC: a round trip per message was the
   * engine's main cost (bench/). Each call keeps its own transaction and answer; a batch only
   * shares the trip. `bytes` is the contents it sends inline, to keep a batch within one piece.
   */
  #call<K extends OperationName>(
    index: number,
    op: K,
    args: OperationArgs<K>,
    bytes = 0,
  ): Promise<OperationResult<K>> {
    return this.#send<OperationResult<K>>(index, { op, args } as unknown as ShardCall, bytes);
  }

  /** Queues `call` for shard `index`; resolves to its decoded value when its batch is answered. */
  #send<T>(index: number, call: ShardCall, bytes: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let queue = this.#outbox.get(index);
      if (!queue) {
        queue = [];
        this.#outbox.set(index, queue);
        queueMicrotask(() => this.#flush(index));
      }
      queue.push({ call, bytes, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** Sends shard `index`'s outbox: batches of at most one RPC piece of inline contents each. */
  #flush(index: number): void {
    const queue = this.#outbox.get(index) ?? [];
    this.#outbox.delete(index);
    const { piece } = this.#config;
    let batch: Outgoing[] = [];
    let bytes = 0;
    for (const out of queue) {
      if (batch.length > 0 && bytes + out.bytes > piece) {
        this.#dispatch(index, batch);
        batch = [];
        bytes = 0;
      }
      batch.push(out);
      bytes += out.bytes;
    }
    if (batch.length > 0) this.#dispatch(index, batch);
  }

  #dispatch(index: number, batch: readonly Outgoing[]): void {
    let sent: Promise<Wire<unknown>[]>;
    try {
      sent = this.#shard(index).call(
        batch.map((out) => out.call),
        this.#config.piece,
      );
    } catch (error) {
      // A stub that can't even be made or called: each call fails as a transport failure would.
      for (const out of batch) out.reject(unreachable(error));
      return;
    }
    // Each call's answer is decoded here, where its batch's answer arrives: one promise per call.
    sent.then(
      (answers) => {
        if (!Array.isArray(answers) || answers.length !== batch.length) {
          const error = new Error('queue shard sent a malformed batch answer');
          for (const out of batch) out.reject(unreachable(error));
          return;
        }
        batch.forEach((out, i) => {
          let value: unknown;
          try {
            value = unwrap(answers[i]!);
          } catch (error) {
            out.reject(error);
            return;
          }
          out.resolve(value);
        });
      },
      (error: unknown) => {
        for (const out of batch) out.reject(unreachable(error));
      },
    );
  }

  /**
   * Every id of one placement goes to one shard, so a `storeMessages` batch or an attempt's
   * outcome is one transaction there: an attempt's new messages to the leased message's shard,
   * a batch to a shard picked at random, and `storeMessageOnce` to its key's shard.
   */
  protected override _newId(placement: IdPlacement): MessageId {
    let index = this.#placed.get(placement);
    if (index === undefined) {
      const { local, shards } = this.#config;
      index = local
        ? local.index
        : placement.near !== undefined
          ? this.#indexOf(placement.near)
          : randomShard(shards);
      this.#placed.set(placement, index);
    }
    return shardedId(index);
  }

  /** Sends contents larger than one piece in several `stage` calls; resolves to the upload id. */
  async #upload(index: number, bytes: Uint8Array): Promise<string> {
    const upload = crypto.randomUUID();
    const { piece } = this.#config;
    for (let offset = 0; offset < bytes.byteLength; offset += piece) {
      const slice = bytes.slice(offset, offset + piece);
      await this.#call(index, 'stage', [upload, offset, slice], slice.byteLength);
    }
    return upload;
  }

  async #discard(index: number, uploads: readonly string[]): Promise<void> {
    // Best effort: an upload left behind expires on the shard after an hour.
    await Promise.all(
      uploads.map((upload) => this.#call(index, 'discardUpload', [upload]).catch(() => {})),
    );
  }

  protected async _claimMessageId(id: MessageId, now: number): Promise<boolean> {
    return this.#call(this.#indexOf(id), 'claimId', [id, now]);
  }

  protected async _storeMessages(messages: readonly PreparedMessage[], now: number): Promise<void> {
    const index = this.#indexOf(messages[0]!.id);
    await this.#withItems(index, messages, (items, bytes) =>
      this.#call(index, 'store', [items, now], bytes),
    );
  }

  /**
   * Turns prepared messages into `StoreItem`s (inline while they fit one RPC piece, staged
   * uploads beyond), runs `send` with them, and discards the uploads if anything fails.
   */
  async #withItems<T>(
    index: number,
    messages: readonly PreparedMessage[],
    send: (items: StoreItem[], inlineBytes: number) => Promise<T>,
  ): Promise<T> {
    const uploads: string[] = [];
    try {
      const items: StoreItem[] = [];
      let budget = this.#config.piece;
      for (const message of messages) {
        const size = message.contents.byteLength;
        let contents: ContentsSource;
        if (size <= budget) {
          contents = { bytes: ownBuffer(message.contents) };
          budget -= size;
        } else {
          const upload = await this.#upload(index, message.contents);
          uploads.push(upload);
          contents = { upload, size };
        }
        items.push({
          id: message.id,
          metaJson: message.metaJson,
          retryAt: message.retryAt,
          priority: message.priority,
          contents,
        });
      }
      return await send(items, this.#config.piece - budget);
    } catch (error) {
      await this.#discard(index, uploads);
      throw error;
    }
  }

  async storeMessageOnce(
    key: string,
    fingerprint: string,
    input: StoreMessageInput,
  ): Promise<StoredOnce> {
    this.assertOpen();
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
      throw new TypeError('key must be 1-200 printable ASCII characters');
    }
    if (typeof fingerprint !== 'string' || fingerprint.length > 256) {
      throw new TypeError('fingerprint must be a string of at most 256 characters');
    }
    // Every call with one key goes to one shard (by a hash of the key), where the key and the
    // message are written in one transaction: that is what makes concurrent retries safe.
    const { local, shards, idempotencyRetention } = this.#config;
    const index = local ? local.index : keyShard(key, shards);
    const placement: IdPlacement = {};
    this.#placed.set(placement, index);
    const message = this.prepareMessage(input, placement);
    const now = this.currentTime();
    return this.#withItems(index, [message], (items, bytes) =>
      this.#call(
        index,
        'storeOnce',
        [key, fingerprint, items[0]!, now, idempotencyRetention],
        bytes,
      ),
    );
  }

  protected async _getMessageMeta(id: MessageId): Promise<MessageMeta> {
    return this.#call(this.#indexOf(id), 'getMeta', [id]);
  }

  protected async _setMessageMeta(
    id: MessageId,
    meta: MessageMeta,
    lease: Lease | undefined,
  ): Promise<void> {
    await this.#call(this.#indexOf(id), 'setMeta', [id, meta, lease]);
  }

  protected async _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ): Promise<void> {
    await this.#call(this.#indexOf(id), 'setMetaKey', [id, key, value, lease]);
  }

  /** One piece of `id`'s contents; asked again when its batch had spent its answer budget. */
  async #readPiece(index: number, id: MessageId, offset: number, version: number | null) {
    for (;;) {
      const piece = await this.#call(index, 'readContents', [
        id,
        offset,
        this.#config.piece,
        version,
      ]);
      if (!('later' in piece)) return piece;
    }
  }

  protected async _getMessageContents(id: MessageId): Promise<Uint8Array> {
    const index = this.#indexOf(id);
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const first = await this.#readPiece(index, id, 0, null);
      if ('changed' in first) continue;
      if (first.bytes.byteLength >= first.size) return first.bytes;
      const bytes = new Uint8Array(first.size);
      bytes.set(first.bytes);
      let at = first.bytes.byteLength;
      while (at < first.size) {
        const next = await this.#readPiece(index, id, at, first.version);
        if ('changed' in next) break;
        if (next.bytes.byteLength === 0) {
          throw new MailspoolError(ErrorCode.CORRUPT, `contents of ${id} end early`);
        }
        bytes.set(next.bytes, at);
        at += next.bytes.byteLength;
      }
      if (at === first.size) return bytes;
    }
    throw new MailspoolError(
      ErrorCode.UNAVAILABLE,
      `contents of ${id} kept changing while being read; try again`,
    );
  }

  protected async _setMessageContents(id: MessageId, contents: Uint8Array): Promise<void> {
    const index = this.#indexOf(id);
    if (contents.byteLength <= this.#config.piece) {
      await this.#call(
        index,
        'writeContents',
        [id, { bytes: ownBuffer(contents) }],
        contents.byteLength,
      );
      return;
    }
    const upload = await this.#upload(index, contents);
    try {
      await this.#call(index, 'writeContents', [id, { upload, size: contents.byteLength }]);
    } catch (error) {
      await this.#discard(index, [upload]);
      throw error;
    }
  }

  protected async _setMessageRetry(
    id: MessageId,
    at: number,
    lease: Lease | undefined,
  ): Promise<void> {
    await this.#call(this.#indexOf(id), 'setRetry', [id, at, lease]);
  }

  protected async _lockMessage(id: MessageId, ttl: number, now: number): Promise<Lease | null> {
    return this.#call(this.#indexOf(id), 'lock', [id, ttl, now]);
  }

  protected async _unlockMessage(id: MessageId): Promise<boolean> {
    return this.#call(this.#indexOf(id), 'unlock', [id]);
  }

  protected async _renewLease(lease: Lease, ttl: number, now: number): Promise<Lease> {
    return this.#call(this.#indexOf(lease.id), 'renew', [lease, ttl, now]);
  }

  protected async _releaseLease(lease: Lease): Promise<void> {
    await this.#call(this.#indexOf(lease.id), 'release', [lease]);
  }

  protected async _deleteMessage(id: MessageId, lease: Lease | undefined): Promise<boolean> {
    return this.#call(this.#indexOf(id), 'remove', [id, lease]);
  }

  /** The whole outcome is one transaction on the leased message's shard (see `_newId`). */
  protected async _commitAttempt(
    lease: Lease,
    change: AttemptChange,
    messages: readonly PreparedMessage[],
    now: number,
  ): Promise<void> {
    const index = this.#indexOf(lease.id);
    await this.#withItems(index, messages, (items, bytes) =>
      this.#call(index, 'commitAttempt', [lease, change, items, now], bytes),
    );
  }

  /** One transaction per shard touched, in parallel; results in the order of `leases`. */
  protected async _deleteMessages(leases: readonly Lease[]): Promise<DeleteManyResult> {
    const groups = new Map<number, Lease[]>();
    for (const lease of leases) {
      const index = this.#indexOf(lease.id);
      const group = groups.get(index);
      if (group) group.push(lease);
      else groups.set(index, [lease]);
    }
    const results = await Promise.all(
      [...groups].map(([index, group]) => this.#call(index, 'removeMany', [group])),
    );
    const deleted = new Set(results.flatMap((result) => result.deleted));
    return {
      deleted: leases.filter((lease) => deleted.has(lease.id)).map((lease) => lease.id),
      stale: leases.filter((lease) => !deleted.has(lease.id)).map((lease) => lease.id),
    };
  }

  protected async _listMessages(
    kind: ListKind,
    now: number,
    dueBy: number | undefined,
  ): Promise<MessageId[]> {
    const lists = await Promise.all(
      this.#indexes().map((index) => this.#call(index, 'list', [kind, now, dueBy ?? null])),
    );
    return lists.flat();
  }

  /**
   * Claims up to `limit` due messages across all shards, oldest first as far as the shards allow.
   * Each round, every shard names its oldest due candidates (a read, nothing locked), the merged
   * order picks how many to take from each shard, and each of those shards claims that many of
   * its oldest due messages in one transaction. A shard that lost some of its candidates to a
   * concurrent claim returns fewer; then the next round looks again, until `limit` are claimed or
   * no shard has due, unclaimed mail. So a claim never comes back short while mail is due
   * anywhere, and no message is ever leased twice (each shard claims atomically). Without
   * concurrent claims one round gives exactly the global oldest-first order (due time, then id).
   *
   * Claiming `limit` on every shard and releasing the extras was rejected: releasing bumps the
   * fencing token, which would make a lapsed-but-unreplaced lease on an extra message stale, and
   * other callers would briefly see those messages locked.
   */
  protected async _claimDue(limit: number, ttl: number, now: number): Promise<Lease[]> {
    const claimed = await this.#claimAcross(limit, now, (index, count) =>
      this.#call(index, 'claimDue', [count, ttl, now]),
    );
    return claimed.map(({ lease }) => lease);
  }

  /**
   * `claimDue` whose answer carries each message's meta and contents (as many contents as fit
   * the batch's answer budget; the rest are read under their new leases).
   */
  protected override async _claimDueMessages(
    limit: number,
    ttl: number,
    now: number,
  ): Promise<ClaimedMessage[]> {
    const claimed = await this.#claimAcross(limit, now, async (index, count) => {
      const answer = await this.#call(index, 'claimDueMessages', [count, ttl, now]);
      return answer.claimed;
    });
    return Promise.all(
      claimed.map(async ({ lease, meta, contents }) => ({
        ...lease,
        meta,
        contents: contents ?? (await this._getMessageContents(lease.id)),
      })),
    );
  }

  protected async _inspect(id: MessageId): Promise<MessageRecord | undefined> {
    return (await this.#call(this.#indexOf(id), 'inspect', [id])) ?? undefined;
  }

  protected async _nextDueAt(now: number): Promise<number | null> {
    const times = await Promise.all(
      this.#indexes().map((index) => this.#call(index, 'nextDueAt', [now])),
    );
    const known = times.filter((at) => at !== null);
    return known.length === 0 ? null : Math.min(...known);
  }

  /**
   * The claim rounds of `_claimDue`, for either kind of claim: `claim(index, count)` claims the
   * `count` oldest due messages of shard `index` in one transaction.
   */
  async #claimAcross<C extends ClaimedLease>(
    limit: number,
    now: number,
    claim: (index: number, count: number) => Promise<C[]>,
  ): Promise<C[]> {
    const indexes = this.#indexes();
    if (indexes.length === 1) return claim(indexes[0]!, limit);
    const claimed: C[] = [];
    // Each round either claims something or finds that another caller claimed every candidate it
    // saw; the bound only stops a pathological stream of rivals from holding the call forever.
    for (let round = 0; round < CLAIM_ROUNDS && claimed.length < limit; round++) {
      const wanted = limit - claimed.length;
      const peeks = await Promise.all(
        indexes.map((index) => this.#call(index, 'peekDue', [wanted, now])),
      );
      const chosen = peeks
        .flatMap((keys, i) => keys.map((key) => ({ ...key, index: indexes[i]! })))
        .sort(byDue)
        .slice(0, wanted);
      if (chosen.length === 0) break;
      const counts = new Map<number, number>();
      for (const { index } of chosen) counts.set(index, (counts.get(index) ?? 0) + 1);
      const claims = await Promise.all([...counts].map(([index, count]) => claim(index, count)));
      claimed.push(...claims.flat());
    }
    return claimed.sort((a, b) => byDue(keyOf(a), keyOf(b)));
  }

  protected async _stats(now: number): Promise<QueueStats> {
    return sumStats(
      await Promise.all(this.#indexes().map((index) => this.#call(index, 'stats', [now]))),
    );
  }

  protected async _close(): Promise<void> {
    this.#stubs.clear();
  }
}
