/** Submit → queue → SMTP delivery, inside workerd against a real SMTP server on 127.0.0.1. */
import { describe, expect, it } from 'vitest';
import { admin, api, decode, eventually, mail, queued, receivedWith, submit } from './helpers.js';

describe('delivery', () => {
  it('a submitted message is delivered with the right envelope and the exact bytes', async () => {
    const subject = `deliver-${crypto.randomUUID()}`;
    const message = mail(['bob@example.org', 'carol@example.net'], subject);
    const response = await submit(message, { key: `k-${subject}` });
    expect(response.status).toBe(202);
    const { id, duplicate } = (await response.json()) as { id: string; duplicate: boolean };
    expect(duplicate).toBe(false);
    const [got] = await eventually(async () => {
      const found = await receivedWith(subject);
      expect(found).toHaveLength(1);
      return found;
    });
    expect(got!.mailFrom).toBe('alice@example.com');
    expect(got!.rcptTo).toEqual(['bob@example.org', 'carol@example.net']);
    // The exact bytes submitted, after the relay's own trace header (RFC 5321 §4.4).
    const delivered = decode(got!.rawBase64);
    const trace = delivered.slice(0, delivered.length - message.text.length);
    expect(delivered.slice(trace.length)).toBe(message.text);
    expect(trace).toMatch(
      new RegExp(
        `^Received: by relay\\.localhost \\(mailspool relay, tenant acme\\) with HTTPS id ${id.replace('.', '\\.')};\r\n\t\\w{3}, \\d{2} \\w{3} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\r\n$`,
      ),
    );
    // Delivered mail leaves the queue, and its delivery record says so, with the reply.
    const record = await eventually(async () => {
      const res = await api(`/v1/messages/${id}`, {
        headers: { authorization: 'Bearer acme-token-0123456789abcdef' },
      });
      const body = (await res.json()) as {
        state: string;
        results: Record<string, { status: string; reply: string }>;
        finishedAt: number;
        expiresAt: number;
      };
      expect(body.state).toBe('delivered');
      return body;
    });
    expect(record.results['carol@example.net']).toMatchObject({ status: 'delivered' });
    expect(record.results['carol@example.net']!.reply).toMatch(/^250 /);
    expect(record.expiresAt - record.finishedAt).toBe(7 * 86_400_000);
  });

  it('the same Idempotency-Key twice, and 10 times concurrently, queues one mail', async () => {
    const subject = `idem-${crypto.randomUUID()}`;
    const message = mail(['dave@example.org'], subject);
    const first = await submit(message, { key: subject });
    expect(first.status).toBe(202);
    const again = await submit(message, { key: subject });
    expect(again.status).toBe(200);
    const a = (await first.json()) as { id: string };
    expect(await again.json()).toEqual({ id: a.id, duplicate: true });

    const subject2 = `idem-conc-${crypto.randomUUID()}`;
    const message2 = mail(['erin@example.org'], subject2);
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => submit(message2, { key: subject2 })),
    );
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as {
      id: string;
      duplicate: boolean;
    }[];
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    expect(bodies.filter((b) => !b.duplicate)).toHaveLength(1);

    await eventually(async () => {
      expect(await receivedWith(subject)).toHaveLength(1);
      expect(await receivedWith(subject2)).toHaveLength(1);
    });
    // And a retry after delivery still does not send it again (the key is remembered).
    expect((await submit(message, { key: subject })).status).toBe(200);
    expect(await receivedWith(subject)).toHaveLength(1);
  });

  it('the same Idempotency-Key with a different request is refused with 409 and queues nothing', async () => {
    const key = `conflict-${crypto.randomUUID()}`;
    expect((await submit(mail(['f@example.org'], `${key}-a`), { key })).status).toBe(202);
    const before = await queued();
    const response = await submit(mail(['f@example.org'], `${key}-b`), { key });
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'IDEMPOTENCY_CONFLICT',
    );
    expect(await queued()).toBeLessThanOrEqual(before);
  });

  it('4xx from the server, then recovery: delivered once after the retry', async () => {
    const subject = `tempfail-${crypto.randomUUID()}`;
    const rcpt = `tempfail-${crypto.randomUUID()}@example.org`;
    const response = await submit(mail([rcpt], subject), { key: subject });
    const { id } = (await response.json()) as { id: string };
    // The first attempt is refused with 451: the message waits for its retry. (The admin view
    // reads the lock list and the meta separately, so right at the commit it may show the new
    // attempt count while still listed as sending: wait for the settled view.)
    const view = await eventually(async () => {
      const res = await admin(`/admin/tenants/acme/messages/${id}`);
      const body = (await res.json()) as {
        state: string;
        attempts: number;
        lastError: string | null;
        nextAttemptAt: number;
      };
      expect(body.attempts).toBe(1);
      expect(body.state).toBe('deferred');
      return body;
    });
    expect(view.lastError).toContain('451');
    expect(view.nextAttemptAt).toBeGreaterThan(Date.now() + 200_000);
    expect(await receivedWith(subject)).toHaveLength(0);
    // An operator flushes the queue (postqueue -f): the retry happens now and succeeds.
    const flushed = (await (
      await admin('/admin/tenants/acme/flush', { method: 'POST' })
    ).json()) as { flushed: number };
    expect(flushed.flushed).toBeGreaterThanOrEqual(1);
    await eventually(async () => expect(await receivedWith(subject)).toHaveLength(1));
    const final = await eventually(async () => {
      const body = (await (await admin(`/admin/tenants/acme/messages/${id}`)).json()) as {
        state: string;
        attempts: number;
        results: Record<string, { status: string; reply: string }>;
      };
      expect(body.state).toBe('delivered');
      return body;
    });
    expect(final.attempts).toBe(2);
    expect(Object.values(final.results)[0]!.reply).toMatch(/^250 /);
    expect(await receivedWith(subject)).toHaveLength(1);
  });

  it('5xx: the sender gets an RFC 3464 bounce from the null reverse-path', async () => {
    const subject = `bounce-${crypto.randomUUID()}`;
    const rcpt = `reject-${crypto.randomUUID()}@example.org`;
    expect(
      (await submit(mail([rcpt], subject, 'sender@example.com'), { key: subject })).status,
    ).toBe(202);
    const [dsn] = await eventually(async () => {
      const found = (await receivedWith(subject)).filter((m) => m.mailFrom === '');
      expect(found).toHaveLength(1);
      return found;
    });
    expect(dsn!.rcptTo).toEqual(['sender@example.com']);
    const text = decode(dsn!.rawBase64);
    expect(text).toMatch(/Content-Type: multipart\/report;[\s\S]*report-type="?delivery-status/i);
    expect(text).toContain(`Final-Recipient: rfc822; ${rcpt}`);
    expect(text).toMatch(/Status: 5\.1\.1/);
    expect(text).toContain('550');
    // The original was never delivered anywhere.
    expect((await receivedWith(subject)).filter((m) => m.mailFrom !== '')).toHaveLength(0);
  });
});
