/**
 * Delivery records: `GET /v1/messages/:id` answers the same shape while a message is queued and
 * after it left the queue (delivered, bounced, canceled, deleted), with each recipient's SMTP
 * reply, for RETENTION_DAYS; expired records are never served and are pruned by the alarm.
 * Against the real smtp-sink (global-setup.ts: `reject…@` gets 550, `tempfail…@` 451 once).
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { admin, api, eventually, mail, receivedWith, submit, tokens } from './helpers.js';

const namespace = (env as unknown as { QUEUE_SHARD: DurableObjectNamespace }).QUEUE_SHARD;
const DAY = 86_400_000;

interface Result {
  status: string;
  reply: string | null;
  at: number | null;
}
interface Status {
  id: string;
  state: string;
  attempts: number;
  recipients: Record<string, string>;
  results: Record<string, Result>;
  lastError: string | null;
  finishedAt: number | null;
  expiresAt: number | null;
  sendAt: number | null;
}

function shardOf(id: string) {
  return namespace.get(namespace.idFromName(`tenant.acme:${id.slice(1, id.indexOf('.'))}`));
}

async function status(id: string): Promise<{ code: number; body: Status }> {
  const res = await api(`/v1/messages/${id}`, {
    headers: { authorization: `Bearer ${tokens.acme}` },
  });
  return { code: res.status, body: (await res.json()) as Status };
}

async function submitted(to: string[], subject: string): Promise<string> {
  const res = await submit(mail(to, subject), { key: subject });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe('delivery records', () => {
  it('a partly rejected mail is recorded as bounced, with the 250 and the 550 reply of each recipient', async () => {
    const run = crypto.randomUUID();
    const ok = `ok-${run}@example.org`;
    const bad = `reject-${run}@example.org`;
    const id = await submitted([ok, bad], `mixed-${run}`);
    const final = await eventually(async () => {
      const { code, body } = await status(id);
      expect(code).toBe(200);
      expect(body.state).toBe('bounced');
      return body;
    });
    expect(final.recipients).toEqual({ [ok]: 'delivered', [bad]: 'failed' });
    expect(final.results[ok]).toMatchObject({
      status: 'delivered',
      reply: expect.stringMatching(/^250 /),
    });
    expect(final.results[bad]).toMatchObject({
      status: 'failed',
      reply: expect.stringMatching(/^550 5\.1\.1 /),
    });
    expect(final.attempts).toBe(1);
    expect(final.finishedAt).toBeGreaterThanOrEqual(final.results[ok]!.at!);
    expect(final.expiresAt! - final.finishedAt!).toBe(7 * DAY);
    // One copy for the accepted recipient (the sender's DSN quotes the subject too).
    expect((await receivedWith(`mixed-${run}`)).filter((m) => m.rcptTo.includes(ok))).toHaveLength(
      1,
    );
  });

  it('while queued the answer has the same shape, with the deferral reply; then the delivered record', async () => {
    const run = crypto.randomUUID();
    const rcpt = `tempfail-${run}@example.org`;
    const id = await submitted([rcpt], `later-${run}`);
    const deferred = await eventually(async () => {
      const { body } = await status(id);
      expect(body.state).toBe('deferred');
      return body;
    });
    expect(deferred.results[rcpt]).toMatchObject({
      status: 'deferred',
      reply: expect.stringMatching(/^451 4\.3\.0 /),
    });
    expect(deferred).toMatchObject({ attempts: 1, finishedAt: null, expiresAt: null });
    // The message's retry is an hour or more away: make it due by hand, as a flush would.
    const flushed = await admin('/admin/tenants/acme/flush', { method: 'POST' });
    expect(flushed.status).toBe(200);
    const delivered = await eventually(async () => {
      const { body } = await status(id);
      expect(body.state).toBe('delivered');
      return body;
    });
    expect(Object.keys(delivered).sort()).toEqual(Object.keys(deferred).sort());
    expect(delivered.results[rcpt]).toMatchObject({
      status: 'delivered',
      reply: expect.stringMatching(/^250 /),
    });
    expect(delivered.attempts).toBe(2);
  });

  it('a record is served until it expires, then never again, and the alarm prunes it', async () => {
    const run = crypto.randomUUID();
    const id = await submitted([`bob-${run}@example.org`], `expire-${run}`);
    await eventually(async () => expect((await status(id)).body.state).toBe('delivered'));
    const stub = shardOf(id);
    // Time passes (the shard reads its records against its own clock): the expiry moves to now.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        'UPDATE message_records SET expires_at = ? WHERE id = ?',
        Date.now(),
        id,
      );
    });
    expect((await status(id)).code).toBe(404);
    // The alarm prunes it. (The shard's own alarm may be running meanwhile, delivering webhook
    // events: then the one run here is not this one, so look again, bounded.)
    const rows = () =>
      runInDurableObject(stub, (_instance, state) =>
        state.storage.sql
          .exec<{ n: number }>('SELECT count(*) AS n FROM message_records WHERE id = ?', id)
          .one(),
      );
    await vi.waitFor(
      async () => {
        await runInDurableObject(stub, (_instance, state) => state.storage.setAlarm(Date.now()));
        await runDurableObjectAlarm(stub);
        expect((await rows()).n).toBe(0);
      },
      { timeout: 15_000, interval: 100 },
    );
  });

  it('ids of no shard, of another tenant or never stored are 404', async () => {
    for (const id of ['s9.nothing', 's0.neverstored', 'bad id']) {
      expect((await status(encodeURIComponent(id))).code, id).toBe(404);
    }
  });
});
