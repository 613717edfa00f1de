/**
 * Cases that reach below the contract through the harness's optional hooks: atomicity against a
 * fault inside the engine's own write (`injectFault`), what the store keeps after a delete
 * (`footprint`), state across a restart (`restart`); and what needs no hook: concurrent meta
 * writers, the largest message, the state a message is in.
 */
import { isMailspoolError, type MessageMeta, type StorageSession } from '@mailspool/core';
import { expect } from 'vitest';
import { type ConformanceCase, type Harness, snapshot } from '../harness.js';

const noFaultHook = (_: unknown, options: { injectFault?: unknown }) =>
  options.injectFault
    ? undefined
    : 'the harness gives no injectFault hook (the engine can not fail a write on demand)';
const noFootprintHook = (_: unknown, options: { footprint?: unknown }) =>
  options.footprint ? undefined : 'the harness gives no footprint hook';
const noRestartHook = (
  supports: { persistent: boolean },
  options: { restart?: unknown },
): string | undefined =>
  !supports.persistent
    ? 'not persistent'
    : options.restart
      ? undefined
      : 'the harness gives no restart hook';

/** The most writes a call of these cases makes on any engine we know, with room to spare. */
const MAX_FAULT_POINT = 24;

/**
 * Fails the 1st, 2nd, … write of `call` in turn (each on a fresh `prepare`d store state), until
 * the call makes fewer writes than the fault point and succeeds. After every failure the store
 * must be exactly as before the call. Returns how many fault points failed the call.
 */
async function everyFaultPoint(
  h: Harness,
  prepare: (s: StorageSession) => Promise<() => Promise<unknown>>,
): Promise<number> {
  const s = await h.session();
  for (let write = 1; write <= MAX_FAULT_POINT; write++) {
    const call = await prepare(s);
    const before = await snapshot(s);
    await h.injectFault(write);
    let failed = false;
    try {
      await call();
    } catch (error) {
      failed = true;
      if (error instanceof TypeError) throw error;
    } finally {
      await h.injectFault(undefined);
    }
    if (!failed) {
      if (write === 1) {
        throw new Error('the injected fault at the first write did not fail the call');
      }
      return write - 1;
    }
    expect(await snapshot(s), `after a storage fault at write ${write}`).toEqual(before);
  }
  throw new Error(`the call still failed with a fault at write ${MAX_FAULT_POINT}`);
}

/** Deletes everything, so each fault point starts from the same kind of store. */
async function clear(s: StorageSession): Promise<void> {
  for (const id of await s.getAllMessages()) await s.unlockMessage(id);
  for (const id of await s.getAllMessages()) await s.deleteMessage(id);
}

/** Bytes that are not all the same, so a truncated or shifted copy can't pass. */
function patterned(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}

export const storageCases: ConformanceCase[] = [
  {
    name: 'atomicity: storeMessages that fails at any write inside the engine stores nothing',
    skipUnless: noFaultHook,
    async run(h) {
      const points = await everyFaultPoint(h, async (s) => {
        await clear(s);
        await s.storeMessage({ meta: { keep: true }, contents: 'already here' });
        return () =>
          s.storeMessages([
            { meta: { n: 1 }, contents: 'one' },
            { meta: { n: 2 }, contents: 'two', retryAt: h.clock.now() + 1000 },
            { meta: { n: 3 }, contents: 'three' },
          ]);
      });
      expect(points).toBeGreaterThan(0);
    },
  },
  {
    name: 'atomicity: commitAttempt with store that fails at any write inside the engine changes nothing',
    skipUnless: noFaultHook,
    async run(h) {
      for (const mode of ['update', 'delete'] as const) {
        await everyFaultPoint(h, async (s) => {
          await clear(s);
          const id = await s.storeMessage({ meta: { attempts: 0 }, contents: 'mail' });
          const lease = (await s.acquireLease(id, 60_000))!;
          return () =>
            s.commitAttempt(
              lease,
              mode === 'update'
                ? {
                    meta: { attempts: 1 },
                    retryAt: h.clock.now() + 1000,
                    store: [{ meta: { bounce: true }, contents: 'bounce' }],
                  }
                : { delete: true, store: [{ meta: { bounce: true }, contents: 'bounce' }] },
            );
        });
      }
    },
  },
  {
    name: 'atomicity: deleteMessages that fails at any write inside the engine deletes nothing',
    skipUnless: noFaultHook,
    async run(h) {
      await everyFaultPoint(h, async (s) => {
        await clear(s);
        const ids = await s.storeMessages(
          [1, 2, 3].map((n) => ({ meta: { n }, contents: `m${n}` })),
        );
        const leases = await Promise.all(
          ids.map(async (id) => (await s.acquireLease(id, 60_000))!),
        );
        return () => s.deleteMessages(leases);
      });
    },
  },
  {
    name: 'footprint: the store returns to its baseline after deleteMessage, deleteMessages and commitAttempt({ delete })',
    skipUnless: noFootprintHook,
    async run(h) {
      const s = await h.session();
      const baseline = await h.footprint();
      const big = patterned(300_000);
      const store = () =>
        s.storeMessages([
          { meta: { n: 1 }, contents: big },
          { meta: { n: 2 }, contents: 'small' },
        ]);

      let ids = await store();
      expect(await h.footprint(), 'after storing').not.toEqual(baseline);
      for (const id of ids) await s.deleteMessage(id);
      expect(await h.footprint(), 'after deleteMessage').toEqual(baseline);

      ids = await store();
      const leases = await Promise.all(ids.map(async (id) => (await s.acquireLease(id, 1000))!));
      await s.deleteMessages(leases);
      expect(await h.footprint(), 'after deleteMessages').toEqual(baseline);

      ids = await store();
      for (const id of ids) {
        const lease = (await s.acquireLease(id, 1000))!;
        await s.commitAttempt(lease, { delete: true });
      }
      expect(await h.footprint(), 'after commitAttempt({ delete })').toEqual(baseline);

      // Contents written in pieces (claim, then meta, then contents twice) leave nothing either.
      const id = await s.claimMessageId();
      await s.setMessageContents(id, big);
      await s.setMessageContents(id, 'shorter now');
      await s.setMessageMeta(id, { n: 3 });
      await s.deleteMessage(id);
      expect(await h.footprint(), 'after claim, rewrite and delete').toEqual(baseline);
    },
  },
  {
    name: 'restart: messages, meta, retry times and leases survive a restart of the runtime',
    skipUnless: noRestartHook,
    async run(h) {
      const s = await h.session();
      const [due, later, leased] = await s.storeMessages([
        { meta: { n: 1 }, contents: 'due' },
        { meta: { n: 2 }, contents: 'later', retryAt: h.clock.now() + 5000 },
        { meta: { n: 3 }, contents: 'leased' },
      ]);
      const lease = (await s.acquireLease(leased!, 60_000))!;
      await s.setMessageMetaKey(due!, 'note', 'kept');
      const before = await snapshot(s);

      await h.restart();
      const after = await h.session();
      expect(await snapshot(after)).toEqual(before);
      // The lease is still the current one, and still keeps others out.
      expect(await after.acquireLease(leased!, 1000)).toBeNull();
      await after.renewLease(lease, 60_000);
      expect((await after.inspect(later!)).state).toBe('deferred');
      expect((await after.claimDue({ limit: 10, ttl: 1000 })).map((l) => l.id)).toEqual([due]);
    },
  },
  {
    name: 'meta: concurrent setMessageMetaKey of different keys from many sessions loses no update',
    async run(h) {
      const count = Math.max(h.options.raceSessions ?? 12, 8);
      const sessions = await Promise.all(Array.from({ length: count }, () => h.session()));
      const id = await sessions[0]!.storeMessage({ meta: { base: 0 }, contents: 'x' });
      for (let round = 0; round < 3; round++) {
        await Promise.all(
          sessions.map((s, n) => s.setMessageMetaKey(id, `k${n}`, `${round}:${n}`)),
        );
        const meta = await sessions[0]!.getMessageMeta(id);
        const lost = sessions
          .map((_, writer) => `k${writer}`)
          .filter((key, writer) => meta[key] !== `${round}:${writer}`);
        expect(lost, `keys whose update was lost in round ${round}`).toEqual([]);
        expect(meta.base, 'a key nobody wrote').toBe(0);
      }
    },
  },
  {
    name: 'meta: setMessageMeta racing setMessageMetaKey ends as some order of the writes, never a mix',
    async run(h) {
      const count = Math.max(h.options.raceSessions ?? 12, 8);
      const sessions = await Promise.all(Array.from({ length: count }, () => h.session()));
      // The replace is issued last, first and in the middle of the key writes: whichever way an
      // engine orders them, some key write reads before the replace and writes after it.
      const replacers = [count - 1, 0, count >> 1];
      for (const [round, replacer] of replacers.entries()) {
        const id = await sessions[0]!.storeMessage({ meta: { old: true }, contents: 'x' });
        const replacement: MessageMeta = { replaced: round, also: 'this' };
        await Promise.all(
          sessions.map((s, n) =>
            n === replacer
              ? s.setMessageMeta(id, replacement)
              : s.setMessageMetaKey(id, `k${n}`, n),
          ),
        );
        const meta = await sessions[0]!.getMessageMeta(id);
        // In any order of the writes, the whole-meta replace wipes what came before it and keeps
        // its own keys; key writes after it add their key. Nothing else can be there.
        expect(
          { replaced: meta.replaced, also: meta.also, old: meta.old },
          `round ${round}`,
        ).toEqual({ ...replacement, old: undefined });
        for (const [key, value] of Object.entries(meta)) {
          if (key in replacement) continue;
          expect(key, `round ${round}: an unexpected key`).toMatch(/^k\d+$/);
          expect(value, `round ${round}: ${key}`).toBe(Number(key.slice(1)));
        }
      }
    },
  },
  {
    name: 'large: a message of the largest size the engine accepts (up to 25 MiB) round-trips byte for byte',
    async run(h) {
      const engine = await h.engine();
      const size = Math.min(engine.supports.maxMessageBytes, 25 * 1024 * 1024);
      const bytes = patterned(size);
      const s = await h.session();
      const id = await s.storeMessage({ meta: { size }, contents: bytes });
      const check = (got: Uint8Array, what: string) => {
        expect(got.byteLength, `${what}: length`).toBe(size);
        expect(firstDifference(got, bytes), `${what}: first differing byte`).toBe(-1);
      };
      check(await s.getMessageContents(id), 'getMessageContents');
      expect((await s.inspect(id)).size).toBe(size);
      const [claimed] = await s.claimDueMessages({ limit: 1, ttl: 60_000 });
      expect(claimed?.id).toBe(id);
      check(claimed!.contents, 'claimDueMessages');
      // Rewritten in place, and the caller's buffer changed afterwards: the store keeps its copy.
      const second = patterned(size).reverse();
      await s.setMessageContents(id, second);
      const expected = second.slice();
      second.fill(0);
      const got = await s.getMessageContents(id);
      expect(got.byteLength).toBe(size);
      expect(firstDifference(got, expected), 'after a rewrite').toBe(-1);
    },
  },
  {
    name: 'inspect: tells each state, retry time, lock, token and size without changing anything',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      const claimed = await s.claimMessageId();
      const [due, later] = await s.storeMessages([
        { meta: { n: 1 }, contents: 'abc' },
        { meta: { n: 2 }, contents: 'later', retryAt: now + 500 },
      ]);
      expect(await s.inspect(claimed)).toEqual({
        id: claimed,
        state: 'claimed',
        createdAt: now,
        retryAt: null,
        lockedUntil: null,
        token: 0,
        size: null,
        priority: 'normal',
        meta: {},
      });
      expect(await s.inspect(due!)).toEqual({
        id: due,
        state: 'due',
        createdAt: now,
        retryAt: null,
        lockedUntil: null,
        token: 0,
        size: 3,
        priority: 'normal',
        meta: { n: 1 },
      });
      expect((await s.inspect(later!)).state).toBe('deferred');
      const lease = (await s.acquireLease(due!, 100))!;
      expect(await s.inspect(due!)).toMatchObject({
        state: 'active',
        lockedUntil: now + 100,
        token: lease.token,
      });
      const before = await snapshot(s);
      const info = await s.inspect(due!);
      (info.meta as Record<string, unknown>).n = 99;
      expect(await snapshot(s), 'inspect changed nothing, and its meta is a copy').toEqual(before);
      h.clock.advance(100);
      expect(await s.inspect(due!)).toMatchObject({ state: 'due', lockedUntil: null });
      h.clock.advance(400);
      expect((await s.inspect(later!)).state).toBe('due');
      await s.deleteMessage(due!);
      await expect(s.inspect(due!)).rejects.toSatisfy((e) => isMailspoolError(e, 'NOT_FOUND'));
    },
  },
  {
    name: 'priority: claimDue takes due high mail before normal before bulk, each oldest first; not-yet-due mail waits whatever its priority',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      const store = (n: string, priority?: 'high' | 'normal' | 'bulk', retryAt?: number) =>
        s.storeMessage({
          meta: { n },
          contents: n,
          ...(priority === undefined ? {} : { priority }),
          ...(retryAt === undefined ? {} : { retryAt }),
        });
      // Stored oldest first: bulk, then normal, then high; one high is not due yet.
      const bulk1 = await store('bulk1', 'bulk', now - 300);
      const bulk2 = await store('bulk2', 'bulk', now - 290);
      const normal = await store('normal', undefined, now - 200);
      const explicitNormal = await store('normal2', 'normal', now - 100);
      const high = await store('high', 'high', now - 10);
      const laterHigh = await store('laterHigh', 'high', now + 1000);
      expect((await s.inspect(bulk1)).priority).toBe('bulk');
      expect((await s.inspect(normal)).priority).toBe('normal');
      expect((await s.inspect(laterHigh)).priority).toBe('high');
      const first = await s.claimDue({ limit: 2, ttl: 60_000 });
      expect(first.map((l) => l.id)).toEqual([high, normal]);
      const rest = await s.claimDueMessages({ limit: 10, ttl: 60_000 });
      expect(rest.map((l) => l.id)).toEqual([explicitNormal, bulk1, bulk2]);
      h.clock.advance(1000);
      expect((await s.claimDue({ limit: 10, ttl: 60_000 })).map((l) => l.id)).toEqual([laterHigh]);
      await expect(
        s.storeMessage({ meta: {}, contents: 'x', priority: 'urgent' as never }),
      ).rejects.toThrow(TypeError);
    },
  },
  {
    name: 'nextDueAt: the earliest time anything can be claimed, counting locks, or null',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      expect(await s.nextDueAt()).toBeNull();
      await s.claimMessageId(); // never claimable: not counted
      expect(await s.nextDueAt()).toBeNull();
      const [a, b] = await s.storeMessages([
        { meta: {}, contents: 'a', retryAt: now + 300 },
        { meta: {}, contents: 'b', retryAt: now + 200 },
      ]);
      expect(await s.nextDueAt()).toBe(now + 200);
      // A lock held past the due time moves the time to the lock's end.
      await s.lockMessage(b!, 1000);
      expect(await s.nextDueAt()).toBe(now + 300);
      await s.lockMessage(a!, 500);
      expect(await s.nextDueAt()).toBe(now + 500);
      const [c] = await s.storeMessages([{ meta: {}, contents: 'c' }]);
      expect(await s.nextDueAt(), 'due now: at or before now').toBe(now);
      await s.deleteMessage(c!);
      h.clock.advance(600);
      expect(await s.nextDueAt(), 'a lapsed lock no longer counts').toBe(now + 300);
    },
  },
];
