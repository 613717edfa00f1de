/** Cases for races between sessions: one winner per lock, no message claimed twice. */
import type { Lease } from '@mailspool/core';
import { expect } from 'vitest';
import type { ConformanceCase, Harness } from '../harness.js';

async function openSessions(h: Harness, count: number) {
  return Promise.all(Array.from({ length: count }, () => h.session()));
}

export const concurrencyCases: ConformanceCase[] = [
  {
    name: 'race: many sessions call lockMessage on one id at once and exactly one wins',
    async run(h) {
      const sessions = await openSessions(h, h.options.raceSessions ?? 12);
      const id = await sessions[0]!.storeMessage({ meta: {}, contents: 'x' });
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(sessions.map((s) => s.lockMessage(id, 1000)));
        const winners = results.flatMap((won, session) => (won ? [`session ${session}`] : []));
        expect(winners, `sessions that locked ${id} in round ${round}`).toHaveLength(1);
        h.clock.advance(1000);
      }
    },
  },
  {
    name: 'race: many sessions call acquireLease on one id at once; one lease, and only it is current',
    async run(h) {
      const sessions = await openSessions(h, h.options.raceSessions ?? 12);
      const id = await sessions[0]!.storeMessage({ meta: { attempts: 0 }, contents: 'x' });
      let lastToken = 0;
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(
          sessions.map((s, n) =>
            n % 2 === 0
              ? s.acquireLease(id, 1000)
              : s.lockMessage(id, 1000).then((ok) => (ok ? 'lock' : null)),
          ),
        );
        const winners = results.filter((r) => r !== null);
        const who = results.flatMap((r, session) => (r !== null ? [`session ${session}`] : []));
        expect(who, `sessions holding ${id} in round ${round}`).toHaveLength(1);
        const winner = winners[0];
        if (winner !== 'lock' && winner !== undefined) {
          expect(winner.token).toBeGreaterThan(lastToken);
          lastToken = winner.token;
          await sessions[0]!.setMessageMetaKey(id, 'attempts', round, { lease: winner });
        }
        h.clock.advance(1000);
      }
    },
  },
  {
    name: 'race: concurrent claimDue calls on separate sessions never return the same message',
    async run(h) {
      const sessions = await openSessions(h, Math.min(h.options.raceSessions ?? 12, 8));
      const ids = await sessions[0]!.storeMessages(
        Array.from({ length: 60 }, (_, n) => ({ meta: { n }, contents: `m${n}` })),
      );
      // Who holds what: a message claimed twice is named with both holders.
      const holders = new Map<string, string>();
      const twice: string[] = [];
      let rounds = 0;
      while (holders.size < ids.length && rounds++ < 20) {
        const batches = await Promise.all(
          sessions.map((s) => s.claimDue({ limit: 3, ttl: 60_000 })),
        );
        batches.forEach((leases, session) => {
          for (const lease of leases) {
            const holder = `session ${session} (round ${rounds}, token ${lease.token})`;
            const earlier = holders.get(lease.id);
            if (earlier !== undefined) twice.push(`${lease.id} held by ${earlier} and ${holder}`);
            else holders.set(lease.id, holder);
          }
        });
      }
      expect(twice, 'messages claimed twice').toEqual([]);
      expect([...holders.keys()].sort()).toEqual([...ids].sort());
    },
  },
  {
    name: 'race: concurrent claimDue calls never come back short while enough mail is due',
    async run(h) {
      // Each message stored on its own, so an engine that spreads messages (over shards, say)
      // puts them in different places: a claim that loses its first pick to a rival must still
      // find the other message.
      for (const count of [2, 4]) {
        const sessions = await openSessions(h, count);
        for (let round = 0; round < 5; round++) {
          const ids: string[] = [];
          for (let n = 0; n < count; n++) {
            ids.push(await sessions[0]!.storeMessage({ meta: { round, n }, contents: `m${n}` }));
          }
          const claims = await Promise.all(
            sessions.map((s) => s.claimDue({ limit: 1, ttl: 60_000 })),
          );
          const sizes = claims.map((leases) => leases.length);
          expect(sizes, `${count} claims of limit 1 with ${count} messages due`).toEqual(
            sessions.map(() => 1),
          );
          const holders = new Map<string, number>();
          claims.forEach((leases, holder) => {
            const id = leases[0]!.id;
            expect(
              holders.has(id),
              `${id} claimed by sessions ${holders.get(id)} and ${holder}`,
            ).toBe(false);
            holders.set(id, holder);
          });
          expect([...holders.keys()].sort()).toEqual([...ids].sort());
          await sessions[0]!.deleteMessages(claims.flat());
        }
      }
    },
  },
  {
    name: 'race: concurrent completions of one message by two lease holders delete it once and report the loser stale',
    async run(h) {
      const [a, b] = await openSessions(h, 2);
      const id = await a!.storeMessage({ meta: {}, contents: 'x' });
      const old = (await a!.acquireLease(id, 100))!;
      h.clock.advance(100);
      const current = (await b!.acquireLease(id, 60_000))!;
      const [first, second] = await Promise.all([
        a!.deleteMessages([old]),
        b!.deleteMessages([current as Lease]),
      ]);
      expect(first).toEqual({ deleted: [], stale: [id] });
      expect(second).toEqual({ deleted: [id], stale: [] });
      expect(await a!.getAllMessages()).toEqual([]);
    },
  },
];
