/**
 * Tenant isolation by construction: every tenant's mail lives in its own set of Durable Object
 * shards, named after the tenant (`tenant.<id>:<shard>`). A request authenticated as tenant A
 * only ever builds A's engine, so an id of tenant B routes to one of A's shards, where it does
 * not exist (404): there is no shared table where a missing check could leak mail.
 */
import { DurableObjectEngine, shardName } from '@mailspool/durable-objects';
import type { RelayConfig, RelayEnv } from './config.js';

const PREFIX = 'tenant.';

/** The engine holding `tenant`'s queue. */
export function tenantEngine(
  env: RelayEnv,
  config: RelayConfig,
  tenant: string,
): DurableObjectEngine {
  return new DurableObjectEngine({
    namespace: env.QUEUE_SHARD,
    shards: config.shards,
    name: queueName(tenant),
  });
}

function queueName(tenant: string): string {
  return `${PREFIX}${tenant}`;
}

/** The Durable Object name of shard `index` of `tenant`'s queue. */
export function tenantShardName(tenant: string, index: number): string {
  return shardName(queueName(tenant), index);
}

/** The tenant a shard belongs to, from the shard's Durable Object name (`tenant.<id>:<n>`). */
export function tenantOfShard(name: string | undefined): string | undefined {
  if (!name?.startsWith(PREFIX)) return undefined;
  const colon = name.lastIndexOf(':');
  return colon > PREFIX.length ? name.slice(PREFIX.length, colon) : undefined;
}
