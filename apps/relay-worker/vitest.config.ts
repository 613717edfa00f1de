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
/** acme's webhook: the receiver test/global-setup.ts starts on 127.0.0.1. */
export const WEBHOOK_SECRET = 'acme-webhook-secret-0123456789';

function smarthost(port: number) {
  return { host: '127.0.0.1', port, tls: 'off' };
}

// The Worker runs inside workerd with its real wrangler.jsonc; only the environment differs:
// the smarthost is the smtp-sink that test/global-setup.ts starts on 127.0.0.1, and so is acme's
// webhook receiver.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.jsonc' },
      miniflare: {
        bindings: {
          SHARDS: '2',
          SMARTHOST_HOST: '127.0.0.1',
          SMARTHOST_PORT: String(smtpPort),
          SMARTHOST_TLS: 'off',
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
    include: ['test/workers/*.test.ts'],
    // Correctness tests, not timed ones: CI runs every package at once on 2 cores, where a race
    // test of a few seconds alone took over vitest's default 5 s and failed.
    testTimeout: 120_000,
    globalSetup: ['test/global-setup.ts'],
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
    },
    fileParallelism: false,
    reporters: ['default', ['json', { outputFile: 'test-results/test.json' }]],
  },
});
