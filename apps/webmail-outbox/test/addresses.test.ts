/**
 * The page accepts exactly the addresses the relay accepts: the shared corpus, through what the
 * compose form does (parse the field, build the message), not only through the rule itself.
 */
import { addressCorpus, sameRecipient } from '@mailspool/test-support/address-corpus';
import { describe, expect, it } from 'vitest';
import { ComposeError } from '../src/addresses.js';
import { buildMessage } from '../src/mime.js';

const draft = (from: string, to: string) => ({ from, to, subject: 's', text: 'x' });
const built = (from: string, to: string) => buildMessage(draft(from, to), { date: 0 });

function refusal(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof ComposeError) return error.code;
    throw error;
  }
}

describe('addresses in the compose form', () => {
  for (const c of addressCorpus) {
    // The form can't carry a CR/LF or NUL in a field, and a blank To is "no recipients".
    if (c.address === '' || /[\r\n\0,<>]/.test(c.address)) continue;
    const label = JSON.stringify(c.address).slice(0, 60);
    it(`${label}: ${c.valid ? 'queued' : 'refused before queueing'}${c.why ? ` (${c.why})` : ''}`, () => {
      const asRecipient = refusal(() => built('alice@example.com', c.address));
      expect(asRecipient).toBe(c.valid ? undefined : 'INVALID_ADDRESS');
      if (c.valid) {
        expect(built('alice@example.com', c.address).recipients).toEqual([c.address]);
      }
      expect(refusal(() => built(c.address, 'bob@example.org'))).toBe(
        c.valid ? undefined : 'INVALID_ADDRESS',
      );
    });
  }

  it('recipients that differ only in case go out once, as the relay counts them', () => {
    for (const [a, b, same] of sameRecipient) {
      const { recipients } = built('alice@example.com', `${a}, ${b}`);
      expect(recipients).toEqual(same ? [a] : [a, b]);
    }
  });
});
