/**
 * Webhook events (TENANT_WEBHOOKS): acme's receiver is a real HTTP server on 127.0.0.1
 * (global-setup.ts). Events are queued in the shard's outbox with the outcome they report, so a
 * receiver outage loses none: they are retried with backoff and arrive signed, in order per
 * message, each event id accepted once. The outbox's backoff is skipped by making the waiting
 * entries due by hand (as time passing would), never by sleeping.
 */
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, inject, it, vi } from 'vitest';
import { parseTenantWebhooks, sign } from '../../src/webhooks.js';
import { admin, api, eventually, mail, runAlarms, submit, tokens } from './helpers.js';

const receiver = `http://127.0.0.1:${inject('webhookPort')}`;
const secret = inject('webhookSecret');
const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;

interface Delivery {
  headers: Record<string, string>;
  body: string;
}
interface Event {
  id: string;
  type: string;
  createdAt: string;
  message: {
    id: string;
    state: string;
    results: Record<string, { status: string; reply: string | null }>;
  };
}

async function deliveries(): Promise<Delivery[]> {
  return (await (await fetch(`${receiver}/deliveries`)).json()) as Delivery[];
}

async function eventsOf(id: string): Promise<{ delivery: Delivery; event: Event }[]> {
  return (await deliveries())
    .map((delivery) => ({ delivery, event: JSON.parse(delivery.body) as Event }))
    .filter(({ event }) => event.message.id === id);
}

async function setUp(up: boolean): Promise<void> {
  expect((await fetch(`${receiver}/mode?up=${up ? 1 : 0}`, { method: 'POST' })).status).toBe(200);
}

/** Makes every waiting outbox entry of acme's shards due now (its backoff has "passed"). */
async function backoffPassed(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const stub = namespace.get(namespace.idFromName(`tenant.acme:${i}`));
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec('UPDATE outbox SET due_at = 0');
    });
  }
}

const asAcme = (path: string, init: RequestInit = {}) =>
  api(path, { ...init, headers: { authorization: `Bearer ${tokens.acme}` } });

describe('webhook events', () => {
  it('delivered, deferred, bounced and canceled events survive a receiver outage: signed, in order per message, each once', async () => {
    const run = crypto.randomUUID();
    await setUp(false);
    const refusedBefore = (
      (await (await fetch(`${receiver}/refused`)).json()) as { refused: number }
    ).refused;
    try {
      const submitted = async (to: string, subject: string, extra: object = {}) => {
        const res = await submit({ ...mail([to], subject), ...extra }, { key: subject });
        expect(res.status).toBe(202);
        return ((await res.json()) as { id: string }).id;
      };
      const later = await submitted(`tempfail-${run}@example.org`, `hook-later-${run}`);
      const rejected = await submitted(`reject-${run}@example.org`, `hook-reject-${run}`);
      const undone = await submitted(`bob-${run}@example.org`, `hook-undo-${run}`, {
        sendAt: Date.now() + 3_600_000,
      });
      expect((await asAcme(`/v1/messages/${undone}/cancel`, { method: 'POST' })).status).toBe(200);
      const stateOf = async (id: string) =>
        ((await (await asAcme(`/v1/messages/${id}`)).json()) as { state: string }).state;
      await eventually(async () => expect(await stateOf(later)).toBe('deferred'));
      await eventually(async () => expect(await stateOf(rejected)).toBe('bounced'));
      expect((await admin('/admin/tenants/acme/flush', { method: 'POST' })).status).toBe(200);
      await eventually(async () => expect(await stateOf(later)).toBe('delivered'));
      // The shards tried to deliver the events and the receiver refused them: none arrived.
      await vi.waitFor(
        async () => {
          const { refused } = (await (await fetch(`${receiver}/refused`)).json()) as {
            refused: number;
          };
          expect(refused).toBeGreaterThan(refusedBefore);
        },
        { timeout: 15_000, interval: 100 },
      );
      for (const id of [later, rejected, undone]) expect(await eventsOf(id)).toEqual([]);

      // The receiver is back; time passes; every event arrives.
      await setUp(true);
      await eventually(async () => {
        await backoffPassed();
        await runAlarms();
        expect((await eventsOf(later)).map(({ event }) => event.type)).toEqual([
          'message.deferred',
          'message.delivered',
        ]);
        expect((await eventsOf(rejected)).map(({ event }) => event.type)).toEqual([
          'message.bounced',
        ]);
        expect((await eventsOf(undone)).map(({ event }) => event.type)).toEqual([
          'message.canceled',
        ]);
      });

      const all = [
        ...(await eventsOf(later)),
        ...(await eventsOf(rejected)),
        ...(await eventsOf(undone)),
      ];
      for (const { delivery, event } of all) {
        expect(delivery.headers['mailspool-signature']).toBe(await sign(secret, delivery.body));
        expect(delivery.headers['mailspool-event-id']).toBe(event.id);
        expect(delivery.headers['mailspool-event-type']).toBe(event.type);
        expect(delivery.headers['content-type']).toBe('application/json');
        expect(event.id).toMatch(/^evt_[0-9a-f-]{36}$/);
      }
      // Each event id was accepted once (the receiver sees every retry it accepted).
      const ids = (await deliveries()).map((d) => d.headers['mailspool-event-id']);
      for (const { event } of all) expect(ids.filter((id) => id === event.id)).toHaveLength(1);
      const [deferred, delivered] = (await eventsOf(later)).map(({ event }) => event);
      expect(deferred!.message.state).toBe('deferred');
      expect(Object.values(deferred!.message.results)[0]!.reply).toMatch(/^451 /);
      expect(delivered!.message.state).toBe('delivered');
      expect(Date.parse(delivered!.createdAt)).toBeGreaterThanOrEqual(
        Date.parse(deferred!.createdAt),
      );
      const [bounced] = (await eventsOf(rejected)).map(({ event }) => event);
      expect(Object.values(bounced!.message.results)[0]!.reply).toMatch(/^550 /);
    } finally {
      await setUp(true);
    }
  });

  it('a signature is HMAC-SHA256 of the exact body with the tenant secret', async () => {
    // Independent of sign(): the value a receiver computes with the Web Crypto API.
    const body = '{"id":"evt_x","type":"message.delivered"}';
    const key = await crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode('another-secret-0123456789'),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['verify'],
    );
    const hex = (await sign('another-secret-0123456789', body)).replace(/^sha256=/, '');
    const mac = Uint8Array.from(hex.match(/../g)!.map((h) => Number.parseInt(h, 16)));
    expect(await crypto.subtle.verify('HMAC', key, mac, new TextEncoder().encode(body))).toBe(true);
    expect(await crypto.subtle.verify('HMAC', key, mac, new TextEncoder().encode(`${body} `))).toBe(
      false,
    );
  });

  it('a bad webhook configuration names the entry', () => {
    const tenants = new Set(['acme']);
    const ok = { url: 'https://hooks.example.com/mail', secret: 'a-secret-of-16-chars' };
    expect(parseTenantWebhooks(JSON.stringify({ acme: ok }), tenants).get('acme')).toEqual(ok);
    for (const [bad, message] of [
      [{ ghost: ok }, /no token/],
      [{ acme: { ...ok, url: 'http://hooks.example.com/' } }, /https/],
      [{ acme: { ...ok, url: 'https://user:pw@hooks.example.com/' } }, /credentials/],
      [{ acme: { ...ok, url: 'not a url' } }, /not a URL/],
      [{ acme: { ...ok, secret: 'short' } }, /16 characters/],
    ] as const) {
      expect(() => parseTenantWebhooks(JSON.stringify(bad), tenants)).toThrow(message);
    }
    expect(() => parseTenantWebhooks('[', tenants)).toThrow(/JSON object/);
  });
});
