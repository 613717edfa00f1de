/**
 * Priorities end to end: a `high` mail submitted behind 1,000 `bulk` ones (the `bulk` tenant's,
 * over 4 shards) reaches the server before all but the few bulk mails that the runs holding the
 * connections had already claimed (and one more run per connection). The server (test/limits-setup.ts) holds its greetings while the mail is queued,
 * so what it receives, in order, is what the relay chose to send first.
 */
import { env } from 'cloudflare:test';
import { DurableObjectEngine } from '@mailspool/durable-objects';
import { describe, expect, inject, it, vi } from 'vitest';
import { admin, base64, submit } from '../workers/helpers.js';

const control = `http://127.0.0.1:${inject('limitedControlPort')}`;
const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;
const BULK = 1000;
/** Messages one relay run claims at most (delivery.ts). */
const RUN_BATCH = 10;

interface ServerState {
  active: number;
  deliveries: { seq: number; marker: string }[];
}

async function server(): Promise<ServerState> {
  return (await (await fetch(`${control}/state`)).json()) as ServerState;
}

async function tell(path: string): Promise<void> {
  expect((await fetch(`${control}${path}`, { method: 'POST' })).status).toBe(200);
}

function marked(marker: string, priority?: string) {
  const raw = `From: news@example.com\r\nTo: bob@example.org\r\nSubject: fault ${marker}\r\n\r\nHello.\r\n`;
  return {
    from: 'news@example.com',
    to: ['bob@example.org'],
    raw: base64(raw),
    ...(priority === undefined ? {} : { priority }),
  };
}

async function stats(): Promise<{ total: number; active: number }> {
  const body = (await (await admin('/admin/stats')).json()) as {
    tenants: { tenant: string; stats: { total: number; active: number } }[];
  };
  return body.tenants.find((t) => t.tenant === 'bulk')!.stats;
}

describe('priorities', () => {
  it('priority is high, normal (the default) or bulk; anything else is 400 INVALID_REQUEST', async () => {
    for (const bad of ['urgent', 1, true, '', 'HIGH']) {
      const response = await submit(marked('bad', bad as string), { tenant: 'bulk' });
      expect(response.status, JSON.stringify(bad)).toBe(400);
      expect(await response.json()).toMatchObject({
        error: { code: 'INVALID_REQUEST', message: expect.stringContaining('"priority"') },
      });
    }
    // The same Idempotency-Key with another priority is another request.
    const key = `prio-${crypto.randomUUID()}`;
    expect((await submit(marked(key, 'bulk'), { tenant: 'bulk', key })).status).toBe(202);
    expect((await submit(marked(key, 'high'), { tenant: 'bulk', key })).status).toBe(409);
    expect((await submit(marked(key, 'bulk'), { tenant: 'bulk', key })).status).toBe(200);
  });

  it('a high mail submitted behind 1,000 bulk ones is delivered before every bulk mail not yet leased', async () => {
    const run = crypto.randomUUID().slice(0, 8);
    await tell('/gate?open=0');
    const ids: string[] = [];
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < BULK) {
            const n = next++;
            const response = await submit(marked(`${run}-bulk-${n}`, 'bulk'), { tenant: 'bulk' });
            expect(response.status).toBe(202);
            ids.push(((await response.json()) as { id: string }).id);
          }
        }),
      );
      // The shards hold their slots' connections open at the greeting; what they leased waits.
      await vi.waitFor(async () => expect((await server()).active).toBe(2), {
        timeout: 30_000,
        interval: 50,
      });
      const leased = (await stats()).active;
      const response = await submit(marked(`${run}-high`, 'high'), { tenant: 'bulk' });
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { id: string }).id);
      await tell('/gate?open=1');
      const order = await vi.waitFor(
        async () => {
          const mine = (await server()).deliveries
            .filter((d) => d.marker.startsWith(`${run}-`))
            .map((d) => d.marker);
          expect(mine).toContain(`${run}-high`);
          return mine;
        },
        { timeout: 60_000, interval: 50 },
      );
      // Before it: the mail already leased when it came (what the 2 runs holding the connections
      // claimed), and at most one more run per connection: a run that ends hands its connection
      // to a shard already waiting, and the high mail's shard may be the one whose run just
      // ended. Not the ~1,000 bulk mails queued before it.
      expect(leased).toBeLessThanOrEqual(2 * RUN_BATCH);
      expect(order.indexOf(`${run}-high`)).toBeLessThanOrEqual(leased + 2 * RUN_BATCH);
    } finally {
      await tell('/gate?open=1');
      // The rest of the bulk is not this test's point: taken out of the queue, each in one fenced
      // step like a cancel (a message in an attempt right now is left to finish).
      const engine = new DurableObjectEngine({ namespace, shards: 4, name: 'tenant.bulk' });
      const session = await engine.connect();
      try {
        for (const id of ids) {
          const lease = await session.acquireLease(id, 30_000).catch(() => null);
          if (lease) await session.commitAttempt(lease, { delete: true }).catch(() => {});
        }
      } finally {
        await session.close();
      }
    }
    await vi.waitFor(async () => expect((await stats()).total).toBe(0), {
      timeout: 30_000,
      interval: 200,
    });
  });
});
