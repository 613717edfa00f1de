/**
 * Shard-local delivery: each shard's alarm relays that shard's own due mail. These tests never
 * run an alarm by hand while waiting for delivery (unlike `eventually`): the alarms the shards set
 * themselves must be enough, as they are after a restart with no traffic.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { DurableObjectEngine } from '@mailspool/durable-objects';
import { describe, expect, it, vi } from 'vitest';
import { readConfig } from '../../src/config.js';
import { findShardName } from '../../src/delivery.js';
import { admin, mail, receivedWith, submit } from './helpers.js';

const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;

interface View {
  id: string;
  state: string;
  attempts: number;
}

async function view(id: string): Promise<View | undefined> {
  const res = await admin(`/admin/tenants/acme/messages/${id}`);
  return res.status === 404 ? undefined : ((await res.json()) as View);
}

describe('shard-local delivery', () => {
  it('a deferred backlog on both shards drains completely after one flush, with no alarm run by hand', async () => {
    const run = crypto.randomUUID();
    // Each recipient is refused once (451) and accepted after: all of them end up deferred.
    const ids: string[] = [];
    for (let n = 0; n < 16; n++) {
      const response = await submit(
        mail([`tempfail-${run}-${n}@example.org`], `backlog-${run}-${n}-end`),
        {
          key: `backlog-${run}-${n}-end`,
        },
      );
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { id: string }).id);
    }
    const shards = new Set(ids.map((id) => id.split('.')[0]));
    expect(shards.size).toBe(2);
    await vi.waitFor(
      async () => {
        for (const id of ids)
          expect(await view(id)).toMatchObject({ attempts: 1, state: 'deferred' });
      },
      { timeout: 20_000, interval: 200 },
    );
    const flushed = (await (
      await admin('/admin/tenants/acme/flush', { method: 'POST' })
    ).json()) as {
      flushed: number;
    };
    expect(flushed.flushed).toBe(16);
    await vi.waitFor(
      async () => {
        for (const id of ids) expect((await view(id))?.state).toBe('delivered');
      },
      { timeout: 20_000, interval: 200 },
    );
    for (let n = 0; n < 16; n++)
      expect(await receivedWith(`backlog-${run}-${n}-end`)).toHaveLength(1);
  }, 60_000);

  it('a shard of a tenant the configuration does not name keeps its mail and a wake-up', async () => {
    const engine = new DurableObjectEngine({ namespace, shards: 1, name: 'tenant.ghost' });
    const session = await engine.connect();
    const id = await session.storeMessage({
      meta: {
        sender: 'a@example.com',
        recipients: ['b@example.org'],
        timestamp: Date.now(),
        attempts: 0,
      },
      contents: 'Subject: ghost\r\n\r\nx\r\n',
    });
    const stub = namespace.get(namespace.idFromName('tenant.ghost:0'));
    await runDurableObjectAlarm(stub);
    expect(await session.getAllMessages()).toEqual([id]);
    // The hook threw ("no configured tenant"): retried with backoff instead of resting forever.
    const alarm = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeGreaterThan(Date.now());
    await session.deleteMessage(id);
    await session.close();
  });

  it('a shard with no stored name is recognised from its id among the configured tenants', () => {
    const config = readConfig(env as never);
    for (const name of ['tenant.acme:0', 'tenant.acme:1', 'tenant.globex:1']) {
      expect(findShardName(env as never, config, namespace.idFromName(name))).toBe(name);
    }
    expect(
      findShardName(env as never, config, namespace.idFromName('tenant.ghost:0')),
    ).toBeUndefined();
  });
});
