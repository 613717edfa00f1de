/**
 * Failover and per-tenant smarthosts (TENANT_SMARTHOSTS in vitest.config.ts): each of these
 * tenants has its own list, a smarthost that can not take mail first and the sink second, all on
 * 127.0.0.1. Acme (no list of its own) keeps the default SMARTHOST_* one.
 */
import { describe, expect, inject, it } from 'vitest';
import { admin, decode, eventually, mail, receivedWith, submit } from './helpers.js';

const control = `http://127.0.0.1:${inject('stallPort')}`;

async function greeted(port: number): Promise<number> {
  const res = await fetch(`${control}/greeted?port=${port}`);
  return ((await res.json()) as { connections: number }).connections;
}

interface DeliveryRecord {
  state: string;
  attempts: number;
  results: Record<string, { status: string; reply: string }>;
}

async function settled(tenant: string, id: string, state: string): Promise<DeliveryRecord> {
  return eventually(async () => {
    const body = (await (
      await admin(`/admin/tenants/${tenant}/messages/${id}`)
    ).json()) as DeliveryRecord;
    expect(body.state).toBe(state);
    return body;
  }, tenant);
}

async function send(tenant: string, subject: string, to = 'bob@example.org') {
  const res = await submit(mail([to], subject, 'sender@example.com'), { tenant, key: subject });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe('failover between smarthosts', () => {
  it('the first smarthost is down (nothing listens): delivered through the second in the same attempt', async () => {
    const subject = `down-first-${crypto.randomUUID()}`;
    const id = await send('downfirst', subject);
    const record = await settled('downfirst', id, 'delivered');
    // One attempt, not a deferral and a retry.
    expect(record.attempts).toBe(1);
    expect(record.results['bob@example.org']!.reply).toMatch(/^250 /);
    const got = await receivedWith(subject);
    expect(got).toHaveLength(1);
    expect(decode(got[0]!.rawBase64)).toContain('tenant downfirst');
  });

  it('the first smarthost answers 421 at its greeting: delivered through the second in the same attempt', async () => {
    const before = await greeted(inject('busyPort'));
    const subject = `busy-first-${crypto.randomUUID()}`;
    const id = await send('busyfirst', subject);
    const record = await settled('busyfirst', id, 'delivered');
    expect(record.attempts).toBe(1);
    expect(await receivedWith(subject)).toHaveLength(1);
    // The busy one was tried first (the sink is only ever second in this tenant's list).
    expect(await greeted(inject('busyPort'))).toBeGreaterThan(before);
  });

  it("a 5xx at the greeting is that smarthost's answer, not a failover: the mail bounces, the second is never tried", async () => {
    const before = await greeted(inject('refusingPort'));
    const subject = `refused-first-${crypto.randomUUID()}`;
    const id = await send('refusedfirst', subject);
    const record = await settled('refusedfirst', id, 'bounced');
    expect(record.attempts).toBe(1);
    expect(record.results['bob@example.org']).toMatchObject({ status: 'failed' });
    expect(record.results['bob@example.org']!.reply).toMatch(/^554 5\.7\.1/);
    expect(await greeted(inject('refusingPort'))).toBeGreaterThan(before);
    // Neither the mail nor its bounce reached the sink (the bounce goes the same way, and is
    // refused the same way).
    expect(await receivedWith(subject)).toHaveLength(0);
  });

  it('a per-recipient refusal at the second smarthost is not a failover either (a 550 bounces)', async () => {
    const subject = `rcpt-refused-${crypto.randomUUID()}`;
    const id = await send('downfirst', subject, `reject-${crypto.randomUUID()}@example.org`);
    const record = await settled('downfirst', id, 'bounced');
    expect(record.attempts).toBe(1);
    expect(Object.values(record.results)[0]!.reply).toMatch(/^550 /);
    // The bounce went through the list too: down first, then the sink.
    await eventually(
      async () =>
        expect((await receivedWith(subject)).filter((m) => m.mailFrom === '')).toHaveLength(1),
      'downfirst',
    );
  });
});
