import { env } from 'cloudflare:workers';
import { runConformance } from '@mailspool/conformance';
import { DurableObjectEngine } from '../src/index.js';
import type { Env } from './worker.js';

// Three shards, so routing, fan-out and the cross-shard claimDue merge are all under test. The
// suite's `store` names the queue: the same store reaches the same shards (persistence cases).
runConformance({
  name: 'DurableObjectEngine (3 shards, workerd)',
  createEngine: ({ clock, store, maxMessageBytes }) =>
    new DurableObjectEngine({
      namespace: (env as unknown as Env).QUEUE,
      shards: 3,
      name: store,
      clock,
      ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
    }),
  modelRuns: 20,
  timeout: 120_000,
});
