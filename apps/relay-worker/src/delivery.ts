/**
 * Delivery: `RelayShard` is the queue's Durable Object. When its alarm finds due mail, it runs the
 * relay loop (claimDue → SMTP → fenced writes) for the shard's tenant through the configured
 * smarthost. Bounces are queued in the same tenant's queue and delivered the same way.
 */
import { type DueEvent, QueueShard } from '@mailspool/durable-objects';
import { type RelayEvent, runRelayOnce } from '@mailspool/relay';
import { createCloudflareRelayer } from '@mailspool/relay/cloudflare';
import { type RelayConfig, type RelayEnv, readConfig } from './config.js';
import { tenantEngine, tenantOfShard } from './tenants.js';

/** Messages leased per relay run, and runs per alarm at most (the alarm comes back while mail is due). */
const BATCH = 10;
const RUNS_PER_ALARM = 10;

export class RelayShard extends QueueShard<RelayEnv> {
  protected override async onDue(event: DueEvent): Promise<void> {
    const tenant = tenantOfShard(event.name);
    const config = readConfig(this.env);
    if (tenant === undefined || !config.tenants.has(tenant)) {
      // A queue whose tenant was removed from the configuration: keep its mail, deliver nothing.
      console.warn(
        `mailspool: shard ${event.name ?? event.shard} has due mail but no configured tenant`,
      );
      return;
    }
    await deliverDue(this.env, config, tenant);
  }
}

/** Runs the relay loop for `tenant` until no more mail is due (bounded); resolves to how many were handled. */
export async function deliverDue(
  env: RelayEnv,
  config: RelayConfig,
  tenant: string,
): Promise<number> {
  const engine = tenantEngine(env, config, tenant);
  const relayer = createCloudflareRelayer({
    host: config.smarthost.host,
    port: config.smarthost.port,
    secureTransport: config.smarthost.tls,
    ehloName: config.hostname,
    ...(config.smarthost.auth ? { auth: config.smarthost.auth } : {}),
    // Plain-text AUTH is allowed only when TLS is explicitly off: a local smarthost in development.
    allowPlaintextAuth: config.smarthost.tls === 'off',
  });
  let handled = 0;
  for (let run = 0; run < RUNS_PER_ALARM; run++) {
    const report = await runRelayOnce({
      engine,
      relayer,
      batchSize: BATCH,
      reportingMta: config.hostname,
      onEvent: (event) => log(tenant, event),
    });
    handled += report.claimed;
    if (report.claimed < BATCH) break;
  }
  return handled;
}

function log(tenant: string, event: RelayEvent): void {
  const { type, id } = event;
  const detail =
    event.type === 'deferred'
      ? ` retry at ${new Date(event.retryAt).toISOString()}: ${event.diagnostic}`
      : event.type === 'bounced'
        ? ` bounce ${event.bounceId} for ${event.recipients.join(', ')}`
        : event.type === 'error'
          ? ` ${String(event.error)}`
          : '';
  console.log(`mailspool[${tenant}]: ${type} ${id}${detail}`);
}
