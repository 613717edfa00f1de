/**
 * The suite must be able to fail: each engine here breaks one rule of the contract, and the
 * named cases must catch it. Each broken engine wraps a correct MemoryEngine and overrides only
 * the calls it breaks, so a caught failure can only come from that one defect.
 */
import {
  type Capabilities,
  MemoryEngine,
  MemoryStore,
  type StorageEngine,
  type StorageSession,
} from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { type ConformanceOptions, conformanceCaseNames, runConformanceCase } from '../src/index.js';

type Patch = (inner: StorageSession) => Partial<StorageSession>;

/** Conformance options for a MemoryEngine whose sessions have `patch` applied. */
function broken(
  patch: Patch,
  extra: { supports?: Partial<Capabilities>; store?: (name: string) => MemoryStore } = {},
): ConformanceOptions {
  const stores = new Map<string, MemoryStore>();
  return {
    name: 'broken',
    modelRuns: 200,
    // A fixed seed keeps these meta-tests deterministic; the engines' own runs use random seeds.
    modelSeed: 20261129,
    createEngine({ clock, store, maxMessageBytes }) {
      const memoryStore = extra.store?.(store) ?? stores.get(store) ?? new MemoryStore();
      stores.set(store, memoryStore);
      const inner = new MemoryEngine({
        clock,
        store: memoryStore,
        ...(maxMessageBytes ? { maxMessageBytes } : {}),
      });
      const engine: StorageEngine = {
        supports: { ...inner.supports, ...extra.supports },
        subscribe: (listener) => inner.subscribe(listener),
        async connect() {
          const session = await inner.connect();
          const overrides = patch(session);
          return new Proxy(session, {
            get(target, prop, receiver) {
              if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof StorageSession];
              const value = Reflect.get(target, prop, receiver);
              return typeof value === 'function' ? value.bind(target) : value;
            },
          });
        },
      };
      return engine;
    },
  };
}

const caseNamed = (fragment: string): string => {
  const matches = conformanceCaseNames.filter((name) => name.includes(fragment));
  if (matches.length !== 1)
    throw new Error(
      `expected one case matching ${JSON.stringify(fragment)}, found ${matches.length}`,
    );
  return matches[0]!;
};

const MODEL = caseNamed('model: random operation sequences');

interface BrokenEngine {
  readonly defect: string;
  readonly options: ConformanceOptions;
  /** Fragments of the names of cases that must fail. */
  readonly caughtBy: readonly string[];
}

const gone = new Set<string>();

const brokenEngines: BrokenEngine[] = [
  {
    defect: 'a lock that is not exclusive (lockMessage steals any lock)',
    options: broken((s) => ({
      lockMessage: async (id, ttl) => {
        await s.unlockMessage(id);
        return s.lockMessage(id, ttl);
      },
    })),
    caughtBy: ['lockMessage locks exclusively', MODEL],
  },
  {
    defect: 'a lock taken by check-then-act (not atomic under concurrency)',
    options: broken((s) => ({
      lockMessage: async (id, ttl) => {
        if ((await s.getActiveMessages()).includes(id)) return false;
        if (await s.lockMessage(id, ttl)) return true;
        // It was free a moment ago, so "it must be ours": the time-of-check/time-of-use bug.
        await s.unlockMessage(id);
        await s.lockMessage(id, ttl);
        return true;
      },
    })),
    caughtBy: ['race: many sessions call lockMessage'],
  },
  {
    defect: 'a lock that expires one millisecond late',
    options: broken((s) => ({ lockMessage: (id, ttl) => s.lockMessage(id, ttl + 1) })),
    caughtBy: ['lockMessage locks exclusively until exactly now + ttl'],
  },
  {
    defect: 'setMessageRetry without the fence check',
    options: broken((s) => ({ setMessageRetry: (id, at) => s.setMessageRetry(id, at) })),
    caughtBy: [
      'a lease taken over by a later lock is stale',
      "an administrator's unlockMessage makes",
      MODEL,
    ],
  },
  {
    defect: 'deleteMessage without the fence check',
    options: broken((s) => ({ deleteMessage: (id) => s.deleteMessage(id) })),
    caughtBy: ['a lease taken over by a later lock is stale', 'claimDue leases are fenced'],
  },
  {
    defect: 'fencing tokens that do not increase (every lease is token 1)',
    options: broken((s) => ({
      acquireLease: async (id, ttl) => {
        const lease = await s.acquireLease(id, ttl);
        return lease && { ...lease, token: 1 };
      },
    })),
    caughtBy: ['fencing tokens strictly increase', MODEL],
  },
  {
    defect: 'a claimDue that returns locked messages',
    options: broken((s) => ({
      claimDue: async (options) => {
        for (const id of await s.getActiveMessages()) await s.unlockMessage(id);
        return s.claimDue(options);
      },
    })),
    caughtBy: ['claimDue skips locked, incomplete', MODEL],
  },
  {
    defect:
      'a claimDue that picks its messages, then locks them (a rival that won a pick is not replaced)',
    options: broken((s) => ({
      claimDue: async ({ limit, ttl }) => {
        const active = new Set(await s.getActiveMessages());
        const picks = (await s.getAllMessages()).filter((id) => !active.has(id)).slice(0, limit);
        const leases = await Promise.all(picks.map((id) => s.acquireLease(id, ttl)));
        return leases.filter((lease) => lease !== null);
      },
    })),
    caughtBy: ['race: concurrent claimDue calls never come back short'],
  },
  {
    defect: 'a claimDue that takes the newest due first',
    options: broken((s) => ({
      claimDue: async (options) => (await s.claimDue(options)).reverse(),
    })),
    caughtBy: ['claimDue takes the oldest due first'],
  },
  {
    defect: 'a delete that leaves the contents behind',
    options: broken((s) => ({
      deleteMessage: async (id, options) => {
        await s.deleteMessage(id, options);
        gone.add(id);
      },
      getMessageContents: async (id) =>
        gone.has(id) ? new TextEncoder().encode('left behind') : s.getMessageContents(id),
    })),
    caughtBy: ['a deleted id is gone'],
  },
  {
    defect: 'a storeMessages that is not atomic (stores the good ones before the bad one fails)',
    options: broken((s) => ({
      storeMessages: async (items) => {
        const ids: string[] = [];
        for (const item of items) ids.push(await s.storeMessage(item));
        return ids;
      },
    })),
    caughtBy: ['a batch with one bad message stores none'],
  },
  {
    defect: 'a commitAttempt that stores its new messages before checking the lease (not atomic)',
    options: broken((s) => ({
      commitAttempt: async (lease, outcome) => {
        const ids = await s.storeMessages(outcome.store ?? []);
        await s.commitAttempt(lease, { ...outcome, store: [] });
        return ids;
      },
    })),
    caughtBy: ['commitAttempt with a stale lease rejects STALE_LEASE', MODEL],
  },
  {
    defect: 'a commitAttempt that keeps the lock when it should drop it',
    options: broken((s) => ({
      commitAttempt: (lease, outcome) =>
        s.commitAttempt(lease, outcome.delete ? outcome : { ...outcome, keepLease: true }),
    })),
    caughtBy: ['commitAttempt updates meta and retry time and drops the lock', MODEL],
  },
  {
    defect: 'a deleteMessages that deletes stale leases too',
    options: broken((s) => ({
      deleteMessages: async (leases) => {
        for (const lease of leases) await s.deleteMessage(lease.id);
        return { deleted: leases.map((l) => l.id), stale: [] };
      },
    })),
    caughtBy: ['deleteMessages deletes those with a current lease', 'race: concurrent completions'],
  },
  {
    defect: 'stats that count due retries as deferred',
    options: broken((s) => ({
      stats: async () => ({
        ...(await s.stats()),
        deferred: (await s.getDeferredMessages()).length,
      }),
    })),
    caughtBy: ['lifecycle: claimed', MODEL],
  },
  {
    defect: 'getAllMessages that omits claimed ids with nothing written',
    options: broken((s) => ({
      getAllMessages: async () => {
        const ids: string[] = [];
        for (const id of await s.getAllMessages())
          if (Object.keys(await s.getMessageMeta(id)).length > 0) ids.push(id);
        return ids;
      },
    })),
    caughtBy: ['claimMessageId returns a new well-formed id'],
  },
  {
    defect: 'a close that does not close',
    options: broken(() => ({ close: async () => {} })),
    caughtBy: ['after close every call rejects SESSION_CLOSED'],
  },
  {
    defect: 'meta that does not round-trip (numbers come back as strings)',
    options: broken((s) => ({
      getMessageMeta: async (id) =>
        Object.fromEntries(
          Object.entries(await s.getMessageMeta(id)).map(([k, v]) => [
            k,
            typeof v === 'number' ? String(v) : v,
          ]),
        ),
    })),
    caughtBy: ['every value type round-trips exactly'],
  },
  {
    defect: 'persistence that loses fencing tokens (a new engine starts them again at 0)',
    options: (() => {
      const originals = new Map<string, MemoryStore>();
      return broken(() => ({}), {
        supports: { persistent: true },
        store(name) {
          const original = originals.get(name);
          if (!original) {
            const fresh = new MemoryStore();
            originals.set(name, fresh);
            return fresh;
          }
          // "Reopen": copy every message, forgetting the tokens.
          const reopened = new MemoryStore();
          for (const [id, message] of original.messages) {
            reopened.messages.set(id, { ...message, record: { ...message.record, token: 0 } });
          }
          return reopened;
        },
      });
    })(),
    caughtBy: ['fencing tokens keep increasing on a new engine'],
  },
  {
    defect: 'change events that never report deletions',
    options: (() => {
      const options = broken(() => ({}));
      return {
        ...options,
        async createEngine(context) {
          const engine = await options.createEngine(context);
          return {
            ...engine,
            supports: engine.supports,
            connect: () => engine.connect(),
            subscribe: (listener) =>
              engine.subscribe!((event) => event.type !== 'deleted' && listener(event)),
          };
        },
      } satisfies ConformanceOptions;
    })(),
    caughtBy: ['change events: subscribers hear'],
  },
];

describe('the conformance suite catches broken engines', () => {
  for (const { defect, options, caughtBy } of brokenEngines) {
    for (const fragment of caughtBy) {
      const name = caseNamed(fragment);
      it(`${defect} — caught by "${name}"`, { timeout: 60_000 }, async () => {
        await expect(runConformanceCase(name, options)).rejects.toThrow();
      });
    }
  }
});

describe("the same cases pass on the correct engine (so the failures above are the defects' doing)", () => {
  const correct = broken(() => ({}), { supports: { persistent: true } });
  for (const fragment of new Set(brokenEngines.flatMap((b) => b.caughtBy))) {
    const name = caseNamed(fragment);
    it(name, { timeout: 60_000 }, async () => {
      await runConformanceCase(name, correct);
    });
  }
});
