/** Cases that depend on the capability manifest: change events and persistence. */
import type { ChangeEvent } from '@mailspool/core';
import { expect, vi } from 'vitest';
import { type ConformanceCase, sampleMeta } from '../harness.js';

export const capabilityCases: ConformanceCase[] = [
  {
    name: 'change events: subscribers hear stored, updated and deleted ids; unsubscribe stops them',
    skipUnless: (supports) =>
      supports.changeEvents ? undefined : 'the engine declares no change events',
    async run(h) {
      const engine = await h.engine();
      expect(typeof engine.subscribe).toBe('function');
      const events: ChangeEvent[] = [];
      const unsubscribe = engine.subscribe!((event) => events.push(event));
      const s = await h.session();
      const id = await s.storeMessage({ meta: {}, contents: 'x' });
      const heard = (type: ChangeEvent['type']) =>
        events.some((e) => e.type === type && e.ids.includes(id));
      await vi.waitFor(() => expect(heard('stored')).toBe(true), { timeout: 5000, interval: 10 });
      await s.setMessageMetaKey(id, 'k', 1);
      await vi.waitFor(() => expect(heard('updated')).toBe(true), { timeout: 5000, interval: 10 });
      await s.deleteMessage(id);
      await vi.waitFor(() => expect(heard('deleted')).toBe(true), { timeout: 5000, interval: 10 });
      unsubscribe();
      unsubscribe();
      const count = events.length;
      // A second listener that stays subscribed tells when the later events were delivered, so the
      // check that the first heard nothing more needs no sleep.
      const witness: ChangeEvent[] = [];
      const stopWitness = engine.subscribe!((event) => witness.push(event));
      const other = await s.storeMessage({ meta: {}, contents: 'y' });
      await s.deleteMessage(other);
      await vi.waitFor(
        () => expect(witness.some((e) => e.type === 'deleted' && e.ids.includes(other))).toBe(true),
        { timeout: 5000, interval: 10 },
      );
      stopWitness();
      expect(events.length).toBe(count);
    },
  },
  {
    name: 'persistence: a new engine on the same store sees every message, its meta, contents and state',
    skipUnless: (supports) => (supports.persistent ? undefined : 'the engine is not persistent'),
    async run(h) {
      const first = await h.engine();
      const s1 = await h.session(first);
      const now = h.clock.now();
      const [due, deferred, leased] = await s1.storeMessages([
        { meta: sampleMeta(1), contents: 'one' },
        { meta: sampleMeta(2), contents: 'two', retryAt: now + 60_000 },
        { meta: sampleMeta(3), contents: 'three' },
      ]);
      const claimed = await s1.claimMessageId();
      const lease = (await s1.acquireLease(leased!, 30_000))!;
      await s1.close();

      const second = await h.createEngine();
      const s2 = await h.session(second);
      expect((await s2.getAllMessages()).sort()).toEqual(
        [due!, deferred!, leased!, claimed].sort(),
      );
      expect(await s2.getMessageMeta(deferred!)).toEqual(sampleMeta(2));
      expect(new TextDecoder().decode(await s2.getMessageContents(leased!))).toBe('three');
      expect(await s2.getActiveMessages()).toEqual([leased]);
      expect(await s2.getDeferredMessages()).toEqual([deferred]);
      expect(await s2.stats()).toEqual({ total: 4, active: 1, deferred: 1, due: 1 });
      // The lease survived too: it is still current for fenced writes.
      await s2.setMessageMetaKey(leased!, 'attempts', 1, { lease });
      expect(await s2.getMessageMetaKey(leased!, 'attempts')).toBe(1);
    },
  },
  {
    name: 'persistence: fencing tokens keep increasing on a new engine over the same store',
    skipUnless: (supports) => (supports.persistent ? undefined : 'the engine is not persistent'),
    async run(h) {
      const s1 = await h.session(await h.engine());
      const id = await s1.storeMessage({ meta: {}, contents: 'x' });
      let last = 0;
      for (let i = 0; i < 3; i++) {
        const lease = (await s1.acquireLease(id, 10))!;
        last = lease.token;
        await s1.releaseLease(lease);
      }
      await s1.close();
      const s2 = await h.session(await h.createEngine());
      const next = (await s2.acquireLease(id, 10))!;
      expect(next.token).toBeGreaterThan(last);
    },
  },
];
