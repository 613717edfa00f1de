/**
 * `GET /metrics` (Prometheus text format, parsed by the strict parser of
 * `@mailspool/test-support/prometheus`), the structured log lines, and the status page's last
 * 24 hours. The counts are checked against what the test did, on a tenant of its own (`metered`)
 * so that no other test's mail is in them.
 */
import { env, runInDurableObject } from 'cloudflare:test';
import { parsePrometheusText, sampleValue } from '@mailspool/test-support/prometheus';
import { describe, expect, it, vi } from 'vitest';
import { logRelayEvent } from '../../src/log.js';
import { admin, adminToken, api, eventually, mail, receivedWith, submit } from './helpers.js';

const TENANT = 'metered';
const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;

async function scrape() {
  const res = await admin('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(await res.text());
}

async function send(subject: string, to: string): Promise<string> {
  const res = await submit(mail([to], subject, 'sender@example.com'), {
    tenant: TENANT,
    key: subject,
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function stateOf(id: string): Promise<{ state: string; attempts: number }> {
  return (await (await admin(`/admin/tenants/${TENANT}/messages/${id}`)).json()) as {
    state: string;
    attempts: number;
  };
}

describe('GET /metrics', () => {
  it('needs the admin token (401 without it or with another token), and only answers GET', async () => {
    expect((await api('/metrics')).status).toBe(401);
    const tenantToken = await api('/metrics', {
      headers: { authorization: 'Bearer metered-token-0123456789abcdef' },
    });
    expect(tenantToken.status).toBe(401);
    expect((await admin('/metrics', { method: 'POST' })).status).toBe(405);
    // Prometheus' basic_auth: any user name, the admin token as the password.
    const basic = await api('/metrics', {
      headers: { authorization: `Basic ${btoa(`prometheus:${adminToken}`)}` },
    });
    expect(basic.status).toBe(200);
  });

  it('counts what happened: deliveries, bounces, attempts by result, latencies, queue depth', async () => {
    const run = crypto.randomUUID();
    const delivered = await Promise.all(
      [1, 2, 3].map((n) => send(`metrics-ok-${n}-${run}`, `ok-${n}-${run}@example.org`)),
    );
    const bounced = await Promise.all(
      [1, 2].map((n) => send(`metrics-bounce-${n}-${run}`, `reject-${n}-${run}@example.org`)),
    );
    const deferred = await send(`metrics-later-${run}`, `tempfail-${run}@example.org`);

    // Everything settles: three delivered, two bounced (their DSNs delivered to the sender), one
    // deferred by its 451.
    await eventually(async () => {
      for (const id of delivered) expect((await stateOf(id)).state).toBe('delivered');
      for (const id of bounced) expect((await stateOf(id)).state).toBe('bounced');
      expect(await stateOf(deferred)).toMatchObject({ state: 'deferred', attempts: 1 });
      for (const n of [1, 2]) {
        const dsns = (await receivedWith(`metrics-bounce-${n}-${run}`)).filter(
          (m) => m.mailFrom === '',
        );
        expect(dsns).toHaveLength(1);
      }
    }, TENANT);

    let metrics = await scrape();
    const value = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(metrics, `mailspool_${name}`, { tenant: TENANT, ...labels });
    // 3 messages + 2 DSNs delivered, 2 bounced, 1 deferred: one attempt each.
    expect(value('attempts_total', { result: 'delivered' })).toBe(5);
    expect(value('attempts_total', { result: 'bounced' })).toBe(2);
    expect(value('attempts_total', { result: 'deferred' })).toBe(1);
    expect(value('deliveries_total')).toBe(5);
    expect(value('bounces_total')).toBe(2);
    expect(value('delay_warnings_total')).toBe(0);
    expect(value('lease_expiries_total')).toBe(0);
    expect(value('attempt_errors_total')).toBe(0);
    expect(value('failovers_total')).toBe(0);
    // The deferred one waits for its retry; nothing else is queued.
    expect(value('queue_messages', { state: 'deferred' })).toBe(1);
    expect(value('queue_messages', { state: 'due' })).toBe(0);
    expect(value('queue_messages', { state: 'sending' })).toBe(0);
    expect(value('queue_oldest_message_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(value('delivery_latency_seconds_count')).toBe(5);
    expect(value('delivery_latency_seconds_bucket', { le: '+Inf' })).toBe(5);
    expect(metrics.get('mailspool_delivery_latency_seconds')?.type).toBe('histogram');
    expect(metrics.get('mailspool_attempts_total')?.type).toBe('counter');
    expect(metrics.get('mailspool_queue_messages')?.type).toBe('gauge');

    // The submission latencies are counted after each response: all six, eventually.
    await vi.waitFor(
      async () => {
        metrics = await scrape();
        expect(value('submission_latency_seconds_count')).toBe(6);
      },
      { timeout: 15_000, interval: 100 },
    );

    // The counters live in the shards' storage (they survive a restart), summed over shards.
    let stored = 0;
    for (const index of [0, 1]) {
      stored += await runInDurableObject(
        namespace.get(namespace.idFromName(`tenant.${TENANT}:${index}`)),
        (_instance, state) =>
          state.storage.sql
            .exec<{ value: number }>(
              "SELECT coalesce(sum(value), 0) AS value FROM relay_counters WHERE name = 'deliveries_total'",
            )
            .one().value,
      );
    }
    expect(stored).toBe(5);

    // The retry succeeds: one more delivery, one more delivered attempt, an empty queue.
    const flushed = await admin(`/admin/tenants/${TENANT}/flush`, { method: 'POST' });
    expect(((await flushed.json()) as { flushed: number }).flushed).toBe(1);
    await eventually(async () => expect((await stateOf(deferred)).state).toBe('delivered'), TENANT);
    metrics = await scrape();
    expect(value('attempts_total', { result: 'delivered' })).toBe(6);
    expect(value('attempts_total', { result: 'deferred' })).toBe(1);
    expect(value('deliveries_total')).toBe(6);
    expect(value('delivery_latency_seconds_count')).toBe(6);
    expect(value('queue_messages', { state: 'deferred' })).toBe(0);
    expect(value('queue_oldest_message_age_seconds')).toBe(0);

    // The status page: delivered and bounced in the last 24 h (every tenant), and the chart.
    const page = await (
      await api('/status', { headers: { authorization: `Basic ${btoa(`ops:${adminToken}`)}` } })
    ).text();
    const card = (id: string) => Number(new RegExp(`data-testid="${id}">(\\d+)<`).exec(page)?.[1]);
    expect(card('delivered-24h')).toBeGreaterThanOrEqual(6);
    expect(card('bounced-24h')).toBeGreaterThanOrEqual(2);
    expect(page).toContain('<svg');
    const bars = [...page.matchAll(/data-delivered="(\d+)"/g)].map((m) => Number(m[1]));
    expect(bars).toHaveLength(24);
    expect(bars.reduce((a, b) => a + b, 0)).toBe(card('delivered-24h'));
  });

  it('a failover is counted for its tenant', async () => {
    const subject = `metrics-failover-${crypto.randomUUID()}`;
    const res = await submit(mail(['bob@example.org'], subject), {
      tenant: 'downfirst',
      key: subject,
    });
    const { id } = (await res.json()) as { id: string };
    await eventually(async () => {
      const body = (await (await admin(`/admin/tenants/downfirst/messages/${id}`)).json()) as {
        state: string;
      };
      expect(body.state).toBe('delivered');
    }, 'downfirst');
    const metrics = await scrape();
    expect(
      sampleValue(metrics, 'mailspool_failovers_total', { tenant: 'downfirst' }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('logs', () => {
  it('one JSON line per relay event: tenant, id, result and the SMTP reply code', () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    try {
      const outcomes = [
        {
          recipient: 'b@example.org',
          status: 'deferred' as const,
          diagnostic: { status: '4.3.0', code: 451, text: 'try again later' },
        },
      ];
      logRelayEvent(
        'acme',
        {
          type: 'deferred',
          id: 's0.x',
          recipients: ['b@example.org'],
          retryAt: Date.UTC(2030, 0, 1),
          diagnostic: '451 4.3.0 try again later',
        },
        outcomes,
      );
      logRelayEvent('acme', { type: 'completed', id: 's0.x' }, undefined);
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(2);
    const [deferred, completed] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(deferred).toMatchObject({
      event: 'relay',
      tenant: 'acme',
      id: 's0.x',
      result: 'deferred',
      code: 451,
      status: '4.3.0',
      recipients: 1,
      retryAt: '2030-01-01T00:00:00.000Z',
    });
    expect(typeof deferred!.at).toBe('string');
    // No recipient address in a log line.
    expect(lines[0]).not.toContain('b@example.org');
    expect(completed).toMatchObject({ result: 'completed', code: null });
  });
});
