/**
 * A small reference model of the contract, written independently of `@mailspool/core`'s rules,
 * and the random operations the model-based case runs against an engine and the model side by
 * side. Fencing tokens are modelled as lock generations: the model checks *which* lease is
 * current; the real tokens are checked to strictly increase.
 */
import fc from 'fast-check';

export interface ModelMessage {
  createdAt: number;
  /** 0 high, 1 normal, 2 bulk. */
  rank: number;
  meta: Record<string, number> | null;
  contents: number | null;
  retryAt: number | null;
  lockedUntil: number | null;
  generation: number;
}

/** An operation; indices pick among known ids (oldest first) / leases (newest first) modulo their count. */
export type Op =
  | {
      kind: 'store';
      session: number;
      retry: number | null;
      priority: 'high' | 'normal' | 'bulk' | null;
    }
  | { kind: 'storeBatch'; session: number; count: number }
  | { kind: 'claimId'; session: number }
  | { kind: 'setMeta'; session: number; target: number }
  | { kind: 'setContents'; session: number; target: number }
  | { kind: 'metaKey'; session: number; target: number; lease: number | null }
  | { kind: 'lock'; session: number; target: number; ttl: number }
  | { kind: 'acquire'; session: number; target: number; ttl: number }
  | { kind: 'renew'; session: number; lease: number; ttl: number }
  | { kind: 'release'; session: number; lease: number }
  | { kind: 'unlock'; session: number; target: number }
  | { kind: 'retry'; session: number; target: number; offset: number; lease: number | null }
  | { kind: 'delete'; session: number; target: number; lease: number | null }
  | { kind: 'deleteMany'; session: number; leases: number[] }
  | {
      kind: 'commit';
      session: number;
      lease: number;
      mode: 'delete' | 'retry' | 'keep';
      offset: number;
      store: boolean;
    }
  | { kind: 'claimDue'; session: number; limit: number; ttl: number; withMessages: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'read'; session: number; target: number }
  | { kind: 'check'; session: number; dueBy: number | null };

/** Arbitrary operations over `sessions` sessions. */
export function opArbitrary(sessions: number): fc.Arbitrary<Op> {
  const session = fc.nat({ max: sessions - 1 });
  // Small indices dominate so that operations pile up on a few messages and their newest leases,
  // where the interesting interleavings (relock, stale lease, expiry) happen.
  const target = fc.oneof(
    { weight: 3, arbitrary: fc.nat({ max: 2 }) },
    { weight: 1, arbitrary: fc.nat({ max: 1000 }) },
  );
  const leaseIndex = fc.oneof(
    { weight: 3, arbitrary: fc.nat({ max: 1 }) },
    { weight: 1, arbitrary: fc.nat({ max: 1000 }) },
  );
  const ttl = fc.constantFrom(1, 50, 100, 250);
  const maybeLease = fc.option(leaseIndex, { nil: null, freq: 2 });
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('store' as const),
        session,
        retry: fc.option(fc.integer({ min: -100, max: 300 }), { nil: null }),
        priority: fc.option(fc.constantFrom('high' as const, 'normal' as const, 'bulk' as const), {
          nil: null,
        }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('storeBatch' as const),
        session,
        count: fc.integer({ min: 1, max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('claimId' as const), session }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('setMeta' as const), session, target }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('setContents' as const), session, target }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('metaKey' as const),
        session,
        target,
        lease: maybeLease,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('lock' as const), session, target, ttl }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('acquire' as const), session, target, ttl }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('renew' as const),
        session,
        lease: leaseIndex,
        ttl,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('release' as const), session, lease: leaseIndex }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('unlock' as const), session, target }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('retry' as const),
        session,
        target,
        offset: fc.integer({ min: -50, max: 300 }),
        lease: maybeLease,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('delete' as const),
        session,
        target,
        lease: maybeLease,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('deleteMany' as const),
        session,
        leases: fc.uniqueArray(leaseIndex, { maxLength: 4 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('commit' as const),
        session,
        lease: leaseIndex,
        mode: fc.constantFrom('delete' as const, 'retry' as const, 'keep' as const),
        offset: fc.integer({ min: -50, max: 300 }),
        store: fc.boolean(),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('claimDue' as const),
        session,
        limit: fc.integer({ min: 0, max: 4 }),
        ttl,
        withMessages: fc.boolean(),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.constantFrom(1, 49, 50, 100, 250),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), session, target }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('check' as const),
        session,
        dueBy: fc.option(fc.integer({ min: -100, max: 300 }), { nil: null }),
      }),
    },
  );
}

/** The reference model: plain data and the contract's rules, as simply as they can be written. */
export class QueueModel {
  readonly messages = new Map<string, ModelMessage>();

  active(m: ModelMessage, now: number): boolean {
    return m.lockedUntil !== null && now < m.lockedUntil;
  }

  due(m: ModelMessage, now: number): boolean {
    return (
      m.meta !== null &&
      m.contents !== null &&
      !this.active(m, now) &&
      (m.retryAt ?? m.createdAt) <= now
    );
  }

  current(id: string, generation: number): boolean {
    const m = this.messages.get(id);
    return m !== undefined && m.generation === generation && m.lockedUntil !== null;
  }

  /** Locks when free; returns the new generation, or null. */
  lock(id: string, ttl: number, now: number): number | null {
    const m = this.messages.get(id)!;
    if (this.active(m, now)) return null;
    m.generation++;
    m.lockedUntil = now + ttl;
    return m.generation;
  }

  /** Ids claimDue takes: highest priority first, then oldest due, ties by id. */
  dueOrder(now: number, limit: number): string[] {
    return [...this.messages.entries()]
      .filter(([, m]) => this.due(m, now))
      .sort(
        ([a, x], [b, y]) =>
          x.rank - y.rank ||
          (x.retryAt ?? x.createdAt) - (y.retryAt ?? y.createdAt) ||
          (a < b ? -1 : a > b ? 1 : 0),
      )
      .slice(0, limit)
      .map(([id]) => id);
  }

  /** The contract's state of a stored message. */
  state(m: ModelMessage, now: number): 'claimed' | 'due' | 'deferred' | 'active' {
    if (this.active(m, now)) return 'active';
    if (m.meta === null || m.contents === null) return 'claimed';
    return (m.retryAt ?? m.createdAt) <= now ? 'due' : 'deferred';
  }

  /** When anything can next be claimed: a complete message's due time, or its lock's end if later. */
  nextDueAt(now: number): number | null {
    let earliest: number | null = null;
    for (const m of this.messages.values()) {
      if (m.meta === null || m.contents === null) continue;
      const due = m.retryAt ?? m.createdAt;
      const at = this.active(m, now) ? Math.max(due, m.lockedUntil!) : due;
      if (earliest === null || at < earliest) earliest = at;
    }
    return earliest;
  }

  lists(now: number, dueBy: number | null) {
    const all: string[] = [];
    const active: string[] = [];
    const deferred: string[] = [];
    let waiting = 0;
    let due = 0;
    for (const [id, m] of this.messages) {
      all.push(id);
      const isActive = this.active(m, now);
      if (isActive) active.push(id);
      if (m.retryAt !== null && !isActive && (dueBy === null || m.retryAt <= dueBy))
        deferred.push(id);
      if (m.retryAt !== null && m.retryAt > now && !isActive) waiting++;
      if (this.due(m, now)) due++;
    }
    return {
      all: all.sort(),
      active: active.sort(),
      deferred: deferred.sort(),
      stats: { total: all.length, active: active.length, deferred: waiting, due },
    };
  }
}
