/**
 * Bugs below `BaseSession`: each engine here is the guide's example engine (a `BaseSession`
 * subclass) with one primitive rewritten the way a new engine author might get it wrong. The
 * named cases must catch each one, and the same cases must pass on the unchanged engine.
 */
import type { Lease, MessageId, MetaValue, StorageSession } from '@mailspool/core';
import {
  compareDue,
  isDue,
  lockRecord,
  type PreparedMessage,
  type SessionConfig,
  writableRecord,
} from '@mailspool/core/engine';
import { describe, expect, it } from 'vitest';
import { MapEngine, MapSession, MapStore } from '../examples/map-engine.js';
import { type ConformanceOptions, conformanceCaseNames, runConformanceCase } from '../src/index.js';

type SessionClass = new (store: MapStore, config: SessionConfig) => StorageSession;

function withSession(Session: SessionClass): ConformanceOptions<MapEngine> {
  class Engine extends MapEngine {
    protected override createSession(config: SessionConfig): StorageSession {
      return new Session(this.store, config);
    }
  }
  const stores = new Map<string, MapStore>();
  return {
    name: 'below BaseSession',
    modelSeed: 20261201,
    createEngine: ({ clock, store }) => {
      const shared = stores.get(store) ?? new MapStore();
      stores.set(store, shared);
      return new Engine({ clock, store: shared });
    },
    injectFault: (engine, write) => engine.store.failAtWrite(write),
    footprint: (engine) => engine.store.footprint(),
  };
}

/** Stores each message in its own transaction: a fault after the first leaves part of a batch. */
class OneTransactionPerMessage extends MapSession {
  protected override async _storeMessages(messages: readonly PreparedMessage[], now: number) {
    for (const message of messages) await super._storeMessages([message], now);
  }
}

/** Reads the meta in one transaction and writes it in the next: no compare-and-swap. */
class MetaKeyWithoutCas extends MapSession {
  protected override async _setMessageMetaKey(
    id: MessageId,
    key: string,
    value: MetaValue | undefined,
    lease: Lease | undefined,
  ) {
    const meta = { ...(await this._getMessageMeta(id)) };
    if (value === undefined) delete meta[key];
    else meta[key] = value;
    await this.store.transaction((tx) => {
      tx.putRecord({ ...writableRecord(tx.getRecord(id), id, lease), meta });
    });
  }
}

/** Deletes the record of a message and forgets its contents. */
class DeleteLeavesContents extends MapSession {
  protected override async _deleteMessage(id: MessageId, lease: Lease | undefined) {
    return this.store.transaction((tx) => {
      const record = tx.getRecord(id);
      if (lease !== undefined && record?.token !== lease.token) throw new Error('stale');
      if (!record) return false;
      tx.deleteRecord(id);
      return true;
    });
  }
}

/** Claims oldest due first, ignoring priorities (the order before priorities existed). */
class ClaimIgnoresPriority extends MapSession {
  protected override async _claimDue(limit: number, ttl: number, now: number) {
    return this.store.transaction((tx) =>
      tx
        .allRecords()
        .filter((record) => isDue(record, now))
        .sort((a, b) => compareDue({ ...a, priority: 1 }, { ...b, priority: 1 }))
        .slice(0, limit)
        .map((record) => {
          const locked = lockRecord(record, ttl, now)!;
          tx.putRecord(locked.record);
          return locked.lease;
        }),
    );
  }
}

const caseNamed = (fragment: string): string => {
  const matches = conformanceCaseNames.filter((name) => name.includes(fragment));
  if (matches.length !== 1) throw new Error(`expected one case matching ${fragment}`);
  return matches[0]!;
};

const MODEL = caseNamed('model: random operation sequences');

const defects = [
  {
    defect: 'storeMessages writing one message per transaction (not atomic)',
    Session: OneTransactionPerMessage,
    caughtBy: ['atomicity: storeMessages'],
  },
  {
    defect: 'setMessageMetaKey as read-modify-write without compare-and-swap',
    Session: MetaKeyWithoutCas,
    caughtBy: ['meta: concurrent setMessageMetaKey', 'meta: setMessageMeta racing'],
  },
  {
    defect: 'a claim that ignores priorities',
    Session: ClaimIgnoresPriority,
    caughtBy: ['priority: claimDue takes due high mail', MODEL],
  },
  {
    defect: 'a delete that leaves the contents behind',
    Session: DeleteLeavesContents,
    caughtBy: ['footprint: the store returns to its baseline'],
  },
];

describe('the suite catches bugs below BaseSession', () => {
  for (const { defect, Session, caughtBy } of defects) {
    for (const fragment of caughtBy) {
      const name = caseNamed(fragment);
      it(`${defect} — caught by "${name}"`, { timeout: 60_000 }, async () => {
        await expect(runConformanceCase(name, withSession(Session))).rejects.toThrow();
      });
    }
  }
});

describe('the same cases pass on the unchanged example engine', () => {
  for (const fragment of new Set(defects.flatMap((d) => d.caughtBy))) {
    const name = caseNamed(fragment);
    it(name, { timeout: 60_000 }, async () => {
      await runConformanceCase(name, withSession(MapSession));
    });
  }
});
