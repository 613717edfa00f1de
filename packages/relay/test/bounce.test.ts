/** DSN construction: structure parsed back with postal-mime, and nothing from outside can break it. */
import { describe, expect, it } from 'vitest';
import { buildBounce, headerSection, printable, rfc5322Date } from '../src/index.js';
import { parseDsn } from './support/queue-helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const envelope = {
  sender: 'alice@example.test',
  recipients: ['b@x.test'],
  timestamp: 0,
  attempts: 3,
};

describe('buildBounce', () => {
  it('escapes hostile reply text and addresses instead of letting them add fields or headers', async () => {
    const bounce = buildBounce({
      id: 'q1',
      envelope,
      contents: enc.encode('Subject: s\r\n\r\nbody'),
      failed: [
        {
          recipient: 'evil@x.test\r\nX-Injected: yes',
          status: 'failed',
          diagnostic: {
            status: '5.1.3',
            text: 'bad\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822; forged@x.test',
          },
        },
      ],
      reportingMta: 'mx.test',
      now: 86_400_000,
      unique: 'u1',
    });
    const text = dec.decode(bounce.contents);
    expect(text).not.toMatch(/^X-Injected:/m);
    expect(text).not.toMatch(/^Action: delivered/m);
    const dsn = await parseDsn(bounce.contents);
    expect(dsn.perRecipient).toHaveLength(1);
    expect(dsn.perRecipient[0]).toMatchObject({
      'final-recipient': 'utf-8; evil@x.test\\x{D}\\x{A}X-Injected: yes',
      action: 'failed',
      status: '5.1.3',
    });
    expect(dsn.perRecipient[0]!['diagnostic-code']).toBe(
      'X-Mailspool; bad\\x{D}\\x{A}Action: delivered\\x{D}\\x{A}\\x{D}\\x{A}Final-Recipient: rfc822; forged@x.test',
    );
    expect(dsn.perMessage['arrival-date']).toBe('Thu, 01 Jan 1970 00:00:00 +0000');
    expect(bounce.meta).toEqual({
      sender: '',
      recipients: ['alice@example.test'],
      timestamp: 86_400_000,
      attempts: 0,
      bounce: true,
      bounce_of: 'q1',
    });
  });

  it('returns only the header section, with CRLF, and marks 8-bit headers', async () => {
    const contents = enc.encode('Subject: caf\u00e9\nX-A: 1\n\nsecret body\n');
    expect(dec.decode(headerSection(contents))).toBe('Subject: caf\u00e9\r\nX-A: 1\r\n');
    expect(dec.decode(headerSection(enc.encode('\r\nbody only')))).toBe('');
    expect(dec.decode(headerSection(enc.encode('Only: headers')))).toBe('Only: headers\r\n');
    const bounce = buildBounce({
      id: 'q2',
      envelope,
      contents,
      failed: [
        {
          recipient: 'b@x.test',
          status: 'failed',
          diagnostic: { status: '5.0.0', code: 554, text: 'no' },
        },
      ],
      reportingMta: 'mx.test',
      now: 0,
    });
    const text = dec.decode(bounce.contents);
    expect(text).toContain('Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit');
    expect(text).not.toContain('secret body');
    const dsn = await parseDsn(bounce.contents);
    expect(dsn.returnedHeaders).toContain('Subject: caf\u00e9');
  });

  it('names the remote MTA by host name, and writes a bare IP address as an address literal', async () => {
    const remoteMtas = ['mx.example.test', '192.0.2.7', '2001:db8::25', '[192.0.2.8]'];
    const bounce = buildBounce({
      id: 'q3',
      envelope,
      contents: enc.encode('Subject: s\r\n\r\nbody'),
      failed: remoteMtas.map((remoteMta, i) => ({
        recipient: `r${i}@x.test`,
        status: 'failed' as const,
        diagnostic: { status: '5.1.1', code: 550, text: 'No such user', remoteMta },
      })),
      reportingMta: 'mx.test',
      now: 0,
    });
    const dsn = await parseDsn(bounce.contents);
    expect(dsn.perRecipient.map((r) => r['remote-mta'])).toEqual([
      'dns; mx.example.test',
      'dns; [192.0.2.7]',
      'dns; [IPv6:2001:db8::25]',
      'dns; [192.0.2.8]',
    ]);
  });

  it('refuses to bounce a bounce or to report nothing', () => {
    const failed = [
      {
        recipient: 'b@x.test',
        status: 'failed' as const,
        diagnostic: { status: '5.0.0', text: 'x' },
      },
    ];
    const base = { id: 'q', contents: new Uint8Array(), reportingMta: 'mx', now: 0 };
    expect(() => buildBounce({ ...base, envelope: { ...envelope, sender: '' }, failed })).toThrow(
      TypeError,
    );
    expect(() => buildBounce({ ...base, envelope, failed: [] })).toThrow(TypeError);
  });

  it('formats helpers', () => {
    expect(printable('a\u00e9\tb')).toBe('a\\x{E9}\\x{9}b');
    expect(rfc5322Date(1_700_000_000_000)).toBe('Tue, 14 Nov 2023 22:13:20 +0000');
  });
});
