/**
 * Scheduled send (`sendAt`) and undo (`POST /v1/messages/:id/cancel`). The scheduled mail's time
 * is checked where it lives (the shard's alarm and the message's retry time), and its alarm is
 * run by hand before that time, instead of waiting for the clock.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, inject, it, vi } from 'vitest';
import { fingerprint, parseSubmission } from '../../src/submission.js';
import { admin, api, eventually, mail, receivedWith, submit, tokens } from './helpers.js';

const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;
const control = `http://127.0.0.1:${inject('stallPort')}`;
const HOUR = 3_600_000;

function shardOf(id: string) {
  return namespace.get(namespace.idFromName(`tenant.acme:${id.slice(1, id.indexOf('.'))}`));
}

const asTenant = (path: string, init: RequestInit = {}) =>
  api(path, {
    ...init,
    headers: { authorization: `Bearer ${tokens.acme}`, ...(init.headers ?? {}) },
  });

async function state(
  id: string,
): Promise<{ status: number; state?: string; nextAttemptAt?: number }> {
  const res = await asTenant(`/v1/messages/${id}`);
  return res.status === 404
    ? { status: 404 }
    : { status: res.status, ...((await res.json()) as object) };
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe('scheduled send and undo', () => {
  it('a mail scheduled an hour ahead waits for its time (alarm and retry time), a flush does not send it, and a cancel takes it back', async () => {
    const subject = `later-${crypto.randomUUID()}`;
    const sendAt = Date.now() + HOUR;
    const res = await submit({ ...mail(['bob@example.org'], subject), sendAt }, { key: subject });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(await state(id)).toMatchObject({
      status: 200,
      state: 'scheduled',
      nextAttemptAt: sendAt,
    });
    // Its shard wakes at the scheduled time, not before.
    const alarm = await runInDurableObject(shardOf(id), (_i, s) => s.storage.getAlarm());
    expect(alarm).toBe(sendAt);
    // Running that alarm now (early) sends nothing: the mail is not due.
    await runDurableObjectAlarm(shardOf(id));
    const flushed = (await (
      await admin('/admin/tenants/acme/flush', { method: 'POST' })
    ).json()) as {
      flushed: number;
    };
    expect(flushed.flushed).toBe(0);
    expect(await state(id)).toMatchObject({ state: 'scheduled' });
    expect(await receivedWith(subject)).toHaveLength(0);

    const canceled = await asTenant(`/v1/messages/${id}/cancel`, { method: 'POST' });
    expect(canceled.status).toBe(200);
    expect(await canceled.json()).toEqual({ id, state: 'canceled' });
    expect(await state(id)).toMatchObject({ status: 200, state: 'canceled', attempts: 0 });
    const twice = await asTenant(`/v1/messages/${id}/cancel`, { method: 'POST' });
    expect(twice.status).toBe(409);
    expect(await twice.json()).toMatchObject({
      error: { code: 'ALREADY_FINAL', state: 'canceled' },
    });
    expect(await receivedWith(subject)).toHaveLength(0);
  });

  it('sendAt takes RFC 3339 with an offset or epoch ms, at most MAX_SCHEDULE_DAYS ahead; a past time sends now', async () => {
    const at = Date.UTC(2099, 0, 1);
    const body = (sendAt: unknown) => ({
      ...mail(['bob@example.org'], `fmt-${crypto.randomUUID()}`),
      sendAt,
    });
    for (const bad of ['2030-01-01', '2030-01-01T00:00:00', 'tomorrow', -5, 1.5]) {
      const res = await submit(body(bad));
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(await errorCode(res)).toBe('INVALID_REQUEST');
    }
    // A well-formed but impossible time within the window: refused as invalid, not as too far.
    const impossible = await submit(body(`${new Date().toISOString().slice(0, 10)}T25:00:00Z`));
    expect(impossible.status).toBe(400);
    expect(((await impossible.json()) as { error: { message: string } }).error.message).toMatch(
      /not a valid date-time/,
    );
    const tooFar = await submit(body(at)); // 2099: beyond 30 days
    expect(tooFar.status).toBe(400);
    expect(((await tooFar.json()) as { error: { message: string } }).error.message).toMatch(
      /more than 30 days ahead/,
    );
    const soon = new Date(Date.now() + 2 * HOUR).toISOString().replace('Z', '+00:00');
    const ok = await submit(body(soon));
    expect(ok.status).toBe(202);
    const { id } = (await ok.json()) as { id: string };
    expect(await state(id)).toMatchObject({ state: 'scheduled', nextAttemptAt: Date.parse(soon) });
    await asTenant(`/v1/messages/${id}/cancel`, { method: 'POST' });

    const subject = `past-${crypto.randomUUID()}`;
    const past = await submit({ ...mail(['bob@example.org'], subject), sendAt: 1_000 });
    expect(past.status).toBe(202);
    const pastId = ((await past.json()) as { id: string }).id;
    // Sent now: its delivery record says delivered, with the smarthost's 250. (Looked up by its
    // record, and with the shards' alarms run between looks like the other delivery tests: what
    // earlier files left on a shard, a backoff say, must not decide when this file's mail goes.)
    await eventually(async () => {
      const record = (await (await admin(`/admin/tenants/acme/messages/${pastId}`)).json()) as {
        state: string;
        results: Record<string, { reply: string }>;
      };
      expect(record.state).toBe('delivered');
      expect(record.results['bob@example.org']?.reply).toMatch(/^250 /);
    });
  });

  it('the same Idempotency-Key with another sendAt is another request (409)', async () => {
    const subject = `idem-later-${crypto.randomUUID()}`;
    const message = mail(['bob@example.org'], subject);
    const first = await submit({ ...message, sendAt: Date.now() + HOUR }, { key: subject });
    expect(first.status).toBe(202);
    const again = await submit({ ...message, sendAt: Date.now() + 2 * HOUR }, { key: subject });
    expect(again.status).toBe(409);
    const { id } = (await first.json()) as { id: string };
    await asTenant(`/v1/messages/${id}/cancel`, { method: 'POST' });
  });

  it('a retry with the same sendAt after that time is the same request (the page retries after its undo window)', async () => {
    const t0 = Date.UTC(2030, 0, 1);
    const body = { ...mail(['bob@example.org'], 'retry-later'), sendAt: t0 + 10_000 };
    const first = parseSubmission(body, 5, { now: t0, maxScheduleDays: 30 });
    const retry = parseSubmission(body, 5, { now: t0 + 3_600_000, maxScheduleDays: 30 });
    expect(first.sendAt).toBe(t0 + 10_000);
    expect(retry.sendAt).toBeUndefined(); // past: sent now
    expect(await fingerprint(retry)).toBe(await fingerprint(first));
    const other = parseSubmission({ ...body, sendAt: t0 + 20_000 }, 5, {
      now: t0,
      maxScheduleDays: 30,
    });
    expect(await fingerprint(other)).not.toBe(await fingerprint(first));
  });

  it('a cancel while the SMTP transaction runs is refused (409 ALREADY_SENDING) and the mail goes out once', async () => {
    const run = crypto.randomUUID();
    const address = `stall-${run}@example.org`;
    const subject = `undo-late-${run}`;
    const res = await submit(mail([address], subject), { key: subject });
    const { id } = (await res.json()) as { id: string };
    await vi.waitFor(
      async () =>
        expect((await (await fetch(`${control}/stalled`)).json()) as string[]).toContain(address),
      { timeout: 15_000, interval: 50 },
    );
    const canceled = await asTenant(`/v1/messages/${id}/cancel`, { method: 'POST' });
    expect(canceled.status).toBe(409);
    expect(await errorCode(canceled)).toBe('ALREADY_SENDING');
    await fetch(`${control}/answer?address=${encodeURIComponent(address)}&code=250`, {
      method: 'POST',
    });
    await vi.waitFor(async () => expect(await receivedWith(subject)).toHaveLength(1), {
      timeout: 15_000,
      interval: 100,
    });
    await vi.waitFor(
      async () => expect(await state(id)).toMatchObject({ status: 200, state: 'delivered' }),
      { timeout: 15_000, interval: 100 },
    );
  });
});
