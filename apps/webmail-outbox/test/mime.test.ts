import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { ComposeError } from '../src/addresses.js';
import { buildMessage, encodeWords } from '../src/mime.js';

const DATE = Date.UTC(2026, 10, 29, 9, 30, 5);
const decoder = new TextDecoder();

function pseudoRandomBytes(length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

describe('buildMessage', () => {
  it('builds a multipart message that parses back with the right headers, body and attachment bytes', async () => {
    const binary = pseudoRandomBytes(150_000);
    const text = 'Hello Bob,\n\nthe report is attached. Grüße, Ålice — ✉️\n'.repeat(3);
    const built = buildMessage(
      {
        from: 'Ålice Example <alice@example.com>',
        to: 'bob@example.org, "Smith, Carol" <carol@example.net>',
        cc: 'dave@example.com',
        bcc: 'eve@example.com; bob@example.org',
        subject:
          'Quarterly report — Q4 (draft) ✓ with a subject long enough to need folding into several words',
        text,
        attachments: [
          { filename: 'report.bin', contentType: 'application/octet-stream', data: binary },
          {
            filename: 'naïve résumé.txt',
            contentType: 'text/plain',
            data: new TextEncoder().encode('plain\r\n'),
          },
        ],
      },
      { date: DATE },
    );

    // The envelope: every recipient once, Bcc included.
    expect(built.sender).toBe('alice@example.com');
    expect(built.recipients).toEqual([
      'bob@example.org',
      'carol@example.net',
      'dave@example.com',
      'eve@example.com',
    ]);

    const source = decoder.decode(built.raw);
    // 7-bit clean, CRLF only, lines within RFC 5322 §2.1.1's 998, base64 within RFC 2045's 76.
    expect([...source].every((char) => char.charCodeAt(0) < 0x80)).toBe(true);
    expect(source.replace(/\r\n/gu, '')).not.toMatch(/[\r\n]/u);
    const lines = source.split('\r\n');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(998);
    const base64 = lines.filter((line) => /^[A-Za-z0-9+/]+=*$/u.test(line));
    expect(base64.length).toBeGreaterThan(2000);
    for (const line of base64) expect(line.length).toBeLessThanOrEqual(76);
    // Bcc must not be in the headers.
    expect(source).not.toMatch(/^bcc:/imu);
    expect(source).not.toContain('eve@example.com');

    const email = await PostalMime.parse(built.raw);
    expect(email.from).toEqual({ name: 'Ålice Example', address: 'alice@example.com' });
    expect(email.to).toEqual([
      { name: '', address: 'bob@example.org' },
      { name: 'Smith, Carol', address: 'carol@example.net' },
    ]);
    expect(email.cc).toEqual([{ name: '', address: 'dave@example.com' }]);
    expect(email.bcc).toBeUndefined();
    expect(email.subject).toBe(
      'Quarterly report — Q4 (draft) ✓ with a subject long enough to need folding into several words',
    );
    expect(email.messageId).toBe(built.messageId);
    expect(email.messageId).toMatch(/^<[0-9a-f-]{36}@example\.com>$/u);
    expect(new Date(email.date!).getTime()).toBe(DATE);
    expect(email.text).toBe(text.replace(/\n/gu, '\r\n'));
    expect(email.attachments).toHaveLength(2);
    const [bin, txt] = email.attachments;
    expect(bin!.filename).toBe('report.bin');
    expect(bin!.mimeType).toBe('application/octet-stream');
    expect(new Uint8Array(bin!.content as ArrayBuffer)).toEqual(binary);
    expect(txt!.filename).toBe('naïve résumé.txt');
    expect(decoder.decode(txt!.content as ArrayBuffer)).toBe('plain\r\n');
    expect(source).toMatch(/^Content-Type: multipart\/mixed; boundary=/mu);
  });

  it('keeps a short ASCII subject readable and a plain single-part text message', async () => {
    const built = buildMessage(
      { from: 'alice@example.com', to: 'bob@example.org', subject: 'Lunch?', text: 'At noon.' },
      { date: DATE },
    );
    const source = decoder.decode(built.raw);
    expect(source).toContain('\r\nSubject: Lunch?\r\n');
    expect(source).toContain('Date: Sun, 29 Nov 2026 09:30:05 +0000');
    expect(source).not.toContain('multipart');
    const email = await PostalMime.parse(built.raw);
    expect(email.text).toBe('At noon.');
    expect(email.subject).toBe('Lunch?');
    expect(email.attachments).toEqual([]);
  });

  it('folds encoded-words at code point boundaries, each at most 75 characters', () => {
    const words = encodeWords('😀'.repeat(40)).split('\r\n ');
    expect(words.length).toBeGreaterThan(1);
    for (const word of words) {
      expect(word.length).toBeLessThanOrEqual(75);
      const b64 = /^=\?UTF-8\?B\?(.*)\?=$/u.exec(word)![1]!;
      // Each word decodes on its own to whole characters.
      expect(decoder.decode(Buffer.from(b64, 'base64'))).toMatch(/^(😀)+$/u);
    }
  });

  it.each([
    [{ from: '', to: 'bob@example.org' }, 'NO_SENDER', 'from'],
    [{ from: 'alice', to: 'bob@example.org' }, 'INVALID_ADDRESS', 'from'],
    [{ from: 'alice@example.com', to: '' }, 'NO_RECIPIENTS', 'to'],
    [{ from: 'alice@example.com', to: 'bob @example.org' }, 'INVALID_ADDRESS', 'to'],
    [{ from: 'alice@example.com', to: 'bob@example.org', cc: 'x<y@z' }, 'INVALID_ADDRESS', 'cc'],
    [
      { from: 'alice@example.com', to: 'bob@example.org', bcc: 'a@b\r\nBcc: c@d' },
      'INVALID_ADDRESS',
      'bcc',
    ],
  ])('refuses %j with %s on %s', (fields, code, field) => {
    const draft = { subject: 's', text: 't', ...fields };
    let error: unknown;
    try {
      buildMessage(draft, { date: DATE });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ComposeError);
    expect(error).toMatchObject({ code, field });
  });

  it('refuses a message over the size limit before encoding it', () => {
    expect(() =>
      buildMessage(
        {
          from: 'alice@example.com',
          to: 'bob@example.org',
          subject: 'big',
          text: '',
          attachments: [{ filename: 'a', contentType: 'x/y', data: new Uint8Array(2_000_000) }],
        },
        { date: DATE, maxBytes: 1_000_000 },
      ),
    ).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
  });
});
