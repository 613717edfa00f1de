/** Cases for commitAttempt: an attempt's outcome (delete or update, plus new messages) in one atomic, fenced step. */
import { expect } from 'vitest';
import {
  type ConformanceCase,
  expectCode,
  expectTypeError,
  sampleMeta,
  snapshot,
} from '../harness.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

export const attemptCases: ConformanceCase[] = [
  {
    name: 'commitAttempt deletes the leased message and stores new ones in one step',
    async run(h) {
      const s = await h.session();
      const id = await s.storeMessage({ meta: sampleMeta(1), contents: 'original' });
      const [lease] = await s.claimDue({ limit: 1, ttl: 60_000 });
      const ids = await s.commitAttempt(lease!, {
        delete: true,
        store: [{ meta: { bounce: true }, contents: 'a bounce' }],
      });
      expect(ids).toHaveLength(1);
      const [bounce] = ids;
      expect(await s.getAllMessages()).toEqual([bounce]);
      expect(await s.getMessageMeta(bounce!)).toEqual({ bounce: true });
      expect(text(await s.getMessageContents(bounce!))).toBe('a bounce');
      expect(await s.stats()).toEqual({ total: 1, active: 0, deferred: 0, due: 1 });
      await expectCode(s.getMessageMeta(id), 'NOT_FOUND');
    },
  },
  {
    name: 'commitAttempt updates meta and retry time and drops the lock; the lease is then stale',
    async run(h) {
      const s = await h.session();
      const id = await s.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      const lease = (await s.acquireLease(id, 60_000))!;
      const at = h.clock.now() + 300_000;
      expect(
        await s.commitAttempt(lease, { meta: { attempts: 1, last_error: '451' }, retryAt: at }),
      ).toEqual([]);
      expect(await s.getMessageMeta(id)).toEqual({ attempts: 1, last_error: '451' });
      expect(await s.getActiveMessages()).toEqual([]);
      expect(await s.getDeferredMessages()).toEqual([id]);
      expect(await s.getDeferredMessages(at - 1)).toEqual([]);
      expect(await s.stats()).toEqual({ total: 1, active: 0, deferred: 1, due: 0 });
      await expectCode(s.releaseLease(lease), 'STALE_LEASE');
      h.clock.advance(300_000);
      expect((await s.claimDue({ limit: 1, ttl: 1000 })).map((l) => l.id)).toEqual([id]);
    },
  },
  {
    name: 'commitAttempt with keepLease keeps the lock and the lease current; without changes it only releases',
    async run(h) {
      const s = await h.session();
      const id = await s.storeMessage({ meta: { a: 1 }, contents: 'x' });
      const lease = (await s.acquireLease(id, 60_000))!;
      const [stored] = await s.commitAttempt(lease, {
        keepLease: true,
        meta: { a: 2 },
        store: [{ meta: {}, contents: 'y', retryAt: h.clock.now() + 5 }],
      });
      expect(await s.getActiveMessages()).toEqual([id]);
      expect(await s.getMessageMeta(id)).toEqual({ a: 2 });
      expect(await s.getDeferredMessages()).toEqual([stored]);
      await s.commitAttempt(lease, {});
      expect(await s.getActiveMessages()).toEqual([]);
      expect(await s.getMessageMeta(id)).toEqual({ a: 2 });
    },
  },
  {
    name: 'commitAttempt with a stale lease rejects STALE_LEASE and stores, deletes and changes nothing',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      const old = (await a.acquireLease(id, 1000))!;
      h.clock.advance(1000);
      const current = (await b.acquireLease(id, 60_000))!;
      const before = await snapshot(a);
      const bounce = { meta: { bounce: true }, contents: 'dsn' };
      await expectCode(
        a.commitAttempt(old, { delete: true, store: [bounce] }),
        'STALE_LEASE',
        'delete',
      );
      await expectCode(
        a.commitAttempt(old, { meta: { attempts: 9 }, retryAt: 0, store: [bounce] }),
        'STALE_LEASE',
        'update',
      );
      await b.releaseLease(current);
      await expectCode(b.commitAttempt(current, {}), 'STALE_LEASE', 'released');
      const after = await snapshot(a);
      expect(after.messages).toEqual(before.messages);
      await a.deleteMessage(id);
      await expectCode(
        a.commitAttempt(current, { delete: true, store: [bounce] }),
        'STALE_LEASE',
        'gone',
      );
      expect(await a.getAllMessages()).toEqual([]);
    },
  },
  {
    name: 'commitAttempt with a bad outcome rejects (TypeError or TOO_LARGE) and changes nothing',
    async run(h) {
      const engine = await h.createEngine({ maxMessageBytes: 1024 });
      const s = await h.session(engine);
      const id = await s.storeMessage({ meta: { keep: 1 }, contents: 'x' });
      const lease = (await s.acquireLease(id, 60_000))!;
      const before = await snapshot(s);
      await expectTypeError(s.commitAttempt(lease, { delete: true, meta: {} }), 'delete + meta');
      await expectTypeError(
        s.commitAttempt(lease, { delete: true, retryAt: 5 }),
        'delete + retryAt',
      );
      await expectTypeError(
        s.commitAttempt(lease, { delete: true, keepLease: true }),
        'delete + keepLease',
      );
      await expectTypeError(s.commitAttempt(lease, { meta: { n: Number.NaN } }), 'bad meta');
      await expectTypeError(s.commitAttempt(lease, { retryAt: Number.NaN }), 'bad retryAt');
      await expectTypeError(
        s.commitAttempt(lease, { delete: 'yes' as never }),
        'delete not boolean',
      );
      await expectTypeError(s.commitAttempt(lease, { store: 'x' as never }), 'store not an array');
      await expectTypeError(
        s.commitAttempt(lease, {
          delete: true,
          store: [{ meta: { n: Number.NaN }, contents: 'x' }],
        }),
        'bad stored meta',
      );
      await expectCode(
        s.commitAttempt(lease, {
          delete: true,
          store: [{ meta: {}, contents: new Uint8Array(2000) }],
        }),
        'TOO_LARGE',
      );
      await expectTypeError(s.commitAttempt(null as never, { delete: true }), 'no lease');
      await expectTypeError(s.commitAttempt(lease, null as never), 'no outcome');
      expect(await snapshot(s)).toEqual(before);
      // The lease is untouched and still current.
      await s.commitAttempt(lease, { delete: true });
      expect(await s.getAllMessages()).toEqual([]);
    },
  },
];
