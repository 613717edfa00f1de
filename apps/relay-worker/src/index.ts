/**
 * The mailspool relay Worker: accepts mail over HTTP (docs/relay-api.md), queues it in Durable
 * Object shards per tenant, and delivers it over SMTP when the shards' alarms say it is due.
 */
import { handle } from './app.js';
import type { RelayEnv } from './config.js';

export { RelayShard } from './delivery.js';
export { RelayLimiter } from './limiter.js';

export default {
  fetch(request: Request, env: RelayEnv, ctx: ExecutionContext): Promise<Response> {
    return handle(request, env, ctx);
  },
} satisfies ExportedHandler<RelayEnv>;
