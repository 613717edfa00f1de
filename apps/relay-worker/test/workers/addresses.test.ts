/**
 * The submission API applies the shared address rule: the same corpus the webmail page and the
 * SMTP client are tested against, through the real fetch handler.
 */
import { addressCorpus, sameRecipient } from '@mailspool/test-support/address-corpus';
import { describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/submission.js';
import { api, base64, tokens } from './helpers.js';

function post(body: unknown): Promise<Response> {
  return api('/v1/messages', {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.acme}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const raw = base64('Subject: address corpus\r\n\r\nx\r\n');

describe('addresses at submission', () => {
  it('every corpus case is accepted or refused as a recipient and as a sender exactly as the rule says', async () => {
    for (const c of addressCorpus) {
      const asRecipient = await post({ from: 'alice@example.com', to: [c.address], raw });
      expect(asRecipient.status, `to ${JSON.stringify(c.address)}`).toBe(c.valid ? 202 : 400);
      if (!c.valid) {
        const { error } = (await asRecipient.json()) as { error: { code: string } };
        expect(error.code).toBe('INVALID_ADDRESS');
      }
      const asSender = await post({ from: c.address, to: ['bob@example.org'], raw });
      expect(asSender.status, `from ${JSON.stringify(c.address)}`).toBe(
        (c.sender ?? c.valid) ? 202 : 400,
      );
    }
  });

  it('recipients that differ only in case are one recipient: refused as a repeat', async () => {
    for (const [a, b, same] of sameRecipient) {
      const response = await post({ from: 'alice@example.com', to: [a, b], raw });
      expect(response.status).toBe(same ? 400 : 202);
    }
  });

  it('the idempotency fingerprint tells a list of recipients from any other list', async () => {
    const contents = new TextEncoder().encode('x');
    const joined = await fingerprint({
      from: 'a@x.org',
      to: ['b@y.org,c@z.org'],
      contents,
      priority: 'normal',
    });
    const split = await fingerprint({
      from: 'a@x.org',
      to: ['b@y.org', 'c@z.org'],
      contents,
      priority: 'normal',
    });
    const moved = await fingerprint({
      from: 'a@x.org,b@y.org',
      to: ['c@z.org'],
      contents,
      priority: 'normal',
    });
    expect(new Set([joined, split, moved]).size).toBe(3);
    expect(
      await fingerprint({
        from: 'a@x.org',
        to: ['b@y.org', 'c@z.org'],
        contents,
        priority: 'normal',
      }),
    ).toBe(split);
  });
});
