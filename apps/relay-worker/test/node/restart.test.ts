/**
 * Restart: mail queued while the smarthost is unreachable survives a restart of the runtime
 * (storage persisted to a directory, as `wrangler dev` and production keep it) and is delivered
 * once after the restart, when the smarthost is back. The `/metrics` counters survive it too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sink, startSink } from '@mailspool/smtp-sink';
import { freePort } from '@mailspool/test-support/net';
import { parsePrometheusText, sampleValue } from '@mailspool/test-support/prometheus';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { unstable_startWorker } from 'wrangler';

// wrangler bundles with esbuild: the `@mailspool/source` condition makes it use the workspace packages'
// TypeScript sources, so no build step is needed first.
process.env.WRANGLER_BUILD_CONDITIONS = '@mailspool/source,workerd,worker,browser';
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';

const TENANT_TOKEN = 'restart-tenant-token-0123456789';
const ADMIN_TOKEN = 'restart-admin-token-0123456789';
const persist = mkdtempSync(join(tmpdir(), 'mailspool-relay-restart-'));

type Worker = Awaited<ReturnType<typeof unstable_startWorker>>;

async function start(smtpPort: number): Promise<Worker> {
  const text = (value: string) => ({ type: 'plain_text' as const, value });
  const worker = await unstable_startWorker({
    config: join(import.meta.dirname, '../../wrangler.jsonc'),
    bindings: {
      SMARTHOST_HOST: text('127.0.0.1'),
      SMARTHOST_PORT: text(String(smtpPort)),
      SMARTHOST_TLS: text('off'),
      SHARDS: text('2'),
      TENANT_TOKENS: text(JSON.stringify({ demo: TENANT_TOKEN })),
      TENANT_SENDERS: text(JSON.stringify({ demo: ['@example.com'] })),
      ADMIN_TOKEN: text(ADMIN_TOKEN),
    },
    dev: {
      persist,
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      logLevel: 'error',
      watch: false,
    },
  });
  await worker.ready;
  return worker;
}

const admin = (worker: Worker, path: string, init: RequestInit = {}) =>
  worker.fetch(`http://relay.test${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  } as never);

/** One counter of tenant `demo` from the Worker's `/metrics`. */
async function metric(worker: Worker, name: string, labels: Record<string, string> = {}) {
  const res = await admin(worker, '/metrics');
  expect(res.status).toBe(200);
  const families = parsePrometheusText(await res.text());
  return sampleValue(families, `mailspool_${name}`, { tenant: 'demo', ...labels });
}

let sink: Sink | undefined;
afterAll(async () => {
  await sink?.close();
  rmSync(persist, { recursive: true, force: true });
});

describe('restart with persisted state', () => {
  it('mail queued before a restart is delivered after it, exactly once', async () => {
    const deadPort = await freePort(); // nothing listens: every attempt fails to connect
    const first = await start(deadPort);
    const raw =
      'From: alice@example.com\r\nTo: bob@example.org\r\nSubject: survives a restart\r\n\r\nStill here.\r\n';
    const submitted = await first.fetch('http://relay.test/v1/messages', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TENANT_TOKEN}`,
        'content-type': 'application/json',
        'idempotency-key': 'restart-1',
      },
      body: JSON.stringify({
        from: 'alice@example.com',
        to: ['bob@example.org'],
        raw: Buffer.from(raw).toString('base64'),
      }),
    } as never);
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    // The alarm fires at once; the smarthost is unreachable, so the attempt is deferred.
    await vi.waitFor(
      async () => {
        const view = (await (await admin(first, `/admin/tenants/demo/messages/${id}`)).json()) as {
          attempts: number;
          state: string;
        };
        expect(view.attempts).toBe(1);
        expect(view.state).toBe('deferred');
      },
      { timeout: 30_000, interval: 200 },
    );
    // Counted before the restart: the deferred attempt, and the submission (after its response).
    await vi.waitFor(
      async () => expect(await metric(first, 'submission_latency_seconds_count')).toBe(1),
      { timeout: 30_000, interval: 200 },
    );
    expect(await metric(first, 'attempts_total', { result: 'deferred' })).toBe(1);
    await first.dispose();

    sink = await startSink({ smtpPort: 0, httpPort: 0, log: () => {} });
    const second = await start(sink.smtpPort);
    try {
      const stats = (await (await admin(second, '/admin/stats')).json()) as {
        total: { total: number; deferred: number };
      };
      expect(stats.total).toMatchObject({ total: 1, deferred: 1 });
      const view = (await (await admin(second, `/admin/tenants/demo/messages/${id}`)).json()) as {
        attempts: number;
      };
      expect(view.attempts).toBe(1);
      // The counters are in the shards' storage: the new runtime still has them.
      expect(await metric(second, 'attempts_total', { result: 'deferred' })).toBe(1);
      expect(await metric(second, 'submission_latency_seconds_count')).toBe(1);
      expect(await metric(second, 'queue_messages', { state: 'deferred' })).toBe(1);
      // The operator flushes after fixing the smarthost: delivered now, once.
      expect((await admin(second, '/admin/flush', { method: 'POST' })).status).toBe(200);
      const [mail] = await sink.waitFor(1, 30_000);
      expect(mail!.rcptTo).toEqual(['bob@example.org']);
      // The bytes submitted, after the relay's Received: trace header.
      const delivered = Buffer.from(mail!.rawBase64, 'base64').toString();
      expect(delivered.startsWith('Received: ')).toBe(true);
      expect(delivered.endsWith(`\r\n${raw}`)).toBe(true);
      // It left the queue; its delivery record says delivered.
      await vi.waitFor(
        async () =>
          expect(
            (
              (await (await admin(second, `/admin/tenants/demo/messages/${id}`)).json()) as {
                state: string;
              }
            ).state,
          ).toBe('delivered'),
        {
          timeout: 30_000,
          interval: 200,
        },
      );
      expect(sink.messages).toHaveLength(1);
      expect(await metric(second, 'attempts_total', { result: 'delivered' })).toBe(1);
      expect(await metric(second, 'attempts_total', { result: 'deferred' })).toBe(1);
      expect(await metric(second, 'deliveries_total')).toBe(1);
    } finally {
      await second.dispose();
    }
  });
});
