/** The Worker's configuration, read once from its environment (vars in wrangler.jsonc, secrets). */
import { parseTenantTokens } from './http/auth.js';
import { parseOrigins } from './http/cors.js';
import { parseTenantLimits, type TenantLimit } from './limiter.js';
import { parseTenantSenders, type SenderRule } from './senders.js';
import { readSmarthosts, type Smarthost, type SmarthostEnv } from './smarthosts.js';
import { parseTenantWebhooks, type WebhookTarget } from './webhooks.js';

/** What the Worker's environment holds (see wrangler.jsonc and README.md). */
export interface RelayEnv extends SmarthostEnv {
  readonly QUEUE_SHARD: DurableObjectNamespace;
  /** The limiters (limiter.ts): one object per smarthost and per limited tenant. */
  readonly LIMITER: DurableObjectNamespace;
  /** Shards per tenant. */
  readonly SHARDS?: string;
  readonly MAX_BODY_BYTES?: string;
  readonly MAX_RECIPIENTS?: string;
  /** How far ahead `sendAt` may be, in days (default 30). */
  readonly MAX_SCHEDULE_DAYS?: string;
  readonly ALLOWED_ORIGINS?: string;
  /** Hours a message may wait before its sender gets one delay warning (default 4; 0: never). */
  readonly DELAY_WARNING_HOURS?: string;
  /** Our name in EHLO and in DSNs. */
  readonly HOSTNAME?: string;
  /** Secret: JSON object of tenant id → bearer token. */
  readonly TENANT_TOKENS?: string;
  /** Secret: the admin API's bearer token. */
  readonly ADMIN_TOKEN?: string;
  /** JSON object of tenant id → the senders it may use (see senders.ts); unnamed: none. */
  readonly TENANT_SENDERS?: string;
  /** Secret: JSON object of tenant id → `{ url, secret }` of its webhook (see webhooks.ts). */
  readonly TENANT_WEBHOOKS?: string;
  /** Days a delivery record is kept after its message left the queue (default 7). */
  readonly RETENTION_DAYS?: string;
  /** Connections open to the smarthost at once, over every shard (default 4; `unlimited`). */
  readonly SMARTHOST_MAX_CONNECTIONS?: string;
  /** Messages sent to the smarthost per minute, over every shard (default `unlimited`). */
  readonly SMARTHOST_RATE_PER_MINUTE?: string;
  /** JSON object of tenant id → `{ perHour?, perDay? }` (see limiter.ts). */
  readonly TENANT_LIMITS?: string;
  /** The first suspension of a failing smarthost in seconds, doubling up to an hour (default 60; 0: never). */
  readonly SUSPEND_SECONDS?: string;
}

export interface RelayConfig {
  readonly shards: number;
  readonly maxBodyBytes: number;
  readonly maxRecipients: number;
  readonly maxScheduleDays: number;
  readonly allowedOrigins: ReadonlySet<string>;
  readonly tenants: ReadonlyMap<string, string>;
  readonly senders: ReadonlyMap<string, SenderRule>;
  readonly webhooks: ReadonlyMap<string, WebhookTarget>;
  readonly retentionDays: number;
  readonly limits: {
    /** `null`: unlimited. */
    readonly maxConnections: number | null;
    /** `null`: unlimited. */
    readonly perMinute: number | null;
    /** The first suspension (0: never suspend). */
    readonly suspendMs: number;
    readonly tenants: ReadonlyMap<string, TenantLimit>;
  };
  readonly adminToken: string | undefined;
  readonly hostname: string;
  /** The default smarthosts, in the order they are tried (SMARTHOSTS or SMARTHOST_HOST). */
  readonly smarthosts: readonly Smarthost[];
  /** Tenants with smarthosts of their own (TENANT_SMARTHOSTS). */
  readonly tenantSmarthosts: ReadonlyMap<string, readonly Smarthost[]>;
  /** `DELAY_WARNING_HOURS`; 0: no delay warnings. */
  readonly delayWarningHours: number;
}

function integer(
  raw: string | undefined,
  fallback: number,
  name: string,
  min: number,
  max: number,
): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** An integer setting that may also be `unlimited` (then `null`). */
function limit(
  raw: string | undefined,
  fallback: number | null,
  name: string,
  max: number,
): number | null {
  if (raw === 'unlimited') return null;
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new Error(
      `${name} must be an integer from 1 to ${max} or "unlimited", got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** Parses and checks the environment; throws a plain Error naming the bad setting. */
export function readConfig(env: RelayEnv): RelayConfig {
  const tenants = parseTenantTokens(env.TENANT_TOKENS);
  return {
    shards: integer(env.SHARDS, 4, 'SHARDS', 1, 256),
    maxBodyBytes: integer(
      env.MAX_BODY_BYTES,
      14 * 1024 * 1024,
      'MAX_BODY_BYTES',
      1024,
      32 * 1024 * 1024,
    ),
    maxRecipients: integer(env.MAX_RECIPIENTS, 100, 'MAX_RECIPIENTS', 1, 1000),
    maxScheduleDays: integer(env.MAX_SCHEDULE_DAYS, 30, 'MAX_SCHEDULE_DAYS', 1, 365),
    allowedOrigins: parseOrigins(env.ALLOWED_ORIGINS),
    tenants,
    senders: parseTenantSenders(env.TENANT_SENDERS, new Set(tenants.keys())),
    webhooks: parseTenantWebhooks(env.TENANT_WEBHOOKS, new Set(tenants.keys())),
    retentionDays: integer(env.RETENTION_DAYS, 7, 'RETENTION_DAYS', 1, 90),
    limits: {
      maxConnections: limit(env.SMARTHOST_MAX_CONNECTIONS, 4, 'SMARTHOST_MAX_CONNECTIONS', 10_000),
      perMinute: limit(env.SMARTHOST_RATE_PER_MINUTE, null, 'SMARTHOST_RATE_PER_MINUTE', 1_000_000),
      suspendMs: integer(env.SUSPEND_SECONDS, 60, 'SUSPEND_SECONDS', 0, 3600) * 1000,
      tenants: parseTenantLimits(env.TENANT_LIMITS, new Set(tenants.keys())),
    },
    adminToken: env.ADMIN_TOKEN,
    hostname: env.HOSTNAME || 'localhost',
    ...readSmarthosts(env, new Set(tenants.keys())),
    // Up to the longest a message is kept (5 days).
    delayWarningHours: integer(env.DELAY_WARNING_HOURS, 4, 'DELAY_WARNING_HOURS', 0, 120),
  };
}
