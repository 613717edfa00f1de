/** Cases for the queue's states and lists, claimDue, batch deletes and stats. */
import type { StorageSession } from '@mailspool/core';
import { expect } from 'vitest';
import { type ConformanceCase, expectCode, sampleMeta, snapshot } from '../harness.js';

const sorted = (ids: string[]) => [...ids].sort();

async function states(session: StorageSession) {
  return {
    all: sorted(await session.getAllMessages()),
    active: sorted(await session.getActiveMessages()),
    deferred: sorted(await session.getDeferredMessages()),
    stats: await session.stats(),
  };
}

export const claimCases: ConformanceCase[] = [
  {
    name: 'lifecycle: claimed → stored → active → deferred → due → active → deleted, with lists and stats at each step',
    async run(h) {
      const s = await h.session();
      const id = await s.claimMessageId();
      expect(await states(s)).toEqual({
        all: [id],
        active: [],
        deferred: [],
        stats: { total: 1, active: 0, deferred: 0, due: 0 },
      });

      await s.setMessageMeta(id, sampleMeta());
      expect((await s.stats()).due).toBe(0); // meta alone is not complete
      await s.setMessageContents(id, 'Subject: x\r\n\r\ny\r\n');
      expect(await states(s)).toEqual({
        all: [id],
        active: [],
        deferred: [],
        stats: { total: 1, active: 0, deferred: 0, due: 1 },
      });

      const lease = (await s.acquireLease(id, 30_000))!;
      expect(await states(s)).toEqual({
        all: [id],
        active: [id],
        deferred: [],
        stats: { total: 1, active: 1, deferred: 0, due: 0 },
      });

      // A temporary failure: attempts + 1, retry in 5 minutes, release.
      await s.setMessageMetaKey(id, 'attempts', 1, { lease });
      await s.setMessageRetry(id, h.clock.now() + 300_000, { lease });
      expect(await states(s)).toEqual({
        all: [id],
        active: [id],
        deferred: [],
        stats: { total: 1, active: 1, deferred: 0, due: 0 },
      });
      await s.releaseLease(lease);
      expect(await states(s)).toEqual({
        all: [id],
        active: [],
        deferred: [id],
        stats: { total: 1, active: 0, deferred: 1, due: 0 },
      });

      h.clock.advance(300_000);
      // Still listed as deferred (it has a retry time), but now due rather than waiting.
      expect(await states(s)).toEqual({
        all: [id],
        active: [],
        deferred: [id],
        stats: { total: 1, active: 0, deferred: 0, due: 1 },
      });
      expect(await s.getDeferredMessages(h.clock.now())).toEqual([id]);

      const [again] = await s.claimDue({ limit: 10, ttl: 30_000 });
      expect(again?.id).toBe(id);
      expect(again!.token).toBeGreaterThan(lease.token);
      expect(await states(s)).toEqual({
        all: [id],
        active: [id],
        deferred: [],
        stats: { total: 1, active: 1, deferred: 0, due: 0 },
      });

      await s.deleteMessage(id, { lease: again! });
      expect(await states(s)).toEqual({
        all: [],
        active: [],
        deferred: [],
        stats: { total: 0, active: 0, deferred: 0, due: 0 },
      });
    },
  },
  {
    name: 'getDeferredMessages lists retry-scheduled, unlocked ids; dueBy keeps those due by then',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      const [fresh, past, soon, later, locked] = await s.storeMessages([
        { meta: {}, contents: 'a' },
        { meta: {}, contents: 'b', retryAt: now - 10 },
        { meta: {}, contents: 'c', retryAt: now + 100 },
        { meta: {}, contents: 'd', retryAt: now + 10_000 },
        { meta: {}, contents: 'e', retryAt: now + 100 },
      ]);
      expect(await s.lockMessage(locked!, 50_000)).toBe(true);
      expect(sorted(await s.getDeferredMessages())).toEqual(sorted([past!, soon!, later!]));
      expect(sorted(await s.getDeferredMessages(now))).toEqual([past!]);
      expect(sorted(await s.getDeferredMessages(now + 100))).toEqual(sorted([past!, soon!]));
      expect(sorted(await s.getDeferredMessages(now + 10_000))).toEqual(
        sorted([past!, soon!, later!]),
      );
      expect(await s.getDeferredMessages(now - 11)).toEqual([]);
      expect(await s.stats()).toEqual({ total: 5, active: 1, deferred: 2, due: 2 });
      expect(fresh).toBeDefined();
    },
  },
  {
    name: 'claimDue takes the oldest due first and honours the limit',
    async run(h) {
      const s = await h.session();
      const ids: string[] = [];
      for (let n = 0; n < 6; n++) {
        ids.push(await s.storeMessage({ meta: sampleMeta(n), contents: `m${n}` }));
        h.clock.advance(10);
      }
      // Rescheduling the first two into the past-but-later puts them behind the rest.
      const start = h.clock.now() - 60;
      await s.setMessageRetry(ids[0]!, start + 45);
      await s.setMessageRetry(ids[1]!, start + 55);
      const expected = [ids[2], ids[3], ids[4], ids[0], ids[5], ids[1]];
      const first = await s.claimDue({ limit: 4, ttl: 10_000 });
      expect(first.map((l) => l.id)).toEqual(expected.slice(0, 4));
      for (const lease of first) expect(lease.expiresAt).toBe(h.clock.now() + 10_000);
      const rest = await s.claimDue({ limit: 4, ttl: 10_000 });
      expect(rest.map((l) => l.id)).toEqual(expected.slice(4));
      expect(await s.claimDue({ limit: 4, ttl: 10_000 })).toEqual([]);
      expect(await s.claimDue({ limit: 0, ttl: 10_000 })).toEqual([]);
      expect(sorted(await s.getActiveMessages())).toEqual(sorted(ids));
    },
  },
  {
    name: 'claimDue skips locked, incomplete and not-yet-due messages, and takes expired locks',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      const claimedOnly = await s.claimMessageId();
      const metaOnly = await s.claimMessageId();
      await s.setMessageMeta(metaOnly, {});
      const contentsOnly = await s.claimMessageId();
      await s.setMessageContents(contentsOnly, 'x');
      const [due, future, locked, expiring] = await s.storeMessages([
        { meta: {}, contents: 'due' },
        { meta: {}, contents: 'future', retryAt: now + 1000 },
        { meta: {}, contents: 'locked' },
        { meta: {}, contents: 'expiring' },
      ]);
      expect(await s.lockMessage(locked!, 5000)).toBe(true);
      expect(await s.lockMessage(expiring!, 500)).toBe(true);
      expect((await s.claimDue({ limit: 100, ttl: 1000 })).map((l) => l.id)).toEqual([due]);
      h.clock.advance(500);
      expect((await s.claimDue({ limit: 100, ttl: 1000 })).map((l) => l.id)).toEqual([expiring]);
      h.clock.advance(500);
      // `due` was claimed at t0 with ttl 1000: expired now, and due again (a crashed relayer's mail is not orphaned).
      expect(sorted((await s.claimDue({ limit: 100, ttl: 1000 })).map((l) => l.id))).toEqual(
        sorted([due!, future!]),
      );
      expect(await s.claimDue({ limit: 100, ttl: 1000 })).toEqual([]);
      expect(await s.getActiveMessages()).toContain(locked);
      void claimedOnly;
    },
  },
  {
    name: 'claimDue judges "due" at the given now',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      const id = await s.storeMessage({ meta: {}, contents: 'x', retryAt: now + 1000 });
      expect(await s.claimDue({ limit: 5, ttl: 100, now: now + 999 })).toEqual([]);
      const [lease] = await s.claimDue({ limit: 5, ttl: 100, now: now + 1000 });
      expect(lease).toEqual({ id, token: lease!.token, expiresAt: now + 1100 });
    },
  },
  {
    name: 'claimDue leases are fenced like any lease',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      const [lease] = await a.claimDue({ limit: 1, ttl: 1000 });
      h.clock.advance(1000);
      const [taken] = await b.claimDue({ limit: 1, ttl: 1000 });
      expect(taken?.id).toBe(id);
      expect(taken!.token).toBeGreaterThan(lease!.token);
      await expectCode(a.deleteMessage(id, { lease: lease! }), 'STALE_LEASE');
      await expectCode(a.setMessageRetry(id, 0, { lease: lease! }), 'STALE_LEASE');
      await b.deleteMessage(id, { lease: taken! });
      expect(await a.getAllMessages()).toEqual([]);
    },
  },
  {
    name: 'deleteMessages deletes those with a current lease and leaves the stale ones untouched',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const ids = await a.storeMessages(
        Array.from({ length: 5 }, (_, n) => ({ meta: sampleMeta(n), contents: `m${n}` })),
      );
      const leases = await a.claimDue({ limit: 5, ttl: 1000 });
      expect(leases).toHaveLength(5);
      h.clock.advance(1000);
      // ids[1] is taken over, ids[3] released, ids[4] deleted by an admin.
      const taken = (await b.acquireLease(ids[1]!, 60_000))!;
      await a.releaseLease(leases.find((l) => l.id === ids[3])!);
      await b.deleteMessage(ids[4]!);
      const before = await snapshot(b);
      const result = await a.deleteMessages(leases);
      expect(sorted(result.deleted)).toEqual(sorted([ids[0]!, ids[2]!]));
      expect(sorted(result.stale)).toEqual(sorted([ids[1]!, ids[3]!, ids[4]!]));
      expect(sorted(await b.getAllMessages())).toEqual(sorted([ids[1]!, ids[3]!]));
      const after = await snapshot(b);
      expect(after.messages[ids[1]!]).toEqual(before.messages[ids[1]!]);
      expect(after.messages[ids[3]!]).toEqual(before.messages[ids[3]!]);
      expect(after.active).toEqual([ids[1]]);
      expect(await a.deleteMessages([])).toEqual({ deleted: [], stale: [] });
      await b.releaseLease(taken);
    },
  },
  {
    name: 'stats counts total, active, deferred and due without touching contents',
    async run(h) {
      const s = await h.session();
      const now = h.clock.now();
      await s.claimMessageId(); // incomplete: total only
      const [, , lockedId] = await s.storeMessages([
        { meta: {}, contents: 'due' },
        { meta: {}, contents: 'waiting', retryAt: now + 10 },
        { meta: {}, contents: 'locked' },
        { meta: {}, contents: 'past', retryAt: now - 10 },
      ]);
      await s.lockMessage(lockedId!, 100);
      expect(await s.stats()).toEqual({ total: 5, active: 1, deferred: 1, due: 2 });
      h.clock.advance(10);
      expect(await s.stats()).toEqual({ total: 5, active: 1, deferred: 0, due: 3 });
      h.clock.advance(90);
      expect(await s.stats()).toEqual({ total: 5, active: 0, deferred: 0, due: 4 });
    },
  },
];
