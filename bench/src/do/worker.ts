/**
 * The bench Worker (bundled by durable-objects.ts and run in workerd through miniflare). A POST
 * to `/run` with `{ variant, n, shards, callers, tag }` runs one whole workload and answers the
 * check string after verifying it; Cloudflare Queues runs finish in the consumer, which reports
 * to a `QueueTally` object that `/queue-status` reads.
 *
 * Every variant does the same work per message: store it (meta + 10 KiB), claim it in a batch of
 * 50, read its contents, delete it with its lease. Each checks it got back exactly the bodies it
 * stored (messages.ts' Tally).
 */

import { DurableObject } from 'cloudflare:workers';
import type { Lease, StorageSession } from '@mailspool/core';
import {
  DEFAULT_RPC_PIECE_BYTES,
  DurableObjectEngine,
  QueueShard,
} from '@mailspool/durable-objects';
import { makeBodies, makeMeta, Tally } from '../idb/messages.js';
import { verify } from '../lib/harness.js';

export { QueueShard };

interface Env {
  QUEUE: DurableObjectNamespace<QueueShard>;
  RAW: DurableObjectNamespace<RawShard>;
  TALLY: DurableObjectNamespace<QueueTally>;
  OUTBOX: Queue;
}

const BATCH = 50;
const TTL = 60_000;

interface RawLease {
  id: string;
  token: number;
}

/**
 * The limit: the engine's shard statements as raw SQL (same tables and indexes: messages +
 * chunks, the partial `due` index), with no validation, rules or error encoding.
 */
export class RawShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      id TEXT PRIMARY KEY NOT NULL, created_at INTEGER NOT NULL, meta TEXT, size INTEGER,
      retry_at INTEGER, locked_until INTEGER, token INTEGER NOT NULL DEFAULT 0,
      version INTEGER NOT NULL DEFAULT 0)`);
    this.#sql.exec(
      'CREATE INDEX IF NOT EXISTS messages_due ON messages (coalesce(retry_at, created_at), id) WHERE (meta IS NOT NULL AND size IS NOT NULL)',
    );
    this.#sql.exec(
      'CREATE INDEX IF NOT EXISTS messages_lock ON messages (locked_until) WHERE locked_until IS NOT NULL',
    );
    this.#sql.exec(
      'CREATE TABLE IF NOT EXISTS chunks (owner TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (owner, seq))',
    );
  }

  store(id: string, meta: string, body: Uint8Array, now: number): void {
    this.#sql.exec(
      'INSERT INTO messages (id, created_at, meta, size, retry_at, locked_until, token) VALUES (?, ?, ?, ?, NULL, NULL, 0)',
      id,
      now,
      meta,
      body.byteLength,
    );
    this.#sql.exec('INSERT INTO chunks (owner, seq, data) VALUES (?, 0, ?)', id, body);
  }

  claim(limit: number, now: number): RawLease[] {
    const rows = this.#sql
      .exec<{ id: string; token: number }>(
        `SELECT id, token FROM messages WHERE (meta IS NOT NULL AND size IS NOT NULL)
           AND (locked_until IS NULL OR locked_until <= ?1) AND coalesce(retry_at, created_at) <= ?1
         ORDER BY coalesce(retry_at, created_at), id LIMIT ?2`,
        now,
        limit,
      )
      .toArray();
    return rows.map((row) => {
      this.#sql.exec(
        'UPDATE messages SET locked_until = ?, token = ? WHERE id = ?',
        now + TTL,
        row.token + 1,
        row.id,
      );
      return { id: row.id, token: row.token + 1 };
    });
  }

  read(id: string): Uint8Array {
    const row = this.#sql
      .exec<{ data: ArrayBuffer }>('SELECT data FROM chunks WHERE owner = ? AND seq = 0', id)
      .one();
    return new Uint8Array(row.data);
  }

  remove(leases: RawLease[], now: number): number {
    let deleted = 0;
    for (const lease of leases) {
      const row = this.#sql
        .exec<{ token: number; locked_until: number | null }>(
          'SELECT token, locked_until FROM messages WHERE id = ?',
          lease.id,
        )
        .toArray()[0];
      if (row?.token !== lease.token || row.locked_until === null || row.locked_until <= now)
        continue;
      this.#sql.exec('DELETE FROM messages WHERE id = ?', lease.id);
      this.#sql.exec('DELETE FROM chunks WHERE owner = ?', lease.id);
      deleted++;
    }
    return deleted;
  }

  /** The whole cycle in one call: n stores, then claim 50 → read → delete until empty. */
  cycle(bodies: Uint8Array[], tag: number): string {
    this.storeAll(bodies, Date.now());
    return this.drain(bodies.length, tag);
  }

  /** The first half of `cycle` as a call of its own: its one commit makes every store durable. */
  storeAll(bodies: Uint8Array[], now: number): void {
    bodies.forEach((body, i) => {
      this.store(`m${i}`, JSON.stringify(makeMeta(i)), body, now);
    });
  }

  /** The second half of `cycle`: claim 50 → read → delete until empty, verified. */
  drain(n: number, tag: number): string {
    const now = Date.now();
    const tally = new Tally(tag);
    let deleted = 0;
    for (;;) {
      const leases = this.claim(BATCH, now);
      if (leases.length === 0) break;
      for (const lease of leases) tally.add(this.read(lease.id));
      deleted += this.remove(leases, now);
    }
    verify(deleted === n, `${deleted} deleted`);
    return tally.check(n);
  }
}

/** Collects what the Queues consumer received, per run tag. */
export class QueueTally extends DurableObject<Env> {
  #tally: Tally | undefined;
  #received = 0;

  add(tag: number, bodies: Uint8Array[]): void {
    this.#tally ??= new Tally(tag);
    for (const body of bodies) this.#tally.add(body);
    this.#received += bodies.length;
  }

  /** `null` until `n` arrived; then the verified check (throws when wrong). */
  status(n: number): string | null {
    if (this.#received < n) return null;
    verify(this.#received === n, `${this.#received} received, expected ${n}`);
    return this.#tally!.check(n);
  }
}

interface RunRequest {
  variant: string;
  n: number;
  tag: number;
  shards?: number;
  callers?: number;
}

interface EngineRun {
  /** storeMessages ×50 instead of storeMessage each. */
  readonly batchStore?: boolean;
  /** The 50 getMessageContents of a claim issued together (Promise.all), not one by one. */
  readonly readsTogether?: boolean;
  /** All callers share one session (one relayer running concurrent deliveries). */
  readonly sharedSession?: boolean;
  /** Drain with claimDueMessages (claim and contents in one call) instead of claim + reads. */
  readonly claimMessages?: boolean;
}

async function runEngine(env: Env, r: RunRequest, how: EngineRun): Promise<string> {
  const engine = new DurableObjectEngine({
    namespace: env.QUEUE,
    shards: r.shards ?? 1,
    name: `bench-${r.tag}`,
  });
  const bodies = makeBodies(r.n, r.tag);
  const callers = r.callers ?? 1;
  const tally = new Tally(r.tag);
  let deleted = 0;
  const shared = how.sharedSession ? await engine.connect() : undefined;
  const open = async () => shared ?? (await engine.connect());
  const done = async (session: StorageSession) => {
    if (session !== shared) await session.close();
  };
  // Each caller stores its share (one message per call, or batches of 50), then all drain.
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      const session = await open();
      const mine = bodies.map((body, i) => ({ body, i })).filter(({ i }) => i % callers === c);
      if (how.batchStore) {
        for (let from = 0; from < mine.length; from += BATCH) {
          await session.storeMessages(
            mine
              .slice(from, from + BATCH)
              .map(({ body, i }) => ({ meta: makeMeta(i), contents: body })),
          );
        }
      } else {
        for (const { body, i } of mine)
          await session.storeMessage({ meta: makeMeta(i), contents: body });
      }
      await done(session);
    }),
  );
  await Promise.all(
    Array.from({ length: callers }, async () => {
      const session = await open();
      for (;;) {
        if (how.claimMessages) {
          const claimed = await session.claimDueMessages({ limit: BATCH, ttl: TTL });
          if (claimed.length === 0) break;
          for (const message of claimed) tally.add(message.contents);
          const result = await session.deleteMessages(claimed);
          verify(result.stale.length === 0, `${result.stale.length} stale`);
          deleted += result.deleted.length;
          continue;
        }
        const leases = await session.claimDue({ limit: BATCH, ttl: TTL });
        if (leases.length === 0) break;
        if (how.readsTogether) {
          const contents = await Promise.all(leases.map((l) => session.getMessageContents(l.id)));
          for (const body of contents) tally.add(body);
        } else {
          for (const lease of leases) tally.add(await session.getMessageContents(lease.id));
        }
        const result = await session.deleteMessages(leases);
        verify(result.stale.length === 0, `${result.stale.length} stale`);
        deleted += result.deleted.length;
      }
      await done(session);
    }),
  );
  verify(deleted === r.n, `${deleted} deleted, expected ${r.n}`);
  const session = await engine.connect();
  const stats = await session.stats();
  verify(stats.total === 0, `${stats.total} left`);
  return tally.check(r.n);
}

/**
 * Raw SQL over RPC: one RPC per store, per claim of 50, per read and per delete of 50, by
 * `callers` concurrent callers over `shards` raw shards (`raw-rpc`: one of each; with more, what
 * the engine's `engine-1x8` … `engine-8x8` rows would cost without the engine). Each store goes
 * to a random shard (as the engine places a `storeMessage`); in the drain, caller `c` claims on
 * shard `c % shards` until it is empty, then moves to the next, and stops after a whole round of
 * empty shards: raw's best case, with none of a cross-shard claim's peeks.
 */
async function runRawRpc(env: Env, r: RunRequest): Promise<string> {
  const shardCount = r.shards ?? 1;
  const callers = r.callers ?? 1;
  const shards = Array.from({ length: shardCount }, (_, i) =>
    env.RAW.get(env.RAW.idFromName(`raw-rpc-${r.tag}:${i}`)),
  );
  const bodies = makeBodies(r.n, r.tag);
  const now = Date.now();
  const pick = () =>
    shardCount === 1 ? 0 : crypto.getRandomValues(new Uint32Array(1))[0]! % shardCount;
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = c; i < r.n; i += callers) {
        await shards[pick()]!.store(`m${i}`, JSON.stringify(makeMeta(i)), bodies[i]!, now);
      }
    }),
  );
  const tally = new Tally(r.tag);
  let deleted = 0;
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      let empty = 0;
      for (let at = c % shardCount; empty < shardCount; ) {
        const shard = shards[at]!;
        const leases = await shard.claim(BATCH, Date.now());
        if (leases.length === 0) {
          empty++;
          at = (at + 1) % shardCount;
          continue;
        }
        empty = 0;
        for (const lease of leases) tally.add(await shard.read(lease.id));
        // Awaited first: `deleted += await …` would read `deleted` before the other callers add.
        const removed = await shard.remove(leases, Date.now());
        deleted += removed;
      }
    }),
  );
  verify(deleted === r.n, `${deleted} deleted, expected ${r.n}`);
  return tally.check(r.n);
}

/** One drain in progress for `/phase`, between its requests (keyed by variant and tag). */
interface PhaseRun {
  /** The claimed leases: the engine's `Lease`s, or the raw shard's id + token. */
  readonly batches: (Lease | RawLease)[][];
  readonly tally: Tally;
}
const phaseRuns = new Map<string, PhaseRun>();

/**
 * One phase of the cycle, for profile.ts: `store` (n messages one per call), `claim` (claims of
 * 50 until empty), `read` (each claimed message's contents, one by one), `delete` (each claim's
 * leases). `engine` on one shard against `raw` SQL over RPC: the same calls, one request per
 * phase, so the profiler can measure each phase apart. The last phase verifies the whole run.
 */
async function runPhase(env: Env, variant: string, phase: string, n: number, tag: number) {
  const key = `${variant}-${tag}`;
  const raw = variant === 'raw' ? env.RAW.get(env.RAW.idFromName(`phase-${key}`)) : undefined;
  const session =
    variant === 'engine'
      ? await new DurableObjectEngine({
          namespace: env.QUEUE,
          shards: 1,
          name: `phase-${key}`,
        }).connect()
      : undefined;
  if (!raw && !session) throw new Error(`unknown variant ${variant}`);
  if (phase === 'store') {
    const bodies = makeBodies(n, tag);
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      if (raw) await raw.store(`m${i}`, JSON.stringify(makeMeta(i)), bodies[i]!, now);
      else await session!.storeMessage({ meta: makeMeta(i), contents: bodies[i]! });
    }
    phaseRuns.set(key, { batches: [], tally: new Tally(tag) });
    return 'stored';
  }
  const run = phaseRuns.get(key);
  if (!run) throw new Error(`no stored run ${key}`);
  if (phase === 'claim') {
    for (;;) {
      const leases = raw
        ? await raw.claim(BATCH, Date.now())
        : await session!.claimDue({ limit: BATCH, ttl: TTL });
      if (leases.length === 0) break;
      run.batches.push(leases);
    }
    return 'claimed';
  }
  if (phase === 'read') {
    for (const batch of run.batches) {
      for (const { id } of batch) {
        run.tally.add(raw ? await raw.read(id) : await session!.getMessageContents(id));
      }
    }
    return 'read';
  }
  if (phase === 'delete') {
    let deleted = 0;
    for (const batch of run.batches) {
      deleted += raw
        ? await raw.remove(batch, Date.now())
        : (await session!.deleteMessages(batch as Lease[])).deleted.length;
    }
    phaseRuns.delete(key);
    verify(deleted === n, `${deleted} deleted, expected ${n}`);
    return run.tally.check(n);
  }
  throw new Error(`unknown phase ${phase}`);
}

/** The ids each `/layer` queue was seeded with (keyed by tag), as engine ids and raw ids. */
const layerQueues = new Map<number, { readonly engineIds: string[]; readonly n: number }>();

/**
 * One batch of `n` calls of one kind, for ab.ts' `layers` mode: the same read or store made
 * three ways, so their CPU time tells which layer costs what. `raw-*`: the raw shard, one RPC
 * each. `shard-*`: the engine's shard through its one RPC method (`call`) directly, with no
 * session. `session-*`: through a `DurableObjectEngine` session. `setup` seeds both queues (reads
 * read them; stores add `n` new messages per call, distinct per `rep`).
 */
async function runLayer(env: Env, kind: string, n: number, tag: number, rep: number) {
  const name = `layer-${tag}`;
  const session = await new DurableObjectEngine({
    namespace: env.QUEUE,
    shards: 1,
    name,
  }).connect();
  // The shard's one RPC method, typed loosely: its call list is internal to the package.
  const shard = env.QUEUE.get(env.QUEUE.idFromName(`${name}:0`)) as unknown as {
    call(calls: { op: string; args: unknown[] }[], answerBytes: number): Promise<unknown[]>;
  };
  const raw = env.RAW.get(env.RAW.idFromName(name));
  const bodies = makeBodies(n, tag);
  const now = Date.now();
  let seeded = layerQueues.get(tag);
  if (kind === 'setup') {
    const engineIds: string[] = [];
    for (let from = 0; from < n; from += BATCH) {
      const batch = bodies.slice(from, from + BATCH);
      engineIds.push(
        ...(await session.storeMessages(
          batch.map((contents, j) => ({ meta: makeMeta(from + j), contents })),
        )),
      );
    }
    for (let i = 0; i < n; i++)
      await raw.store(`m${i}`, JSON.stringify(makeMeta(i)), bodies[i]!, now);
    seeded = { engineIds, n };
    layerQueues.set(tag, seeded);
    return 'seeded';
  }
  if (!seeded || seeded.n !== n) throw new Error(`layer queue ${tag} is not seeded with ${n}`);
  const tally = new Tally(tag);
  switch (kind) {
    case 'raw-read':
      for (let i = 0; i < n; i++) tally.add(await raw.read(`m${i}`));
      break;
    case 'shard-read':
      for (const id of seeded.engineIds) {
        const [answer] = await shard.call(
          [{ op: 'readContents', args: [id, 0, DEFAULT_RPC_PIECE_BYTES, null] }],
          DEFAULT_RPC_PIECE_BYTES,
        );
        const piece = (answer as { ok?: { bytes?: Uint8Array } }).ok?.bytes;
        if (!(piece instanceof Uint8Array)) throw new Error(`no contents for ${id}`);
        tally.add(piece);
      }
      break;
    case 'session-read':
      for (const id of seeded.engineIds) tally.add(await session.getMessageContents(id));
      break;
    case 'raw-store':
      for (let i = 0; i < n; i++) {
        await raw.store(`r${rep}.${i}`, JSON.stringify(makeMeta(i)), bodies[i]!, now);
      }
      return `${n} stored`;
    case 'shard-store':
      for (let i = 0; i < n; i++) {
        const item = {
          id: `s0.r${rep}x${i}`, // shard 0's prefix, then an id no other rep uses
          metaJson: JSON.stringify(makeMeta(i)),
          retryAt: null,
          priority: 1,
          contents: { bytes: bodies[i]! },
        };
        const [answer] = await shard.call([{ op: 'store', args: [[item], now] }], 0);
        if (typeof answer !== 'object' || answer === null || !('ok' in answer)) {
          throw new Error(`store failed: ${JSON.stringify(answer)}`);
        }
      }
      return `${n} stored`;
    case 'session-store':
      for (let i = 0; i < n; i++)
        await session.storeMessage({ meta: makeMeta(i), contents: bodies[i]! });
      return `${n} stored`;
    default:
      throw new Error(`unknown layer kind ${kind}`);
  }
  return tally.check(n);
}

async function run(env: Env, r: RunRequest): Promise<string> {
  switch (r.variant) {
    case 'raw-one-call': {
      const shard = env.RAW.get(env.RAW.idFromName(`raw-one-${r.tag}`));
      return shard.cycle(makeBodies(r.n, r.tag), r.tag);
    }
    case 'raw-two-calls': {
      const shard = env.RAW.get(env.RAW.idFromName(`raw-two-${r.tag}`));
      await shard.storeAll(makeBodies(r.n, r.tag), Date.now());
      return shard.drain(r.n, r.tag);
    }
    case 'raw-rpc':
      return runRawRpc(env, r);
    case 'engine':
      return runEngine(env, r, {});
    case 'engine-reads-together':
      return runEngine(env, r, { readsTogether: true });
    case 'engine-batch':
      return runEngine(env, r, { batchStore: true });
    case 'engine-claim-messages':
      return runEngine(env, r, { claimMessages: true });
    case 'engine-batch-claim-messages':
      return runEngine(env, r, { batchStore: true, claimMessages: true });
    case 'engine-shared':
      return runEngine(env, r, { sharedSession: true, readsTogether: true });
    case 'queues': {
      // Sends only; the consumer below finishes the run (polled through /queue-status).
      const bodies = makeBodies(r.n, r.tag);
      for (const body of bodies) await env.OUTBOX.send(body, { contentType: 'v8' });
      return 'sent';
    }
    default:
      throw new Error(`unknown variant ${r.variant}`);
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/run') {
        return Response.json({ ok: await run(env, (await request.json()) as RunRequest) });
      }
      if (url.pathname === '/phase') {
        const q = url.searchParams;
        const answer = await runPhase(
          env,
          q.get('variant') ?? '',
          q.get('phase') ?? '',
          Number(q.get('n')),
          Number(q.get('tag')),
        );
        return Response.json({ ok: answer });
      }
      if (url.pathname === '/layer') {
        const q = url.searchParams;
        const answer = await runLayer(
          env,
          q.get('kind') ?? '',
          Number(q.get('n')),
          Number(q.get('tag')),
          Number(q.get('rep')),
        );
        return Response.json({ ok: answer });
      }
      if (url.pathname === '/queue-status') {
        const tag = Number(url.searchParams.get('tag'));
        const tally = env.TALLY.get(env.TALLY.idFromName(String(tag)));
        return Response.json({ ok: await tally.status(Number(url.searchParams.get('n'))) });
      }
      return new Response('not found', { status: 404 });
    } catch (error) {
      return Response.json({ error: String((error as Error)?.stack ?? error) }, { status: 500 });
    }
  },

  /** Consumes in batches (max 100), hands the bodies to the run's tally, acks the batch. */
  async queue(batch: MessageBatch<Uint8Array>, env: Env): Promise<void> {
    const bodies = batch.messages.map((m) => m.body);
    verify(
      bodies.every((b) => b instanceof Uint8Array),
      'a body arrived as something else than bytes',
    );
    const tag = new DataView(bodies[0]!.buffer, bodies[0]!.byteOffset).getUint32(4, true);
    await env.TALLY.get(env.TALLY.idFromName(String(tag))).add(tag, bodies);
    batch.ackAll();
  },
};
