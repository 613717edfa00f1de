/**
 * Delivery: `RelayShard` is the queue's Durable Object. When its alarm finds due mail, the shard
 * relays its own due messages (claimDue → SMTP → fenced commit) through the configured smarthost,
 * on its own store with no RPC, so N shards deliver N disjoint sets of mail in parallel. Bounces
 * are queued on the same shard and delivered the same way.
 */
import { type DueEvent, QueueShard, type ShardLocalEngine } from '@mailspool/durable-objects';
import { type RelayEvent, runRelayOnce } from '@mailspool/relay';
import { createCloudflareRelayer } from '@mailspool/relay/cloudflare';
import { type RelayConfig, type RelayEnv, readConfig } from './config.js';
import { tenantOfShard, tenantShardName } from './tenants.js';
import { withTraceHeader } from './trace.js';

/** Messages leased per relay run; at most `RELAY_CONCURRENCY` SMTP connections at once. */
const BATCH = 10;
/**
 * SMTP connections a shard opens at once: below Workers' limit of 6 simultaneous outgoing
 * connections per invocation.
 */
export const RELAY_CONCURRENCY = 4;
/** Runs per alarm, and the time after which an alarm starts no new run: the rest is handed on. */
const RUNS_PER_ALARM = 10;
const ALARM_BUDGET_MS = 30_000;
/**
 * Lease of a message being delivered. Renewed every third of it while the attempt runs, so a
 * slow SMTP exchange keeps its lease; a relayer that died (the runtime was killed) frees its
 * messages within this time, and the shard's alarm, armed at the lease's expiry, retries them.
 */
export const LEASE_TTL_MS = 60_000;

export class RelayShard extends QueueShard<RelayEnv> {
  protected override async onDue(event: DueEvent): Promise<void> {
    const config = readConfig(this.env);
    const tenant = this.#tenant(config);
    const engine = tenant === undefined ? undefined : this.localEngine();
    if (tenant === undefined || engine === undefined) {
      // Thrown, so the alarm retries with backoff (at most every 5 minutes): the mail is kept and
      // goes out as soon as the configuration names its tenant again.
      throw new Error(
        `shard ${event.name ?? event.shard} has due mail but no configured tenant; retrying`,
      );
    }
    await deliverDue(engine, config, tenant);
  }

  /**
   * The configured tenant this shard belongs to. Its name comes from its own storage (the shard
   * stores it the first time a request names it); a shard that has none yet (it was created
   * before shards stored their names, and the runtime started it without one) is recognised by
   * comparing its id with the ids of every configured tenant's shard names, and stores the name.
   */
  #tenant(config: RelayConfig): string | undefined {
    let name = this.shardName;
    if (name === undefined) {
      name = findShardName(this.env, config, this.ctx.id);
      if (name !== undefined) this.rememberName(name);
    }
    const tenant = tenantOfShard(name);
    return tenant !== undefined && config.tenants.has(tenant) ? tenant : undefined;
  }
}

export function findShardName(
  env: RelayEnv,
  config: RelayConfig,
  id: DurableObjectId,
): string | undefined {
  for (const tenant of config.tenants.keys()) {
    for (let index = 0; index < config.shards; index++) {
      const name = tenantShardName(tenant, index);
      if (env.QUEUE_SHARD.idFromName(name).equals(id)) return name;
    }
  }
  return undefined;
}

/**
 * Relays the due mail of one shard (`engine`, the shard's local engine) until none is due, the
 * runs or the time budget are spent; resolves to how many messages were leased.
 */
export async function deliverDue(
  engine: ShardLocalEngine,
  config: RelayConfig,
  tenant: string,
): Promise<number> {
  const smtp = createCloudflareRelayer({
    host: config.smarthost.host,
    port: config.smarthost.port,
    secureTransport: config.smarthost.tls,
    ehloName: config.hostname,
    ...(config.smarthost.auth ? { auth: config.smarthost.auth } : {}),
    // Plain-text AUTH is allowed only when TLS is explicitly off: a local smarthost in development.
    allowPlaintextAuth: config.smarthost.tls === 'off',
  });
  const relayer = withTraceHeader(smtp, tenant, config.hostname);
  const started = Date.now();
  let handled = 0;
  for (let run = 0; run < RUNS_PER_ALARM && Date.now() - started < ALARM_BUDGET_MS; run++) {
    const report = await runRelayOnce({
      engine,
      relayer,
      batchSize: BATCH,
      concurrency: RELAY_CONCURRENCY,
      leaseTtl: LEASE_TTL_MS,
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
