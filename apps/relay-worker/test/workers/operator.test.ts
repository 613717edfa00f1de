/**
 * Operator actions while a delivery attempt is running: the smarthost stalls the RCPT (see
 * global-setup.ts), so the attempt holds the message's lease while the test acts. An action is
 * either applied in one fenced step or refused with 409 and changes nothing; never a 200 for an
 * action that did not take effect.
 */
import { describe, expect, inject, it, vi } from 'vitest';
import { admin, mail, receivedWith, submit } from './helpers.js';

const control = `http://127.0.0.1:${inject('stallPort')}`;

interface View {
  state: string;
  attempts: number;
}

async function view(id: string): Promise<{ status: number; body: View }> {
  const res = await admin(`/admin/tenants/acme/messages/${id}`);
  return { status: res.status, body: (await res.json()) as View };
}

/** Submits a mail whose RCPT the smarthost stalls, and waits until the attempt is in RCPT. */
async function stalledMail(): Promise<{ id: string; address: string; subject: string }> {
  const run = crypto.randomUUID();
  const address = `stall-${run}@example.org`;
  const subject = `stalled-${run}`;
  const response = await submit(mail([address], subject), { key: subject });
  expect(response.status).toBe(202);
  const { id } = (await response.json()) as { id: string };
  // The shard's own alarm starts the attempt (no alarm is run by hand).
  await vi.waitFor(
    async () =>
      expect((await (await fetch(`${control}/stalled`)).json()) as string[]).toContain(address),
    { timeout: 15_000, interval: 50 },
  );
  return { id, address, subject };
}

async function answer(address: string, code: 250 | 451): Promise<void> {
  const res = await fetch(`${control}/answer?address=${encodeURIComponent(address)}&code=${code}`, {
    method: 'POST',
  });
  expect(res.status).toBe(200);
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe('operator actions during an attempt', () => {
  it('hold, release and delete while RCPT stalls are refused with 409 and change nothing; the mail goes out once', async () => {
    const { id, address, subject } = await stalledMail();
    expect((await view(id)).body.state).toBe('sending');

    const held = await admin(`/admin/tenants/acme/messages/${id}/hold`, { method: 'POST' });
    expect(held.status).toBe(409);
    expect(await errorCode(held)).toBe('MESSAGE_SENDING');
    const released = await admin(`/admin/tenants/acme/messages/${id}/release`, { method: 'POST' });
    expect(released.status).toBe(409);
    const deleted = await admin(`/admin/tenants/acme/messages/${id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(409);
    expect(await errorCode(deleted)).toBe('MESSAGE_SENDING');
    // A flush during the attempt does not count the message it could not flush.
    const flush = (await (await admin('/admin/tenants/acme/flush', { method: 'POST' })).json()) as {
      flushed: number;
    };
    expect(flush.flushed).toBe(0);
    expect((await view(id)).body.state).toBe('sending');

    await answer(address, 250);
    await vi.waitFor(async () => expect((await view(id)).body.state).toBe('delivered'), {
      timeout: 15_000,
      interval: 100,
    });
    expect(await receivedWith(subject)).toHaveLength(1);
  });

  it('a hold placed after a 4xx survives: neither the attempt nor a flush sends the mail until it is released', async () => {
    const { id, address, subject } = await stalledMail();
    await answer(address, 451);
    await vi.waitFor(
      async () => expect((await view(id)).body).toMatchObject({ state: 'deferred', attempts: 1 }),
      { timeout: 15_000, interval: 100 },
    );
    const held = await admin(`/admin/tenants/acme/messages/${id}/hold`, { method: 'POST' });
    expect(held.status).toBe(200);
    expect(((await held.json()) as View).state).toBe('held');
    const flush = (await (await admin('/admin/tenants/acme/flush', { method: 'POST' })).json()) as {
      flushed: number;
    };
    expect(flush.flushed).toBe(0);
    expect((await view(id)).body.state).toBe('held');
    expect(await receivedWith(subject)).toHaveLength(0);

    const released = await admin(`/admin/tenants/acme/messages/${id}/release`, { method: 'POST' });
    expect(released.status).toBe(200);
    await vi.waitFor(async () => expect((await view(id)).body.state).toBe('delivered'), {
      timeout: 15_000,
      interval: 100,
    });
    expect(await receivedWith(subject)).toHaveLength(1);
  });

  it('a delete between attempts takes effect: the mail is never sent', async () => {
    const { id, address, subject } = await stalledMail();
    await answer(address, 451);
    await vi.waitFor(async () => expect((await view(id)).body.state).toBe('deferred'), {
      timeout: 15_000,
      interval: 100,
    });
    const deleted = await admin(`/admin/tenants/acme/messages/${id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect((await view(id)).body).toMatchObject({ state: 'deleted', attempts: 1 });
    const flush = (await (await admin('/admin/tenants/acme/flush', { method: 'POST' })).json()) as {
      flushed: number;
    };
    expect(flush.flushed).toBe(0);
    expect(await receivedWith(subject)).toHaveLength(0);
  });
});
