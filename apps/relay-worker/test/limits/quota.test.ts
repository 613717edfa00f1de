/**
 * A tenant's daily quota (`TENANT_LIMITS` `perDay`): `capped` may submit 3 messages a UTC day;
 * the 4th is refused with `429 RATE_LIMITED` and a `Retry-After` up to the next midnight, and
 * queues nothing. A duplicate (the same Idempotency-Key) does not count.
 */
import { parsePrometheusText, sampleValue } from '@mailspool/test-support/prometheus';
import { describe, expect, it } from 'vitest';
import { admin, base64, queued, submit } from '../workers/helpers.js';

/** `/metrics`' count of submissions the limiter `name` refused for its daily quota. */
async function quotaRefused(name: string): Promise<number> {
  const families = parsePrometheusText(await (await admin('/metrics')).text());
  return sampleValue(families, 'mailspool_limiter_quota_refused_total', { limiter: name });
}

function mail(subject: string) {
  const raw = `From: alice@example.com\r\nTo: bob@example.org\r\nSubject: fault ${subject}\r\n\r\nHi.\r\n`;
  return { from: 'alice@example.com', to: ['bob@example.org'], raw: base64(raw) };
}

describe('daily quota', () => {
  it('a tenant over its daily quota gets 429 RATE_LIMITED with Retry-After, and nothing is queued; a duplicate does not count', async () => {
    const run = crypto.randomUUID().slice(0, 8);
    expect((await submit(mail(`${run}-0`), { tenant: 'capped', key: `${run}-0` })).status).toBe(
      202,
    );
    // A retry of an accepted request is a duplicate: counted, then given back.
    expect((await submit(mail(`${run}-0`), { tenant: 'capped', key: `${run}-0` })).status).toBe(
      200,
    );
    for (let n = 1; n < 3; n++) {
      const response = await submit(mail(`${run}-${n}`), { tenant: 'capped', key: `${run}-${n}` });
      expect(response.status).toBe(202);
    }
    const before = await queued('capped');
    const refusedBefore = await quotaRefused('tenant:capped');
    const at = Date.now();
    const refused = await submit(mail(`${run}-3`), { tenant: 'capped', key: `${run}-3` });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    const midnight = Date.UTC(
      new Date(at).getUTCFullYear(),
      new Date(at).getUTCMonth(),
      new Date(at).getUTCDate() + 1,
    );
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(Math.abs(retryAfter - Math.ceil((midnight - at) / 1000))).toBeLessThanOrEqual(5);
    // Nothing was queued for it (the others may be delivered meanwhile: fewer, never more).
    expect(await queued('capped')).toBeLessThanOrEqual(before);
    // /metrics counts the refusal on the tenant's limiter.
    expect(await quotaRefused('tenant:capped')).toBe(refusedBefore + 1);
    // Other tenants are not limited by it.
    expect((await submit(mail(`${run}-limited`), { tenant: 'limited' })).status).toBe(202);
  });
});
