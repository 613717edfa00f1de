/** The shared address rule against the shared corpus (the webmail page runs the same corpus). */
import { addressCorpus, sameRecipient } from '@mailspool/test-support/address-corpus';
import { describe, expect, it } from 'vitest';
import { addressKey, addressProblem, isMailAddress } from '../src/address.js';
import { isSmtpAddress } from '../src/smtp/address.js';

describe('the address rule', () => {
  for (const c of addressCorpus) {
    const label = JSON.stringify(c.address).slice(0, 60);
    it(`${label}: recipient ${c.valid ? 'accepted' : 'refused'}${c.why ? ` (${c.why})` : ''}`, () => {
      expect(isMailAddress(c.address, 'recipient')).toBe(c.valid);
      expect(isMailAddress(c.address, 'sender')).toBe(c.sender ?? c.valid);
      // The SMTP client applies exactly the same rule before sending a byte.
      expect(isSmtpAddress(c.address, 'recipient')).toBe(c.valid);
      if (!c.valid) expect(addressProblem(c.address, 'recipient')).toEqual(expect.any(String));
    });
  }

  it('names the same recipient ignoring ASCII case only', () => {
    for (const [a, b, same] of sameRecipient) expect(addressKey(a) === addressKey(b)).toBe(same);
  });
});
