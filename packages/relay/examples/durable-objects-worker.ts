// The README's Durable Objects example, typechecked (tsc -p examples) against
// @mailspool/durable-objects as built alongside this package.
import { WorkerEntrypoint } from 'cloudflare:workers';
import { toMeta } from '@mailspool/core';
import {
  type DueEvent,
  DurableObjectEngine,
  type ShardNamespace,
} from '@mailspool/durable-objects';
import { RelayQueue } from '@mailspool/relay';
import { createCloudflareRelayer } from '@mailspool/relay/cloudflare';

export { QueueShard } from '@mailspool/durable-objects';

interface Env {
  MAILSPOOL_QUEUE: ShardNamespace;
  SMTP_HOST: string;
  SMTP_USER: string;
  SMTP_PASS: string;
}

const engineFor = (env: Env) =>
  new DurableObjectEngine({ namespace: env.MAILSPOOL_QUEUE, shards: 4 });

function relayQueue(env: Env): RelayQueue {
  return new RelayQueue({
    engine: engineFor(env),
    relayer: createCloudflareRelayer({
      host: env.SMTP_HOST,
      port: 465,
      secureTransport: 'on',
      auth: { user: env.SMTP_USER, pass: env.SMTP_PASS },
      ehloName: 'relay.example.com',
    }),
    reportingMta: 'relay.example.com',
    batchSize: 20,
    concurrency: 4,
    leaseTtl: 15 * 60_000, // longer than SMTP's 10-minute end-of-data wait; renewed every 5 min
    onEvent: (event) => console.log(JSON.stringify(event)),
  });
}

/** Called by a shard's alarm when it has due mail. Throwing makes the shard retry with backoff. */
export class Relay extends WorkerEntrypoint<Env> {
  async onDue(event: DueEvent): Promise<void> {
    console.log(`shard ${event.name ?? event.shard}: ${event.due} due`);
    await relayQueue(this.env).drain(10);
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const recipients = url.searchParams.getAll('to');
    if (request.method !== 'POST' || recipients.length === 0)
      return new Response('bad request', { status: 400 });
    const session = await engineFor(env).connect();
    try {
      // Stored durably before we answer: the shard's alarm wakes Relay.onDue at once.
      const id = await session.storeMessage({
        meta: toMeta({
          sender: url.searchParams.get('from') ?? '',
          recipients,
          timestamp: Date.now(),
          attempts: 0,
        }),
        contents: new Uint8Array(await request.arrayBuffer()),
      });
      return Response.json({ id }, { status: 202 });
    } finally {
      await session.close();
    }
  },
  async scheduled(
    _controller: ScheduledController,
    env: Env,
    ctx: ExecutionContext,
  ): Promise<void> {
    ctx.waitUntil(relayQueue(env).drain(10));
  },
};
