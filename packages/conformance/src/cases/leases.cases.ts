/** Cases for locks, leases, fencing tokens and fenced writes. */
import type { FenceOptions, Lease, StorageSession } from '@mailspool/core';
import { expect } from 'vitest';
import { type ConformanceCase, expectCode, sampleMeta, snapshot } from '../harness.js';

/** Every fenced write, run with `fence`; used to show that a stale lease changes nothing. */
function fencedWrites(session: StorageSession, id: string, fence: FenceOptions & { lease: Lease }) {
  return [
    ['setMessageRetry', () => session.setMessageRetry(id, 123, fence)],
    ['setMessageMetaKey', () => session.setMessageMetaKey(id, 'attempts', 99, fence)],
    ['setMessageMeta', () => session.setMessageMeta(id, { replaced: true }, fence)],
    ['deleteMessage', () => session.deleteMessage(id, fence)],
    ['releaseLease', () => session.releaseLease(fence.lease)],
    ['renewLease', () => session.renewLease(fence.lease, 5000)],
  ] as const;
}

async function expectAllStale(session: StorageSession, id: string, lease: Lease): Promise<void> {
  const before = await snapshot(session);
  for (const [what, call] of fencedWrites(session, id, { lease })) {
    await expectCode(call(), 'STALE_LEASE', `${what} with a stale lease`);
  }
  expect(await snapshot(session)).toEqual(before);
}

export const leaseCases: ConformanceCase[] = [
  {
    name: 'lockMessage locks exclusively until exactly now + ttl',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: sampleMeta(), contents: 'x' });
      expect(await a.lockMessage(id, 1000)).toBe(true);
      expect(await b.lockMessage(id, 1000)).toBe(false);
      expect(await a.lockMessage(id, 1000)).toBe(false);
      expect(await b.getActiveMessages()).toEqual([id]);
      expect(await b.stats()).toEqual({ total: 1, active: 1, deferred: 0, due: 0 });
      h.clock.advance(999);
      expect(await b.lockMessage(id, 1000)).toBe(false);
      expect(await b.getActiveMessages()).toEqual([id]);
      h.clock.advance(1);
      expect(await b.getActiveMessages()).toEqual([]);
      expect(await b.stats()).toEqual({ total: 1, active: 0, deferred: 0, due: 1 });
      expect(await b.lockMessage(id, 1000)).toBe(true);
      expect(await a.lockMessage(id, 1000)).toBe(false);
    },
  },
  {
    name: 'a claimed message with nothing written can be locked',
    async run(h) {
      const session = await h.session();
      const id = await session.claimMessageId();
      expect(await session.lockMessage(id, 1000)).toBe(true);
      expect(await session.getActiveMessages()).toEqual([id]);
      expect((await session.stats()).active).toBe(1);
    },
  },
  {
    name: "unlockMessage drops anyone's lock; the next lock succeeds",
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: {}, contents: 'x' });
      expect(await a.lockMessage(id, 60_000)).toBe(true);
      await b.unlockMessage(id);
      expect(await a.getActiveMessages()).toEqual([]);
      await b.unlockMessage(id);
      expect(await b.lockMessage(id, 60_000)).toBe(true);
    },
  },
  {
    name: 'acquireLease returns { id, token, expiresAt = now + ttl } or null while locked',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: {}, contents: 'x' });
      const lease = await session.acquireLease(id, 1500);
      expect(lease).not.toBeNull();
      expect(lease!.id).toBe(id);
      expect(Number.isSafeInteger(lease!.token)).toBe(true);
      expect(lease!.token).toBeGreaterThan(0);
      expect(lease!.expiresAt).toBe(h.clock.now() + 1500);
      expect(await session.acquireLease(id, 1500)).toBeNull();
      expect(await session.lockMessage(id, 1500)).toBe(false);
      expect(await session.getActiveMessages()).toEqual([id]);
    },
  },
  {
    name: 'fencing tokens strictly increase across lockMessage, acquireLease and claimDue',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: {}, contents: 'x' });
      const tokens: number[] = [];
      for (let round = 0; round < 4; round++) {
        const lease = (await session.acquireLease(id, 100))!;
        tokens.push(lease.token);
        await session.releaseLease(lease);
        expect(await session.lockMessage(id, 100)).toBe(true);
        await session.unlockMessage(id);
        const [claimed] = await session.claimDue({ limit: 1, ttl: 100 });
        expect(claimed?.id).toBe(id);
        tokens.push(claimed!.token);
        h.clock.advance(100); // let the claim expire instead of releasing it
      }
      for (let i = 1; i < tokens.length; i++) {
        // Each step above locked twice (lockMessage between leases), so tokens grow by at least 1 each time.
        expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
      }
      // lockMessage in between must have moved the token too: lease after lock > lock's own token.
      const first = (await session.acquireLease(id, 100))!;
      await session.releaseLease(first);
      await session.lockMessage(id, 100);
      await session.unlockMessage(id);
      const second = (await session.acquireLease(id, 100))!;
      expect(second.token).toBeGreaterThanOrEqual(first.token + 2);
    },
  },
  {
    name: 'renewLease extends a current lease with the same token',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: {}, contents: 'x' });
      const lease = (await session.acquireLease(id, 1000))!;
      h.clock.advance(900);
      const renewed = await session.renewLease(lease, 1000);
      expect(renewed).toEqual({ id, token: lease.token, expiresAt: h.clock.now() + 1000 });
      h.clock.advance(500);
      expect(await session.lockMessage(id, 10)).toBe(false);
      expect(await session.getActiveMessages()).toEqual([id]);
      // Either the renewed or the original object may be passed: the token decides.
      await session.setMessageRetry(id, h.clock.now() + 10, { lease: renewed });
      await session.setMessageRetry(id, h.clock.now() + 20, { lease });
    },
  },
  {
    name: 'an expired lease that nobody replaced is still current: writes, renew and release succeed',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      const lease = (await session.acquireLease(id, 1000))!;
      h.clock.advance(5000);
      expect(await session.getActiveMessages()).toEqual([]);
      await session.setMessageMetaKey(id, 'attempts', 1, { lease });
      await session.setMessageMeta(id, { attempts: 2 }, { lease });
      await session.setMessageRetry(id, h.clock.now() + 60_000, { lease });
      const renewed = await session.renewLease(lease, 1000);
      expect(renewed.token).toBe(lease.token);
      expect(await session.getActiveMessages()).toEqual([id]);
      await session.releaseLease(lease);
      expect(await session.getActiveMessages()).toEqual([]);
      expect(await session.getMessageMeta(id)).toEqual({ attempts: 2 });
      expect(await session.getDeferredMessages()).toEqual([id]);
    },
  },
  {
    name: 'a lease taken over by a later lock is stale: every fenced write rejects STALE_LEASE and changes nothing',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      const old = (await a.acquireLease(id, 1000))!;
      h.clock.advance(1000);
      const taken = (await b.acquireLease(id, 60_000))!;
      expect(taken.token).toBeGreaterThan(old.token);
      await expectAllStale(a, id, old);
      // The new holder is unaffected.
      await b.setMessageMetaKey(id, 'attempts', 1, { lease: taken });
      expect(await b.getMessageMetaKey(id, 'attempts')).toBe(1);
      expect(await b.getActiveMessages()).toEqual([id]);
    },
  },
  {
    name: 'lockMessage by someone else also makes an older lease stale',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: {}, contents: 'x' });
      const old = (await a.acquireLease(id, 1000))!;
      h.clock.advance(1000);
      expect(await b.lockMessage(id, 60_000)).toBe(true);
      await expectAllStale(a, id, old);
    },
  },
  {
    name: 'releaseLease unlocks; the released lease is stale afterwards',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: {}, contents: 'x' });
      const lease = (await session.acquireLease(id, 60_000))!;
      await session.releaseLease(lease);
      expect(await session.getActiveMessages()).toEqual([]);
      await expectAllStale(session, id, lease);
      expect(await session.lockMessage(id, 1000)).toBe(true);
    },
  },
  {
    name: "an administrator's unlockMessage makes the current lease stale",
    async run(h) {
      const relayer = await h.session();
      const admin = await h.session();
      const id = await relayer.storeMessage({ meta: {}, contents: 'x' });
      const lease = (await relayer.acquireLease(id, 60_000))!;
      await admin.unlockMessage(id);
      expect(await admin.getActiveMessages()).toEqual([]);
      await expectAllStale(relayer, id, lease);
    },
  },
  {
    name: 'fenced writes with a current lease succeed, and a fenced delete removes every trace',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      const lease = (await session.acquireLease(id, 60_000))!;
      await session.setMessageMetaKey(id, 'attempts', 1, { lease });
      await session.setMessageMeta(id, { attempts: 2, last: 'temp fail' }, { lease });
      await session.setMessageRetry(id, h.clock.now() + 1000, { lease });
      expect(await session.getMessageMeta(id)).toEqual({ attempts: 2, last: 'temp fail' });
      await session.deleteMessage(id, { lease });
      expect(await session.getAllMessages()).toEqual([]);
      expect(await session.stats()).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
    },
  },
  {
    name: 'a fenced call on a message deleted by someone else rejects STALE_LEASE',
    async run(h) {
      const relayer = await h.session();
      const admin = await h.session();
      const id = await relayer.storeMessage({ meta: {}, contents: 'x' });
      const lease = (await relayer.acquireLease(id, 60_000))!;
      await admin.deleteMessage(id);
      for (const [what, call] of fencedWrites(relayer, id, { lease })) {
        await expectCode(call(), 'STALE_LEASE', `${what} after the message was deleted`);
      }
      expect(await admin.getAllMessages()).toEqual([]);
    },
  },
  {
    name: "unfenced writes still work on a locked message (the seed's behaviour)",
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: {}, contents: 'x' });
      expect(await a.lockMessage(id, 60_000)).toBe(true);
      await b.setMessageMetaKey(id, 'note', 'admin');
      await b.setMessageRetry(id, h.clock.now() + 10);
      expect(await a.getMessageMetaKey(id, 'note')).toBe('admin');
      await b.deleteMessage(id);
      expect(await a.getAllMessages()).toEqual([]);
    },
  },
];
