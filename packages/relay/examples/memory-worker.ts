// The README's memory-engine example, typechecked (tsc -p examples). wrangler.jsonc:
// { "main": "src/worker.ts", "compatibility_date": "2026-04-01" }
import { MemoryEngine, toMeta } from '@mailspool/core';
import { RelayQueue } from '@mailspool/relay';
import { createCloudflareRelayer } from '@mailspool/relay/cloudflare';

interface Env {
  SMTP_HOST: string; // e.g. smtp.example.net
  SMTP_USER: string;
  SMTP_PASS: string; // a secret
}

const engine = new MemoryEngine();

function relayQueue(env: Env): RelayQueue {
  return new RelayQueue({
    engine,
    relayer: createCloudflareRelayer({
      host: env.SMTP_HOST,
      port: 587,
      secureTransport: 'starttls', // 465: 'on'; plain local test servers: 'off'
      auth: { user: env.SMTP_USER, pass: env.SMTP_PASS },
      ehloName: 'relay.example.com',
      log: ({ id, direction, line }) =>
        console.log(`[${id}] ${direction === 'client' ? '>' : '<'} ${line}`),
    }),
    reportingMta: 'relay.example.com',
    batchSize: 10,
    concurrency: 4,
    onEvent: (event) => console.log(JSON.stringify(event)),
  });
}

export default {
  // POST /send?from=a@example.com&to=b@example.net&to=c@example.org with the RFC 5322 message as body.
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const recipients = url.searchParams.getAll('to');
    if (request.method !== 'POST' || recipients.length === 0)
      return new Response('bad request', { status: 400 });
    const session = await engine.connect();
    try {
      const id = await session.storeMessage({
        meta: toMeta({
          sender: url.searchParams.get('from') ?? '',
          recipients,
          timestamp: Date.now(),
          attempts: 0,
        }),
        contents: new Uint8Array(await request.arrayBuffer()),
      });
      ctx.waitUntil(relayQueue(env).drain()); // relay now, in the background
      return Response.json({ id }, { status: 202 });
    } finally {
      await session.close();
    }
  },
  // A cron trigger ("*/5 * * * *") picks up retries that fell due.
  async scheduled(
    _controller: ScheduledController,
    env: Env,
    ctx: ExecutionContext,
  ): Promise<void> {
    ctx.waitUntil(relayQueue(env).drain());
  },
};
