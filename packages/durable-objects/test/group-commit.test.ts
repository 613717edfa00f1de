/**
 * Group commit: writes that reach a shard while a commit is in flight, from any number of sessions
 * and callers, run together and share the next commit; each keeps its own transaction and answer.
 */

import { env } from 'cloudflare:workers';
import { ErrorCode, isMailspoolError, ManualClock } from '@mailspool/core';
import { describe, expect, it, vi } from 'vitest';
import { DurableObjectEngine } from '../src/index.js';
import type { Env } from './worker.js';

const { HOOKED } = env as unknown as Env;

describe('group commit', () => {
  it('concurrent writes of 40 separate callers share commits; a failing write rejects only its caller', async () => {
    const name = `group-${crypto.randomUUID()}`;
    const clock = new ManualClock(Date.now());
    // A separate engine per caller: separate stubs, separate RPCs, as separate requests would be.
    const callers = await Promise.all(
      Array.from({ length: 40 }, () =>
        new DurableObjectEngine({ namespace: HOOKED, shards: 1, name, clock }).connect(),
      ),
    );
    const stub = HOOKED.get(HOOKED.idFromName(`${name}:0`));
    // The first write's commit is held open: everything that arrives meanwhile must wait for it.
    await stub.testHoldCommits();
    const first = await callers[0]!.storeMessage({ meta: { n: -1 }, contents: 'first' });
    const before = await stub.testCommitStats();

    const settled = Promise.allSettled(
      callers.map((s, n) =>
        n % 4 === 3
          ? // A write the shard refuses (no such message): its own error, nobody else's.
            s.setMessageMetaKey(`s0.missing-${n}`, 'k', 1)
          : s.storeMessage({ meta: { n }, contents: `m${n}` }),
      ),
    );
    await vi.waitFor(async () => expect((await stub.testCommitStats()).waiting).toBe(40), {
      timeout: 10_000,
      interval: 10,
    });
    await stub.testReleaseCommits();
    const results = await settled;
    const after = await stub.testCommitStats();

    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(10);
    for (const r of refused) {
      expect(isMailspoolError((r as PromiseRejectedResult).reason, ErrorCode.NOT_FOUND)).toBe(true);
    }
    const stored = results
      .filter((r): r is PromiseFulfilledResult<string> => r.status === 'fulfilled')
      .map((r) => r.value);
    expect(stored).toHaveLength(30);
    expect((await callers[0]!.getAllMessages()).sort()).toEqual([first, ...stored].sort());
    // Each stored message holds its own caller's meta.
    const metas = await Promise.all(stored.map((id) => callers[0]!.getMessageMeta(id)));
    expect(metas.map((m) => m.n).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 40 }, (_, n) => n).filter((n) => n % 4 !== 3),
    );
    // The 40 writes that arrived during the held commit waited for it and went as one group.
    expect(after.calls - before.calls).toBe(40);
    expect(after.groups - before.groups).toBe(1);
  });
});
