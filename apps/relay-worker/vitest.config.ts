import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { freePort } from '@mailspool/test-support/net';
import { defineConfig } from 'vitest/config';

const smtpPort = await freePort();
const sinkHttpPort = await freePort();
const stallPort = await freePort();
const webhookPort = await freePort();
// Failover: a port nobody listens on (a smarthost that is down), and two servers of
// test/global-setup.ts that answer every connection's greeting with 421 (busy) and 554 (refused).
const closedPort = await freePort();
const busyPort = await freePort();
const refusingPort = await freePort();
const limitedPort = await freePort();
const limitedControlPort = await freePort();
/** Shards per tenant in each project (its SHARDS binding, and `inject('shards')` in its tests). */
const RELAY_SHARDS = 2;
const LIMITS_SHARDS = 4;

export const TENANT_TOKENS = {
  acme: 'acme-token-0123456789abcdef',
  globex: 'globex-token-0123456789abcdef',
  // Tenants with smarthosts of their own (TENANT_SMARTHOSTS), the sink second in each list.
  downfirst: 'downfirst-token-0123456789abcdef',
  busyfirst: 'busyfirst-token-0123456789abcdef',
  refusedfirst: 'refusedfirst-token-0123456789abcdef',
  // The metrics test's own tenant, so that its counts are exactly what that test did.
  metered: 'metered-token-0123456789abcdef',
};
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
/**
 * The limits project's tenants: `capped` may submit 3 messages a day (TENANT_LIMITS); `bulk`
 * sends the priority test's newsletter. None is a tenant of the other project: the two projects'
 * Durable Objects are not guaranteed to be apart, and a shard one left busy must not be the
 * other's.
 */
export const LIMITS_TENANT_TOKENS = {
  limited: 'limited-token-0123456789abcdef',
  capped: 'capped-token-0123456789abcdef',
  bulk: 'bulk-token-0123456789abcdef',
};
/** acme's webhook: the receiver test/global-setup.ts starts on 127.0.0.1. */
export const WEBHOOK_SECRET = 'acme-webhook-secret-0123456789';

function smarthost(port: number) {
  return { host: '127.0.0.1', port, tls: 'off' };
}

// The Worker runs inside workerd with its real wrangler.jsonc; only the environment differs:
// the smarthost is the smtp-sink that test/global-setup.ts starts on 127.0.0.1, and so is acme's
// webhook receiver.
const relay = {
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.jsonc' },
      miniflare: {
        bindings: {
          SHARDS: String(RELAY_SHARDS),
          SMARTHOST_HOST: '127.0.0.1',
          SMARTHOST_PORT: String(smtpPort),
          SMARTHOST_TLS: 'off',
          // The connection limit is the limits project's subject; here the relay's other
          // behaviour is, and a run's slots are not what these tests wait for.
          SMARTHOST_MAX_CONNECTIONS: 'unlimited',
          HOSTNAME: 'relay.localhost',
          MAX_BODY_BYTES: '65536',
          MAX_RECIPIENTS: '5',
          ALLOWED_ORIGINS: 'https://mail.example.com',
          TENANT_TOKENS: JSON.stringify(TENANT_TOKENS),
          // acme may send as anyone (most tests); globex only from its own addresses.
          TENANT_SENDERS: JSON.stringify({
            acme: ['*', ''],
            globex: ['@globex.example', 'alice@example.com'],
            downfirst: ['*'],
            busyfirst: ['*'],
            refusedfirst: ['*'],
            metered: ['*'],
          }),
          TENANT_SMARTHOSTS: JSON.stringify({
            downfirst: [smarthost(closedPort), smarthost(smtpPort)],
            busyfirst: [smarthost(busyPort), smarthost(smtpPort)],
            refusedfirst: [smarthost(refusingPort), smarthost(smtpPort)],
          }),
          ADMIN_TOKEN,
          TENANT_WEBHOOKS: JSON.stringify({
            acme: { url: `http://127.0.0.1:${webhookPort}/hook/acme`, secret: WEBHOOK_SECRET },
          }),
        },
      },
    }),
  ],
  resolve: { conditions: ['@mailspool/source', 'workerd', 'worker', 'module', 'browser'] },
  ssr: { resolve: { conditions: ['@mailspool/source', 'workerd', 'worker', 'module', 'browser'] } },
  test: {
    name: 'relay',
    include: ['test/workers/*.test.ts'],
    // Correctness tests, not timed ones: CI runs every package at once on 2 cores, where a race
    // test of a few seconds alone took over vitest's default 5 s and failed.
    testTimeout: 120_000,
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/workers/settle.setup.ts'],
    provide: {
      smtpPort,
      sinkHttpPort,
      stallPort,
      webhookPort,
      busyPort,
      refusingPort,
      webhookSecret: WEBHOOK_SECRET,
      tenantTokens: TENANT_TOKENS,
      adminToken: ADMIN_TOKEN,
      shards: RELAY_SHARDS,
    },
    fileParallelism: false,
  },
};

const conditions = ['@mailspool/source', 'workerd', 'worker', 'module', 'browser'];

// The limits tests (test/limits/): the same Worker with 4 shards, delivering to a smarthost that
// enforces 2 connections (test/limits-setup.ts), with the relay limited to those 2.
const limits = {
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.jsonc' },
      miniflare: {
        bindings: {
          SHARDS: String(LIMITS_SHARDS),
          SMARTHOST_HOST: '127.0.0.1',
          SMARTHOST_PORT: String(limitedPort),
          SMARTHOST_TLS: 'off',
          SMARTHOST_MAX_CONNECTIONS: '2',
          HOSTNAME: 'relay.localhost',
          TENANT_TOKENS: JSON.stringify(LIMITS_TENANT_TOKENS),
          TENANT_SENDERS: JSON.stringify({ limited: ['*'], capped: ['*'], bulk: ['*'] }),
          TENANT_LIMITS: JSON.stringify({ capped: { perDay: 3 } }),
          ADMIN_TOKEN,
        },
      },
    }),
  ],
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'limits',
    include: ['test/limits/*.test.ts'],
    testTimeout: 120_000,
    globalSetup: ['test/limits-setup.ts'],
    setupFiles: ['test/workers/settle.setup.ts'],
    provide: {
      limitedPort,
      limitedControlPort,
      tenantTokens: LIMITS_TENANT_TOKENS,
      adminToken: ADMIN_TOKEN,
      shards: LIMITS_SHARDS,
    },
    fileParallelism: false,
  },
};

export default defineConfig({
  test: {
    projects: [relay, limits],
    // `pnpm test` runs each project in its own vitest run (see package.json), each with its report.
    reporters: [
      'default',
      ['json', { outputFile: `test-results/${process.env.RELAY_TEST_REPORT ?? 'test'}.json` }],
    ],
  },
});
