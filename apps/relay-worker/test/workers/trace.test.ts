/** The Received: trace header (RFC 5321 §4.4) the relay adds on the way out. */
import { describe, expect, it } from 'vitest';
import { receivedHeader } from '../../src/trace.js';

const envelope = (over: Record<string, unknown> = {}) => ({
  sender: 'alice@example.com',
  recipients: ['bob@example.org'],
  timestamp: Date.UTC(2026, 11, 1, 16, 30, 5),
  attempts: 0,
  ...over,
});

describe('Received: header', () => {
  it('names the client address, the relay, the tenant, the submission id, a lone recipient and the time received', () => {
    const header = receivedHeader({
      id: 's1.abc',
      tenant: 'acme',
      hostname: 'relay.example.com',
      envelope: envelope({ client: { protocol: 'HTTPS', ip: '203.0.113.7', authInfo: 'acme' } }),
    });
    expect(header).toBe(
      'Received: from [203.0.113.7] (HTTPS submission)\r\n\tby relay.example.com (mailspool relay, tenant acme) with HTTPS id s1.abc\r\n\tfor <bob@example.org>;\r\n\tTue, 01 Dec 2026 16:30:05 +0000\r\n',
    );
    expect(header.split('\r\n').every((line) => line.length <= 78)).toBe(true);
  });

  it('writes IPv6 as an address literal, drops what is not an IP, and never lists several recipients', () => {
    const v6 = receivedHeader({
      id: 's0.x',
      tenant: 'acme',
      hostname: 'relay.example.com',
      envelope: envelope({
        client: { ip: '2001:db8::1' },
        recipients: ['a@x.example', 'bcc@y.example'],
      }),
    });
    expect(v6).toContain('from [IPv6:2001:db8::1] (HTTPS submission)');
    expect(v6).not.toContain('bcc@y.example');
    const forged = receivedHeader({
      id: 's0.x',
      tenant: 'acme',
      hostname: 'relay.example.com\r\nX-Evil: 1',
      envelope: envelope({ client: { ip: '1.2.3.4\r\nX-Evil: 1' } }),
    });
    expect(forged).not.toContain('X-Evil');
    expect(forged.startsWith('Received: by localhost (mailspool relay, tenant acme)')).toBe(true);
  });
});
