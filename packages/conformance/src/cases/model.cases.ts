/** The model-based case: random operation sequences over several sessions, checked step by step against the reference model. */
import {
  type AttemptOutcome,
  type ClaimedMessage,
  isMailspoolError,
  type Lease,
  type MessageInfo,
  type StorageSession,
} from '@mailspool/core';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { ConformanceCase, Harness } from '../harness.js';
import { type Op, opArbitrary, QueueModel } from '../model.js';

const SESSIONS = 3;

type Outcome = { ok: unknown } | { error: string };

async function outcome(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await call() };
  } catch (error) {
    if (isMailspoolError(error)) return { error: error.code };
    if ((error as { name?: string })?.name === 'TypeError') return { error: 'TypeError' };
    throw error;
  }
}

interface KnownLease {
  readonly real: Lease;
  readonly generation: number;
}

/** Runs one sequence of operations on a fresh store and fails at the first divergence. */
async function runSequence(h: Harness, ops: readonly Op[], store: string): Promise<void> {
  const engine = await h.createEngine({ store });
  const sessions: StorageSession[] = [];
  for (let i = 0; i < SESSIONS; i++) sessions.push(await h.session(engine));
  const model = new QueueModel();
  const ids: string[] = [];
  const leases: KnownLease[] = [];
  const lastToken = new Map<string, number>();
  let counter = 0;

  const pickId = (index: number) => (ids.length === 0 ? undefined : ids[index % ids.length]);
  const pickLease = (index: number | null) =>
    index === null || leases.length === 0
      ? undefined
      : leases[leases.length - 1 - (index % leases.length)];
  const noteLease = (real: Lease, generation: number, step: string) => {
    const previous = lastToken.get(real.id) ?? 0;
    if (!(real.token > previous))
      throw new Error(
        `${step}: token ${real.token} of ${real.id} did not increase past ${previous}`,
      );
    lastToken.set(real.id, real.token);
    leases.push({ real, generation });
  };
  const staleOrMissing = (lease: KnownLease) => !model.current(lease.real.id, lease.generation);

  for (const [index, op] of ops.entries()) {
    const step = `step ${index} ${JSON.stringify(op)}`;
    const now = h.clock.now();
    const s = 'session' in op ? sessions[op.session]! : sessions[0]!;
    const same = (got: Outcome, want: Outcome) => expect(got, step).toEqual(want);

    switch (op.kind) {
      case 'store': {
        const retryAt = op.retry === null ? undefined : now + op.retry;
        const id = await s.storeMessage({
          meta: { v: counter },
          contents: String(counter),
          ...(retryAt === undefined ? {} : { retryAt }),
          ...(op.priority === null ? {} : { priority: op.priority }),
        });
        model.messages.set(id, {
          createdAt: now,
          meta: { v: counter },
          contents: counter,
          retryAt: retryAt ?? null,
          lockedUntil: null,
          generation: 0,
          rank: { high: 0, normal: 1, bulk: 2 }[op.priority ?? 'normal'],
        });
        ids.push(id);
        counter++;
        break;
      }
      case 'storeBatch': {
        const items = Array.from({ length: op.count }, (_, n) => ({
          meta: { v: counter + n },
          contents: String(counter + n),
        }));
        const stored = await s.storeMessages(items);
        expect(stored, step).toHaveLength(op.count);
        for (const [n, id] of stored.entries()) {
          model.messages.set(id, {
            createdAt: now,
            meta: { v: counter + n },
            contents: counter + n,
            retryAt: null,
            lockedUntil: null,
            generation: 0,
            rank: 1,
          });
          ids.push(id);
        }
        counter += op.count;
        break;
      }
      case 'claimId': {
        const id = await s.claimMessageId();
        model.messages.set(id, {
          createdAt: now,
          meta: null,
          contents: null,
          retryAt: null,
          lockedUntil: null,
          generation: 0,
          rank: 1,
        });
        ids.push(id);
        break;
      }
      case 'setMeta': {
        const id = pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        same(
          await outcome(() => s.setMessageMeta(id, { v: counter })),
          m ? { ok: undefined } : { error: 'NOT_FOUND' },
        );
        if (m) m.meta = { v: counter };
        counter++;
        break;
      }
      case 'setContents': {
        const id = pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        same(
          await outcome(() => s.setMessageContents(id, String(counter))),
          m ? { ok: undefined } : { error: 'NOT_FOUND' },
        );
        if (m) m.contents = counter;
        counter++;
        break;
      }
      case 'metaKey': {
        const lease = pickLease(op.lease);
        const id = lease ? lease.real.id : pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        const want: Outcome = lease
          ? staleOrMissing(lease)
            ? { error: 'STALE_LEASE' }
            : { ok: undefined }
          : m
            ? { ok: undefined }
            : { error: 'NOT_FOUND' };
        same(
          await outcome(() =>
            s.setMessageMetaKey(id, 'k', counter, lease ? { lease: lease.real } : undefined),
          ),
          want,
        );
        if ('ok' in want) m!.meta = { ...(m!.meta ?? {}), k: counter };
        counter++;
        break;
      }
      case 'lock': {
        const id = pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        const got = await outcome(() => s.lockMessage(id, op.ttl));
        if (!m) same(got, { error: 'NOT_FOUND' });
        else same(got, { ok: model.lock(id, op.ttl, now) !== null });
        break;
      }
      case 'acquire': {
        const id = pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        const got = await outcome(() => s.acquireLease(id, op.ttl));
        if (!m) {
          same(got, { error: 'NOT_FOUND' });
          break;
        }
        const generation = model.lock(id, op.ttl, now);
        if (generation === null) {
          same(got, { ok: null });
          break;
        }
        const real = (got as { ok: Lease | null }).ok;
        expect(real, step).not.toBeNull();
        expect(real!.expiresAt, step).toBe(now + op.ttl);
        noteLease(real!, generation, step);
        break;
      }
      case 'renew': {
        const lease = pickLease(op.lease);
        if (!lease) break;
        const got = await outcome(() => s.renewLease(lease.real, op.ttl));
        if (staleOrMissing(lease)) same(got, { error: 'STALE_LEASE' });
        else {
          same(got, {
            ok: { id: lease.real.id, token: lease.real.token, expiresAt: now + op.ttl },
          });
          model.messages.get(lease.real.id)!.lockedUntil = now + op.ttl;
        }
        break;
      }
      case 'release': {
        const lease = pickLease(op.lease);
        if (!lease) break;
        const got = await outcome(() => s.releaseLease(lease.real));
        if (staleOrMissing(lease)) same(got, { error: 'STALE_LEASE' });
        else {
          same(got, { ok: undefined });
          model.messages.get(lease.real.id)!.lockedUntil = null;
        }
        break;
      }
      case 'unlock': {
        const id = pickId(op.target);
        if (!id) break;
        same(await outcome(() => s.unlockMessage(id)), { ok: undefined });
        const m = model.messages.get(id);
        if (m) m.lockedUntil = null;
        break;
      }
      case 'retry': {
        const lease = pickLease(op.lease);
        const id = lease ? lease.real.id : pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        const want: Outcome = lease
          ? staleOrMissing(lease)
            ? { error: 'STALE_LEASE' }
            : { ok: undefined }
          : m
            ? { ok: undefined }
            : { error: 'NOT_FOUND' };
        same(
          await outcome(() =>
            s.setMessageRetry(id, now + op.offset, lease ? { lease: lease.real } : undefined),
          ),
          want,
        );
        if ('ok' in want) m!.retryAt = now + op.offset;
        break;
      }
      case 'delete': {
        const lease = pickLease(op.lease);
        const id = lease ? lease.real.id : pickId(op.target);
        if (!id) break;
        const want: Outcome =
          lease && staleOrMissing(lease) ? { error: 'STALE_LEASE' } : { ok: undefined };
        same(
          await outcome(() => s.deleteMessage(id, lease ? { lease: lease.real } : undefined)),
          want,
        );
        if ('ok' in want) model.messages.delete(id);
        break;
      }
      case 'deleteMany': {
        const chosen = [
          ...new Map(
            op.leases
              .map((i) => pickLease(i))
              .filter((l) => l !== undefined)
              .map((l) => [l.real.id, l]),
          ).values(),
        ];
        if (chosen.length === 0) break;
        const got = await s.deleteMessages(chosen.map((l) => l.real));
        const deleted = chosen
          .filter((l) => !staleOrMissing(l))
          .map((l) => l.real.id)
          .sort();
        const stale = chosen
          .filter((l) => staleOrMissing(l))
          .map((l) => l.real.id)
          .sort();
        expect({ deleted: [...got.deleted].sort(), stale: [...got.stale].sort() }, step).toEqual({
          deleted,
          stale,
        });
        for (const id of deleted) model.messages.delete(id);
        break;
      }
      case 'commit': {
        const lease = pickLease(op.lease);
        if (!lease) break;
        const id = lease.real.id;
        const outcomeOf: AttemptOutcome =
          op.mode === 'delete'
            ? { delete: true }
            : op.mode === 'retry'
              ? { meta: { v: counter }, retryAt: now + op.offset }
              : { meta: { v: counter }, keepLease: true };
        const store = op.store ? [{ meta: { v: counter + 1 }, contents: String(counter + 1) }] : [];
        const got = await outcome(() => s.commitAttempt(lease.real, { ...outcomeOf, store }));
        if (staleOrMissing(lease)) {
          same(got, { error: 'STALE_LEASE' });
        } else {
          const storedIds = (got as { ok: string[] }).ok;
          expect(storedIds, step).toHaveLength(store.length);
          if (op.mode === 'delete') model.messages.delete(id);
          else {
            const m = model.messages.get(id)!;
            m.meta = { v: counter };
            if (op.mode === 'retry') {
              m.retryAt = now + op.offset;
              m.lockedUntil = null;
            }
          }
          for (const stored of storedIds) {
            model.messages.set(stored, {
              createdAt: now,
              meta: { v: counter + 1 },
              contents: counter + 1,
              retryAt: null,
              lockedUntil: null,
              generation: 0,
              rank: 1,
            });
            ids.push(stored);
          }
        }
        counter += 2;
        break;
      }
      case 'claimDue': {
        const wanted = model.dueOrder(now, op.limit);
        const got = op.withMessages
          ? await s.claimDueMessages({ limit: op.limit, ttl: op.ttl })
          : await s.claimDue({ limit: op.limit, ttl: op.ttl });
        expect(
          got.map((l) => l.id),
          step,
        ).toEqual(wanted);
        if (op.withMessages) {
          for (const real of got as ClaimedMessage[]) {
            const m = model.messages.get(real.id)!;
            expect(
              { meta: real.meta, contents: new TextDecoder().decode(real.contents) },
              step,
            ).toEqual({ meta: m.meta, contents: String(m.contents) });
          }
        }
        for (const real of got) {
          expect(real.expiresAt, step).toBe(now + op.ttl);
          noteLease(real, model.lock(real.id, op.ttl, now)!, step);
        }
        break;
      }
      case 'advance':
        h.clock.advance(op.ms);
        break;
      case 'read': {
        const id = pickId(op.target);
        if (!id) break;
        const m = model.messages.get(id);
        const meta = await outcome(() => s.getMessageMeta(id));
        const contents = await outcome(async () =>
          new TextDecoder().decode(await s.getMessageContents(id)),
        );
        const info = await outcome(() => s.inspect(id));
        if (!m) {
          same(meta, { error: 'NOT_FOUND' });
          same(contents, { error: 'NOT_FOUND' });
          same(info, { error: 'NOT_FOUND' });
        } else {
          same(meta, { ok: m.meta ?? {} });
          same(contents, m.contents === null ? { error: 'NOT_FOUND' } : { ok: String(m.contents) });
          const got = (info as { ok: MessageInfo }).ok;
          expect(
            {
              state: got?.state,
              retryAt: got?.retryAt,
              lockedUntil: got?.lockedUntil,
              size: got?.size,
              priority: got?.priority,
              meta: got?.meta,
            },
            step,
          ).toEqual({
            state: model.state(m, now),
            retryAt: m.retryAt,
            lockedUntil: model.active(m, now) ? m.lockedUntil : null,
            size: m.contents === null ? null : String(m.contents).length,
            priority: (['high', 'normal', 'bulk'] as const)[m.rank],
            meta: m.meta ?? {},
          });
        }
        break;
      }
      case 'check': {
        const dueBy = op.dueBy === null ? null : now + op.dueBy;
        const want = model.lists(now, dueBy);
        const got = {
          all: (await s.getAllMessages()).sort(),
          active: (await s.getActiveMessages()).sort(),
          deferred: (
            await (dueBy === null ? s.getDeferredMessages() : s.getDeferredMessages(dueBy))
          ).sort(),
          stats: await s.stats(),
          nextDueAt: await s.nextDueAt(),
        };
        expect(got, step).toEqual({ ...want, nextDueAt: model.nextDueAt(now) });
        break;
      }
    }
  }
  // Whatever happened, the engine's final state agrees with the model's.
  const final = model.lists(h.clock.now(), null);
  expect((await sessions[0]!.getAllMessages()).sort(), 'final ids').toEqual(final.all);
  expect(await sessions[0]!.stats(), 'final stats').toEqual(final.stats);
}

let sequence = 0;

export const modelCases: ConformanceCase[] = [
  {
    name: 'model: random operation sequences over several sessions match the reference model',
    async run(h) {
      const runs = h.options.modelRuns ?? 25;
      const steps = h.options.modelSteps ?? 40;
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArbitrary(SESSIONS), { minLength: 1, maxLength: steps, size: 'max' }),
          async (ops) => {
            await runSequence(h, ops, `${h.store}-m${sequence++}`);
          },
        ),
        {
          numRuns: runs,
          endOnFailure: false,
          ...(h.options.modelSeed === undefined ? {} : { seed: h.options.modelSeed }),
        },
      );
    },
  },
];
