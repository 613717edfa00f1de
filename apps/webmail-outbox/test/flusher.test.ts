import { MemoryEngine, type StorageEngine } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { backoffCap } from '../src/backoff.js';
import { Flusher, type FlusherEvent, type FlusherOptions } from '../src/flusher.js';
import { HELD_UNTIL, MetaKey } from '../src/meta.js';
import { listOutbox, retryNow, wake } from '../src/outbox.js';
import { ManualTimers, queue, RELAY_URL, RelayDouble, settle, setup, TOKEN } from './helpers.js';

const config = () => ({ relayUrl: RELAY_URL, token: TOKEN });

function makeFlusher(
  env: ReturnType<typeof setup>,
  relay: RelayDouble,
  extra: Partial<FlusherOptions> = {},
): { flusher: Flusher; events: FlusherEvent[] } {
  const events: FlusherEvent[] = [];
  const flusher = new Flusher({
    engine: env.engine,
    history: env.history,
    config,
    fetch: relay.fetch,
    clock: env.clock,
    random: () => 0.5,
    timers: new ManualTimers(env.clock),
    isOnline: () => true,
    onEvent: (event) => events.push(event),
    ...extra,
  });
  return { flusher, events };
}

/** The engine's retry time of `id` (what the flusher scheduled), asked with `inspect`. */
async function retryAtOf(engine: StorageEngine, id: string): Promise<number> {
  const session = await engine.connect();
  try {
    const { retryAt } = await session.inspect(id);
    if (retryAt === null) throw new Error(`${id} was never deferred`);
    return retryAt;
  } finally {
    await session.close();
  }
}

async function metaOf(engine: StorageEngine, id: string) {
  const session = await engine.connect();
  try {
    return await session.getMessageMeta(id);
  } finally {
    await session.close();
  }
}

async function ids(engine: StorageEngine): Promise<string[]> {
  const session = await engine.connect();
  try {
    return await session.getAllMessages();
  } finally {
    await session.close();
  }
}

describe('Flusher', () => {
  it('posts a due message with its id as Idempotency-Key, deletes it and records it as sent', async () => {
    const env = setup();
    const relay = new RelayDouble();
    const id = await queue(env.engine, env.clock, 'First');
    const session = await env.engine.connect();
    const stored = await session.getMessageContents(id);
    await session.close();
    const { flusher, events } = makeFlusher(env, relay);

    const report = await flusher.flush();

    expect(report.outcomes.sent).toBe(1);
    expect(relay.requests).toHaveLength(1);
    const [request] = relay.requests;
    expect(request!.key).toBe(id);
    expect(request!.authorization).toBe(`Bearer ${TOKEN}`);
    expect(request!.body.from).toBe('alice@example.com');
    expect(request!.body.to).toEqual(['bob@example.org']);
    expect(new Uint8Array(Buffer.from(request!.body.raw, 'base64'))).toEqual(stored);
    expect(await ids(env.engine)).toEqual([]);
    const sent = await env.history.list();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      outboxId: id,
      subject: 'First',
      relayId: `relay-${id}`,
      duplicate: false,
      attempts: 1,
    });
    expect(events).toEqual([{ type: 'sent', id, relayId: `relay-${id}`, duplicate: false }]);
  });

  it('after a 503 retries once the backoff has passed, within its bounds, and succeeds exactly once', async () => {
    const env = setup();
    const relay = new RelayDouble().script({
      status: 503,
      body: { error: { code: 'UNAVAILABLE', message: 'storage' } },
    });
    const id = await queue(env.engine, env.clock);
    const random = [0.999, 0];
    const { flusher } = makeFlusher(env, relay, { random: () => random.shift() ?? 0 });
    const t0 = env.clock.now();

    const first = await flusher.flush();
    expect(first.outcomes.retry).toBe(1);
    const meta = await metaOf(env.engine, id);
    expect(meta[MetaKey.status]).toBe('retry');
    expect(meta.attempts).toBe(1);
    expect(meta[MetaKey.lastError]).toBe('503 UNAVAILABLE: storage');
    expect(meta[MetaKey.lastErrorKind]).toBe('unavailable');
    const at = await retryAtOf(env.engine, id);
    expect(meta).not.toHaveProperty('next_attempt_at');
    const cap = backoffCap(1);
    expect(at - t0).toBeGreaterThanOrEqual(cap / 2);
    expect(at - t0).toBeLessThanOrEqual(cap);

    // Not due yet: nothing is posted.
    env.clock.set(at - 1);
    expect((await flusher.flush()).claimed).toBe(0);
    expect(relay.requests).toHaveLength(1);

    env.clock.set(at);
    const second = await flusher.flush();
    expect(second.outcomes.sent).toBe(1);
    expect(relay.requests).toHaveLength(2);
    expect(relay.requests.map((r) => r.key)).toEqual([id, id]);
    expect(relay.accepted.size).toBe(1);
    expect(await ids(env.engine)).toEqual([]);
    expect((await env.history.list())[0]).toMatchObject({ outboxId: id, attempts: 2 });
  });

  it("drops an older page's next_attempt_at at the next write; the row's retry time is the engine's", async () => {
    const env = setup();
    const relay = new RelayDouble().script({ status: 503 });
    const id = await queue(env.engine, env.clock);
    const session = await env.engine.connect();
    const lease = await session.acquireLease(id, 60_000);
    if (!lease) throw new Error('no lease');
    const legacy = { ...(await session.getMessageMeta(id)), next_attempt_at: 1 };
    await session.setMessageMeta(id, legacy, { lease });
    await session.releaseLease(lease);
    await session.close();
    const { flusher } = makeFlusher(env, relay);

    expect((await flusher.flush()).outcomes.retry).toBe(1);

    expect(await metaOf(env.engine, id)).not.toHaveProperty('next_attempt_at');
    const [row] = await listOutbox(env.engine);
    expect(row!.nextAttemptAt).toBe(await retryAtOf(env.engine, id));
    expect(row!.nextAttemptAt).toBeGreaterThan(env.clock.now());
  });

  it('honours Retry-After on 503, bounded by the largest backoff', async () => {
    const env = setup();
    const relay = new RelayDouble().script(
      { status: 503, headers: { 'retry-after': '120' } },
      { status: 503, headers: { 'retry-after': '999999' } },
    );
    const id = await queue(env.engine, env.clock);
    const { flusher } = makeFlusher(env, relay, { backoff: { baseMs: 1_000, maxMs: 600_000 } });
    const t0 = env.clock.now();
    await flusher.flush();
    expect(await retryAtOf(env.engine, id)).toBe(t0 + 120_000);
    env.clock.set(t0 + 120_000);
    await flusher.flush();
    expect(await retryAtOf(env.engine, id)).toBe(t0 + 120_000 + 600_000);
  });

  it('backs off exponentially on network errors and never beyond the cap', async () => {
    const env = setup();
    const relay = new RelayDouble().script(
      ...Array.from({ length: 12 }, () => 'network-error' as const),
    );
    const id = await queue(env.engine, env.clock);
    const backoff = { baseMs: 1_000, maxMs: 60_000 };
    const { flusher } = makeFlusher(env, relay, { backoff, random: () => 1 - 1e-12 });
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      const before = env.clock.now();
      await flusher.flush();
      const at = await retryAtOf(env.engine, id);
      delays.push(at - before);
      env.clock.set(at);
    }
    expect(relay.requests).toHaveLength(12);
    expect(delays.slice(0, 4)).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(Math.max(...delays)).toBe(60_000);
    expect((await metaOf(env.engine, id)).attempts).toBe(12);
  });

  it('marks a 400 as failed and holds it; "retry now" revives it and it is sent', async () => {
    const env = setup();
    const relay = new RelayDouble().script({
      status: 400,
      body: { error: { code: 'INVALID_ADDRESS', message: 'bad recipient' } },
    });
    const id = await queue(env.engine, env.clock);
    const { flusher, events } = makeFlusher(env, relay);

    expect((await flusher.flush()).outcomes.failed).toBe(1);
    const meta = await metaOf(env.engine, id);
    expect(meta[MetaKey.status]).toBe('failed');
    expect(meta[MetaKey.lastError]).toBe('400 INVALID_ADDRESS: bad recipient');
    expect(meta[MetaKey.lastErrorKind]).toBe('rejected');
    expect(events.at(-1)).toMatchObject({ type: 'failed', id, kind: 'rejected' });
    expect((await listOutbox(env.engine))[0]).toMatchObject({ id, state: 'failed' });

    // Held: a year later it is still not posted.
    env.clock.advance(365 * 24 * 3600_000);
    expect((await flusher.flush()).claimed).toBe(0);
    const session = await env.engine.connect();
    expect(await session.getDeferredMessages(HELD_UNTIL - 1)).toEqual([]);
    await session.close();

    expect(await retryNow(env.engine, id, env.clock.now())).toBe('done');
    expect((await listOutbox(env.engine))[0]).toMatchObject({
      id,
      state: 'queued',
      lastError: null,
    });
    expect((await flusher.flush()).outcomes.sent).toBe(1);
    expect(relay.requests).toHaveLength(2);
    expect(await ids(env.engine)).toEqual([]);
  });

  it.each([409, 413, 415])('marks a %i as failed for good', async (status) => {
    const env = setup();
    const relay = new RelayDouble().script({
      status,
      body: { error: { code: 'X', message: 'no' } },
    });
    const id = await queue(env.engine, env.clock);
    const { flusher } = makeFlusher(env, relay);
    await flusher.flush();
    expect((await metaOf(env.engine, id))[MetaKey.status]).toBe('failed');
  });

  it('re-posts after a lost response with the same Idempotency-Key; the relay keeps one copy', async () => {
    const env = setup();
    const relay = new RelayDouble().script('lost-response');
    const id = await queue(env.engine, env.clock);
    const { flusher } = makeFlusher(env, relay);

    expect((await flusher.flush()).outcomes.retry).toBe(1);
    expect(relay.accepted.size).toBe(1); // It did arrive.
    expect((await metaOf(env.engine, id))[MetaKey.lastErrorKind]).toBe('network');

    env.clock.set(await retryAtOf(env.engine, id));
    expect((await flusher.flush()).outcomes.sent).toBe(1);
    expect(relay.requests.map((r) => r.key)).toEqual([id, id]);
    expect(relay.requests[1]!.body).toEqual(relay.requests[0]!.body);
    expect(relay.accepted.size).toBe(1);
    expect((await env.history.list())[0]).toMatchObject({ outboxId: id, duplicate: true });
  });

  it('writes nothing when its lease was taken over during the post (success and failure)', async () => {
    for (const answer of [{ status: 202, body: { id: 'r1', duplicate: false } }, { status: 503 }]) {
      const env = setup();
      const relay = new RelayDouble().script(answer);
      const id = await queue(env.engine, env.clock);
      const before = await metaOf(env.engine, id);
      const { flusher, events } = makeFlusher(env, relay);
      let open!: () => void;
      relay.gate = new Promise<void>((resolve) => {
        open = resolve;
      });

      const running = flusher.flush();
      await settle();
      expect(relay.requests).toHaveLength(1);
      // An administrator unlocks it and another relayer claims it: our fencing token is stale.
      const other = await env.engine.connect();
      await other.unlockMessage(id);
      const [taken] = await other.claimDue({ limit: 1, ttl: 60_000 });
      expect(taken?.id).toBe(id);
      open();
      const report = await running;

      expect(report.outcomes.stale).toBe(1);
      expect(events).toEqual([{ type: 'stale', id }]);
      expect(await other.getAllMessages()).toEqual([id]);
      expect(await other.getMessageMeta(id)).toEqual(before);
      expect(await env.history.list()).toEqual([]);
      // The new holder still owns it.
      await other.releaseLease(taken!);
      await other.close();
    }
  });

  it('renews the lease while a post is slow, so no other flusher takes the message', async () => {
    const env = setup();
    const relay = new RelayDouble();
    const id = await queue(env.engine, env.clock);
    const timers = new ManualTimers(env.clock);
    const { flusher } = makeFlusher(env, relay, {
      timers,
      leaseTtlMs: 30_000,
      requestTimeoutMs: 300_000,
    });
    let open!: () => void;
    relay.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const running = flusher.flush();
    await settle();
    // Walk 3 minutes in 10-second steps, firing the renewal timers as a browser would.
    for (let i = 0; i < 18; i++) {
      env.clock.advance(10_000);
      timers.fireDue();
      await settle();
      const other = await env.engine.connect();
      expect(await other.claimDue({ limit: 1, ttl: 30_000 })).toEqual([]);
      await other.close();
    }
    open();
    expect((await running).outcomes.sent).toBe(1);
    expect(relay.requests.map((r) => r.key)).toEqual([id]);
  });

  it('two flushers over one outbox never post the same message concurrently', async () => {
    const env = setup();
    const relay = new RelayDouble();
    const queued: string[] = [];
    for (let i = 0; i < 12; i++) queued.push(await queue(env.engine, env.clock, `Mail ${i}`));
    // A second tab: another engine instance on the same store, with its own flusher. Posts
    // answer on a later macrotask, so the two flushers' passes interleave.
    const tab2 = { ...env, engine: new MemoryEngine({ clock: env.clock, store: env.store }) };
    const interleaved: typeof fetch = async (input, init) => {
      await new Promise((resolve) => setImmediate(resolve));
      return relay.fetch(input, init);
    };
    const a = makeFlusher(env, relay, { limit: 2, fetch: interleaved }).flusher;
    const b = makeFlusher(tab2, relay, { limit: 2, fetch: interleaved }).flusher;

    const [ra, rb] = await Promise.all([a.flush(), b.flush()]);

    expect(ra.outcomes.sent + rb.outcomes.sent).toBe(12);
    expect(ra.outcomes.sent).toBeGreaterThan(0);
    expect(rb.outcomes.sent).toBeGreaterThan(0);
    expect(relay.maxConcurrentPerKey).toBe(1);
    expect(relay.requests).toHaveLength(12);
    expect(new Set(relay.requests.map((r) => r.key))).toEqual(new Set(queued));
    expect(relay.accepted.size).toBe(12);
    expect(await ids(env.engine)).toEqual([]);
    expect((await env.history.list()).map((e) => e.outboxId).sort()).toEqual([...queued].sort());
  });

  it('on 401 keeps mail queued, surfaces a configuration error and stops the pass', async () => {
    const env = setup();
    const relay = new RelayDouble();
    for (let i = 0; i < 5; i++) await queue(env.engine, env.clock, `Mail ${i}`);
    const { flusher, events } = makeFlusher(env, relay, {
      limit: 2,
      config: () => ({ relayUrl: RELAY_URL, token: 'wrong' }),
    });

    const report = await flusher.flush();

    expect(report.outcomes.config).toBe(2);
    expect(relay.requests).toHaveLength(2);
    expect(relay.accepted.size).toBe(0);
    expect(events.filter((e) => e.type === 'config')).toHaveLength(2);
    expect(events[0]).toMatchObject({ type: 'config', error: '401 UNAUTHORIZED: bad token' });
    const items = await listOutbox(env.engine);
    const waiting = items.filter((item) => item.lastErrorKind === 'config');
    expect(waiting).toHaveLength(2);
    for (const item of waiting) expect(item).toMatchObject({ state: 'queued', attempts: 0 });

    // Fixed settings: wake what waited for them, and everything goes.
    const fixed = makeFlusher(env, relay).flusher;
    expect(await wake(env.engine, ['config'], env.clock.now())).toBe(2);
    expect((await fixed.flush()).outcomes.sent).toBe(5);
    expect(relay.accepted.size).toBe(5);
  });

  it('offline: a failed post is not an attempt, the mail stays queued and "online" wakes it', async () => {
    const env = setup();
    const relay = new RelayDouble().script('network-error');
    const id = await queue(env.engine, env.clock);
    let online = false;
    const { flusher } = makeFlusher(env, relay, { isOnline: () => online });

    // Offline, passes claim nothing (so nothing shows as "sending") until a probe is due…
    expect(await flusher.flush()).toMatchObject({ skipped: 'offline', claimed: 0 });
    expect(relay.requests).toHaveLength(0);
    expect((await listOutbox(env.engine))[0]).toMatchObject({ state: 'queued', attempts: 0 });
    // …then one probe tries the network anyway (for runtimes that say offline wrongly).
    env.clock.advance(30_000);
    expect((await flusher.flush()).outcomes.offline).toBe(1);
    const item = (await listOutbox(env.engine))[0]!;
    expect(item).toMatchObject({ state: 'queued', attempts: 0, lastErrorKind: 'offline' });
    expect(item.nextAttemptAt! - env.clock.now()).toBeGreaterThanOrEqual(15_000);

    online = true;
    expect(await wake(env.engine, ['offline'], env.clock.now())).toBe(1);
    expect((await flusher.flush()).outcomes.sent).toBe(1);
    expect(relay.accepted.has(id)).toBe(true);
  });

  it('gives up as "expired" after the queue lifetime, and "retry now" still revives it', async () => {
    const env = setup();
    const relay = new RelayDouble().script({ status: 502 });
    const id = await queue(env.engine, env.clock);
    env.clock.advance(6 * 24 * 3600_000);
    const { flusher } = makeFlusher(env, relay);
    expect((await flusher.flush()).outcomes.failed).toBe(1);
    expect(await metaOf(env.engine, id)).toMatchObject({
      [MetaKey.status]: 'failed',
      [MetaKey.lastErrorKind]: 'expired',
    });
    await retryNow(env.engine, id, env.clock.now());
    expect((await flusher.flush()).outcomes.sent).toBe(1);
  });

  it('does nothing without a configuration', async () => {
    const env = setup();
    const relay = new RelayDouble();
    await queue(env.engine, env.clock);
    const { flusher } = makeFlusher(env, relay, { config: () => null });
    expect(await flusher.flush()).toMatchObject({ skipped: 'unconfigured', claimed: 0 });
    expect(relay.requests).toEqual([]);
  });

  it('rejects bad options with a TypeError', () => {
    const env = setup();
    expect(
      () => new Flusher({ engine: env.engine, history: env.history, config, limit: 0 }),
    ).toThrow(TypeError);
    expect(() => new Flusher({} as FlusherOptions)).toThrow(TypeError);
  });
});
