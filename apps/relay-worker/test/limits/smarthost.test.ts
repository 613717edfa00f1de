/**
 * Limits shared by every shard, end to end: the Worker with 4 shards delivers over SMTP to a
 * server on 127.0.0.1 that enforces 2 connections and answers `421` beyond them
 * (test/limits-setup.ts), with `SMARTHOST_MAX_CONNECTIONS=2`. What counts is what the server saw.
 */
import { env } from 'cloudflare:test';
import { parsePrometheusText, sampleValue } from '@mailspool/test-support/prometheus';
import { describe, expect, inject, it, vi } from 'vitest';
import type { LimiterStats, RelayLimiter } from '../../src/limiter.js';
import { SUSPEND_THRESHOLD } from '../../src/suspension.js';
import { admin, base64, queued, runAlarms, submit } from '../workers/helpers.js';

const control = `http://127.0.0.1:${inject('limitedControlPort')}`;
const SHARDS = 4;
const MAX_CONNECTIONS = 2;

interface ServerState {
  peak: number;
  active: number;
  refused: number;
  connections: number;
  deliveries: { seq: number; marker: string; connection: number }[];
}

async function server(): Promise<ServerState> {
  return (await (await fetch(`${control}/state`)).json()) as ServerState;
}

async function tell(path: string): Promise<void> {
  expect((await fetch(`${control}${path}`, { method: 'POST' })).status).toBe(200);
}

function smarthostStats(): Promise<LimiterStats> {
  const namespace = (env as unknown as { LIMITER: DurableObjectNamespace<RelayLimiter> }).LIMITER;
  const name = `smarthost:127.0.0.1:${inject('limitedPort')}`;
  return namespace.get(namespace.idFromName(name)).stats();
}

/** A mail the recorder knows by its marker (`Subject: fault <marker>`). */
function marked(marker: string, to = 'bob@example.org') {
  const raw = `From: alice@example.com\r\nTo: ${to}\r\nSubject: fault ${marker}\r\n\r\nHello.\r\n`;
  return { from: 'alice@example.com', to: [to], raw: base64(raw) };
}

/** Submits `count` mails marked `<run>-<n>`, 8 at a time; resolves to their ids. */
async function submitAll(run: string, count: number): Promise<string[]> {
  const ids: string[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const n = next++;
        const response = await submit(marked(`${run}-${n}`), {
          tenant: 'limited',
          key: `${run}-${n}`,
        });
        expect(response.status).toBe(202);
        ids[n] = ((await response.json()) as { id: string }).id;
      }
    }),
  );
  return ids;
}

describe('the smarthost limit, shared by every shard', () => {
  it('4 shards delivering 200 messages never have more than 2 connections open at the server', async () => {
    await tell('/reset');
    const run = crypto.randomUUID().slice(0, 8);
    const ids = await submitAll(run, 200);
    expect(new Set(ids.map((id) => id.split('.')[0])).size).toBe(SHARDS);
    // The shards' own alarms deliver everything: nothing is run by hand.
    await vi.waitFor(
      async () => {
        const mine = (await server()).deliveries.filter((d) => d.marker.startsWith(`${run}-`));
        expect(mine.length).toBe(200);
      },
      { timeout: 100_000, interval: 250 },
    );
    const state = await server();
    const markers = state.deliveries
      .filter((d) => d.marker.startsWith(`${run}-`))
      .map((d) => d.marker);
    expect(new Set(markers).size).toBe(200);
    expect(state.peak).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(state.peak).toBeGreaterThan(0);
    expect(state.refused).toBe(0);
    await vi.waitFor(async () => expect(await queued('limited')).toBe(0), {
      timeout: 20_000,
      interval: 200,
    });
    const stats = await smarthostStats();
    expect(stats.slotsInUse).toBe(0);
    expect(stats.suspendedUntil).toBeNull();
  });

  it('a 421 storm suspends every shard at once: no connection while suspended, no attempt burned by the waiting mail; a flush resumes', async () => {
    await tell('/reset');
    const before = await smarthostStats();
    const connectionsBefore = (await server()).connections;
    await tell('/storm?on=1');
    const run = crypto.randomUUID().slice(0, 8);
    try {
      const ids = await submitAll(run, 20);
      await vi.waitFor(
        async () => expect((await smarthostStats()).suspensions).toBe(before.suspensions + 1),
        { timeout: 30_000, interval: 100 },
      );
      // Let the attempts already running when it suspended end.
      await vi.waitFor(async () => expect((await server()).active).toBe(0), {
        timeout: 15_000,
        interval: 100,
      });
      const stormed = (await server()).connections - connectionsBefore;
      // The threshold's failures, and at most one more per other slot already connecting.
      expect(stormed).toBeGreaterThanOrEqual(SUSPEND_THRESHOLD);
      expect(stormed).toBeLessThanOrEqual(SUSPEND_THRESHOLD + MAX_CONNECTIONS - 1);
      // Every shard's alarm, run again and again: none connects while the smarthost is suspended.
      for (let n = 0; n < 3; n++) await runAlarms('limited', SHARDS);
      expect((await server()).connections - connectionsBefore).toBe(stormed);
      // Only the mail that met a 421 counted an attempt; the rest waits with none.
      const views = await Promise.all(
        ids.map(
          async (id) =>
            (await (await admin(`/admin/tenants/limited/messages/${id}`)).json()) as {
              attempts: number;
            },
        ),
      );
      const attempts = views.reduce((sum, view) => sum + view.attempts, 0);
      expect(attempts).toBeLessThanOrEqual(stormed);
      expect(views.filter((view) => view.attempts === 0).length).toBeGreaterThanOrEqual(
        20 - stormed,
      );
      const during = await smarthostStats();
      expect(during.waits.suspended).toBeGreaterThan(before.waits.suspended);
      // /metrics tells the same as the limiter: suspended now, and the runs that waited for it.
      const limiter = { limiter: `smarthost:127.0.0.1:${inject('limitedPort')}` };
      const scraped = parsePrometheusText(await (await admin('/metrics')).text());
      expect(sampleValue(scraped, 'mailspool_limiter_suspended', limiter)).toBe(1);
      expect(
        sampleValue(scraped, 'mailspool_limiter_waits_total', { ...limiter, reason: 'suspended' }),
      ).toBeGreaterThanOrEqual(during.waits.suspended);
      expect(sampleValue(scraped, 'mailspool_limiter_suspensions_total', limiter)).toBe(
        during.suspensions,
      );

      // The server recovers and an operator flushes: the suspension is lifted, all goes out.
      await tell('/storm?on=0');
      const flushed = (await (await admin('/admin/flush', { method: 'POST' })).json()) as {
        resumed: boolean;
      };
      expect(flushed.resumed).toBe(true);
      await vi.waitFor(
        async () => {
          const mine = (await server()).deliveries.filter((d) => d.marker.startsWith(`${run}-`));
          expect(new Set(mine.map((d) => d.marker)).size).toBe(20);
        },
        { timeout: 60_000, interval: 250 },
      );
      const after = await smarthostStats();
      expect(after.suspendedUntil).toBeNull();
      expect(after.resumptions).toBe(before.resumptions + 1);
      expect((await server()).peak).toBeLessThanOrEqual(MAX_CONNECTIONS);
    } finally {
      await tell('/storm?on=0');
    }
  });
});
