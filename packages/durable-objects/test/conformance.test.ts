import { env } from 'cloudflare:workers';
import { runConformance } from '@mailspool/conformance';
import { DurableObjectEngine } from '../src/index.js';
import { shardName } from '../src/routing.js';
import type { Env } from './worker.js';

const SHARDS = 3;
const probed = (env as unknown as Env).PROBED;
const shardsOf = (store: string) =>
  Array.from({ length: SHARDS }, (_, index) =>
    probed.get(probed.idFromName(shardName(store, index))),
  );

// Three shards, so routing, fan-out and the cross-shard claimDue merge are all under test. The
// suite's `store` names the queue: the same store reaches the same shards (persistence cases).
// The shards are QueueShards with the probes of test/worker.ts's ProbedShard.
runConformance<DurableObjectEngine>({
  name: 'DurableObjectEngine (3 shards, workerd)',
  createEngine: ({ clock, store, maxMessageBytes }) =>
    new DurableObjectEngine({
      namespace: probed,
      shards: SHARDS,
      name: store,
      clock,
      ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
    }),
  injectFault: async (_engine, write, { store }) => {
    await Promise.all(shardsOf(store).map((shard) => shard.testFailAtWrite(write ?? null)));
  },
  footprint: async (_engine, { store }) => {
    const counts = await Promise.all(shardsOf(store).map((shard) => shard.testFootprint()));
    return counts.reduce(
      (sum, { rows, bytes }) => ({ rows: sum.rows + rows, bytes: sum.bytes + bytes }),
      {
        rows: 0,
        bytes: 0,
      },
    );
  },
  skip: {
    'restart: messages, meta, retry times and leases survive a restart of the runtime':
      'the vitest plugin runs one workerd for the whole file; test/node/restart.test.ts kills workerd and starts it again on the same storage',
  },
  modelRuns: 20,
  timeout: 120_000,
});
