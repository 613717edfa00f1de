/** Sender policy (TENANT_SENDERS): globex may send only from @globex.example and alice@example.com. */
import { describe, expect, it } from 'vitest';
import { parseTenantSenders, senderAllowed, senderRule } from '../../src/senders.js';
import { mail, submit } from './helpers.js';

async function code(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe('sender policy', () => {
  it('a tenant submits from its own addresses and domains, and anything else is 403 with nothing queued', async () => {
    const run = crypto.randomUUID();
    for (const from of ['news@globex.example', 'NEWS@GLOBEX.EXAMPLE', 'Alice@Example.com']) {
      const res = await submit(mail(['x@example.org'], `ok-${run}`, from), { tenant: 'globex' });
      expect(res.status, from).toBe(202);
    }
    const forged = [
      'MAILER-DAEMON@google.com',
      'bob@example.com',
      'x@sub.globex.example',
      'x@globex.example.evil.test',
      '',
    ];
    const keyOf = (from: string) => `forged-${run}-${from.length}`;
    for (const from of forged) {
      const res = await submit(mail(['x@example.org'], `forged-${run}`, from), {
        tenant: 'globex',
        key: keyOf(from),
      });
      expect(res.status, JSON.stringify(from)).toBe(403);
      expect(await code(res)).toBe('SENDER_NOT_ALLOWED');
    }
    // Nothing was stored: each refused request's idempotency key is still unused, so an allowed
    // request with that key is new (202), neither a duplicate (200) nor a conflict (409). (A
    // queue count would also fall as the accepted mail above is delivered meanwhile.)
    for (const from of forged) {
      const res = await submit(mail(['x@example.org'], `allowed-${run}`, 'news@globex.example'), {
        tenant: 'globex',
        key: keyOf(from),
      });
      expect(res.status, `key of ${JSON.stringify(from)}`).toBe(202);
      expect(((await res.json()) as { duplicate: boolean }).duplicate).toBe(false);
    }
  });

  it('a tenant the policy does not name may send from no address; "*" allows any but the null sender', () => {
    const rules = parseTenantSenders(
      JSON.stringify({ a: ['*'], b: ['', '@b.example'] }),
      new Set(['a', 'b', 'c']),
    );
    expect(senderAllowed(senderRule(rules, 'a'), 'anyone@anywhere.example')).toBe(true);
    expect(senderAllowed(senderRule(rules, 'a'), '')).toBe(false);
    expect(senderAllowed(senderRule(rules, 'b'), '')).toBe(true);
    expect(senderAllowed(senderRule(rules, 'b'), 'x@b.example')).toBe(true);
    expect(senderAllowed(senderRule(rules, 'b'), 'x@c.example')).toBe(false);
    expect(senderAllowed(senderRule(rules, 'c'), 'x@c.example')).toBe(false);
    expect(senderAllowed(senderRule(rules, 'c'), '')).toBe(false);
  });

  it('a bad policy is a configuration error naming the entry', () => {
    const tenants = new Set(['a']);
    expect(() => parseTenantSenders('{', tenants)).toThrow(/JSON object/);
    expect(() => parseTenantSenders('{"z":["*"]}', tenants)).toThrow(/"z", which has no token/);
    expect(() => parseTenantSenders('{"a":["not an address"]}', tenants)).toThrow(
      /a: "not an address"/,
    );
    expect(() => parseTenantSenders('{"a":["@bad..domain"]}', tenants)).toThrow(/is not a domain/);
    expect(() => parseTenantSenders('{"a":"x@a.example"}', tenants)).toThrow(/needs a list/);
  });
});
