/** Helpers of the Worker's workerd tests: calls through the real fetch handler, and the sink's record. */
import { env, runDurableObjectAlarm, SELF } from 'cloudflare:test';
import type { QueueStats } from '@mailspool/core';
import { inject, vi } from 'vitest';

export const tokens = inject('tenantTokens');
export const adminToken = inject('adminToken');
const sinkBase = `http://127.0.0.1:${inject('sinkHttpPort')}`;

export interface SinkMail {
  seq: number;
  mailFrom: string;
  rcptTo: string[];
  subject: string;
  rawBase64: string;
}

/** A request to the Worker under test. */
export function api(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://relay.test${path}`, init);
}

export function base64(text: string | Uint8Array): string {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function decode(b64: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
}

/** POST /v1/messages as `tenant` (default acme). */
export function submit(
  body: unknown,
  options: { tenant?: string; token?: string | null; key?: string; contentType?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? 'application/json',
  };
  const token = options.token === undefined ? tokens[options.tenant ?? 'acme'] : options.token;
  if (token !== null && token !== undefined) headers.authorization = `Bearer ${token}`;
  if (options.key) headers['idempotency-key'] = options.key;
  return SELF.fetch('https://relay.test/v1/messages', {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** A message body for `submit`. */
export function mail(to: string[], subject: string, from = 'alice@example.com') {
  const raw = `From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\nMessage-ID: <${crypto.randomUUID()}@example.com>\r\n\r\nHello.\r\n.dot line stays\r\n`;
  return { from, to, raw: base64(raw), text: raw };
}

/** An admin request. */
export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return api(path, {
    ...init,
    headers: { authorization: `Bearer ${adminToken}`, ...(init.headers ?? {}) },
  });
}

/** Everything the SMTP sink received so far. */
export async function received(): Promise<SinkMail[]> {
  return (await (await fetch(`${sinkBase}/api/messages`)).json()) as SinkMail[];
}

/** Mail the sink received whose subject is `subject`. */
export async function receivedWith(subject: string): Promise<SinkMail[]> {
  return (await received()).filter(
    (m) => m.subject === subject || decode(m.rawBase64).includes(subject),
  );
}

/** Runs the alarm of every shard of `tenant` now (the alarms also fire on their own). */
export async function runAlarms(tenant = 'acme', shards = 2): Promise<void> {
  const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;
  for (let i = 0; i < shards; i++) {
    await runDurableObjectAlarm(namespace.get(namespace.idFromName(`tenant.${tenant}:${i}`)));
  }
}

/** Waits (bounded) until `check` passes, running the tenant's alarms between looks. */
export async function eventually<T>(
  check: () => Promise<T>,
  tenant = 'acme',
  timeout = 15_000,
): Promise<T> {
  return vi.waitFor(
    async () => {
      try {
        return await check();
      } catch (error) {
        await runAlarms(tenant);
        throw error;
      }
    },
    { timeout, interval: 100 },
  );
}

/** Every configured tenant's queue stats, via the admin API. */
async function tenantStats(): Promise<{ tenant: string; stats: QueueStats }[]> {
  const body = (await (await admin('/admin/stats')).json()) as {
    tenants: { tenant: string; stats: QueueStats }[];
  };
  return body.tenants;
}

/** Total messages queued for `tenant`, via the admin API. */
export async function queued(tenant = 'acme'): Promise<number> {
  return (await tenantStats()).find((t) => t.tenant === tenant)!.stats.total;
}

/**
 * Waits (bounded) until no tenant has mail due or in flight, running the alarms meanwhile, so that
 * deliveries a test file started finish (and log) inside the file. Work that outlives its file
 * runs while vitest closes the file's connection to workerd, and the logs and module loads it
 * makes then fail the whole run ("Closing rpc while … was pending", seen in CI). Mail left for
 * later on purpose (scheduled, deferred) is neither due nor in flight. Answers whether the
 * tenants became quiet; a file whose mail stays due (a smarthost that keeps refusing) gives up
 * after `timeout`, since this is cleanup, not a test.
 */
export async function settled(shards: number, timeout = 20_000): Promise<boolean> {
  try {
    await vi.waitFor(
      async () => {
        const busy = (await tenantStats()).filter(({ stats }) => stats.due > 0 || stats.active > 0);
        for (const { tenant } of busy) await runAlarms(tenant, shards);
        if (busy.length > 0) throw new Error(`still busy: ${busy.map((t) => t.tenant).join(', ')}`);
      },
      { timeout, interval: 100 },
    );
    return true;
  } catch (error) {
    console.warn(`settled: gave up after ${timeout} ms (${String(error)})`);
    return false;
  }
}
