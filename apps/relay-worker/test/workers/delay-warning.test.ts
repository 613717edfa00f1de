/**
 * Delay warnings in the Worker (DELAY_WARNING_HOURS, 4 by default): the rules themselves are
 * tested with an injected clock in packages/relay (test/relay-queue.test.ts); here a message is
 * put in a shard as if submitted five hours ago (its envelope's timestamp is the submission
 * time the relay counts from), so the warning goes through the real shard, SMTP and sink.
 */

import { env, runInDurableObject } from 'cloudflare:test';
import { toMeta } from '@mailspool/core';
import type { ShardLocalEngine } from '@mailspool/durable-objects';
import { describe, expect, it } from 'vitest';
import { admin, decode, eventually, receivedWith } from './helpers.js';

const HOUR = 3_600_000;
const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;

/** Stores a message in acme's shard 0 as if it had been submitted at `submittedAt`. */
async function storeSubmittedAt(submittedAt: number, subject: string, rcpt: string) {
  const stub = namespace.get(namespace.idFromName('tenant.acme:0'));
  const raw = `From: sender@example.com\r\nTo: ${rcpt}\r\nSubject: ${subject}\r\nMessage-ID: <${crypto.randomUUID()}@example.com>\r\n\r\nHello.\r\n`;
  return runInDurableObject(stub, async (instance) => {
    const engine = (instance as unknown as { localEngine(): ShardLocalEngine }).localEngine();
    const session = await engine.connect();
    try {
      return await session.storeMessage({
        meta: toMeta({
          sender: 'sender@example.com',
          recipients: [rcpt],
          timestamp: submittedAt,
          attempts: 0,
        }),
        contents: raw,
      });
    } finally {
      await session.close();
    }
  });
}

const warningsFor = async (subject: string) =>
  (await receivedWith(subject)).filter(
    (m) => m.mailFrom === '' && decode(m.rawBase64).includes('Action: delayed'),
  );

describe('delay warnings', () => {
  it('a message waiting longer than DELAY_WARNING_HOURS that is deferred warns its sender once, a younger one not at all', async () => {
    const run = crypto.randomUUID();
    const old = `delayed-old-${run}`;
    const young = `delayed-young-${run}`;
    const oldId = await storeSubmittedAt(
      Date.now() - 5 * HOUR,
      old,
      `tempfail-old-${run}@example.org`,
    );
    const youngId = await storeSubmittedAt(
      Date.now() - 3 * HOUR,
      young,
      `tempfail-young-${run}@example.org`,
    );

    // The first attempts defer both (451); the old one's sender gets one warning.
    const [warning] = await eventually(async () => {
      const found = await warningsFor(old);
      expect(found).toHaveLength(1);
      return found;
    });
    expect(warning!.rcptTo).toEqual(['sender@example.com']);
    const text = decode(warning!.rawBase64);
    expect(text).toContain('Subject: Delayed Mail (still being retried)');
    expect(text).toMatch(/report-type=delivery-status/);
    expect(text).toContain(`Final-Recipient: rfc822; tempfail-old-${run}@example.org`);
    expect(text).toMatch(/Status: 4\.3\.0/);
    expect(text).toMatch(/Will-Retry-Until: \w{3}, \d{2} \w{3} \d{4}/);
    for (const id of [oldId, youngId]) {
      await eventually(async () => {
        const body = (await (await admin(`/admin/tenants/acme/messages/${id}`)).json()) as {
          state: string;
          attempts: number;
        };
        expect(body).toMatchObject({ state: 'deferred', attempts: 1 });
      });
    }

    // The retries deliver both; no second warning, and none for the younger one ever.
    await admin('/admin/tenants/acme/flush', { method: 'POST' });
    await eventually(async () => {
      expect(await receivedWith(old)).toEqual(
        expect.arrayContaining([expect.objectContaining({ mailFrom: 'sender@example.com' })]),
      );
      expect((await receivedWith(young)).filter((m) => m.mailFrom !== '')).toHaveLength(1);
    });
    expect(await warningsFor(old)).toHaveLength(1);
    expect(await warningsFor(young)).toHaveLength(0);
  });
});
