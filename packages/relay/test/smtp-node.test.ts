/**
 * The SMTP relayer's protocol logic over Node sockets against a real smtp-server on 127.0.0.1:
 * mainly the TLS paths (implicit TLS and STARTTLS with smtp-server's self-signed certificate),
 * which the workerd tests can't cover locally. The required transport tests run in workerd
 * (test/workers/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OutgoingMessage, SmtpRelayer, type SmtpRelayerOptions } from '../src/index.js';
import { nodeConnect } from './support/node-socket.js';
import { type SmtpPeer, startSmtpPeer } from './support/smtp-peer.js';

const enc = new TextEncoder();
let plain: SmtpPeer;
let starttls: SmtpPeer;
let implicit: SmtpPeer;

beforeAll(async () => {
  plain = await startSmtpPeer();
  starttls = await startSmtpPeer({ disabledCommands: [], allowInsecureAuth: false });
  implicit = await startSmtpPeer({ secure: true, disabledCommands: [] });
});

afterAll(async () => {
  await Promise.all([plain.close(), starttls.close(), implicit.close()]);
});

function message(tag: string, recipients: string[]): OutgoingMessage {
  return {
    id: `node-${tag}`,
    envelope: { sender: `ok.${tag}@sender.test`, recipients, timestamp: 0, attempts: 0 },
    contents: enc.encode(`Subject: ${tag}\r\n\r\n.hello\r\n`),
  };
}

function relayer(peer: SmtpPeer, options: Partial<SmtpRelayerOptions> = {}): SmtpRelayer {
  return new SmtpRelayer({
    connect: nodeConnect,
    host: '127.0.0.1',
    port: peer.port,
    secureTransport: 'off',
    ...options,
  });
}

const signal = new AbortController().signal;

describe('SMTP over Node sockets', () => {
  it('STARTTLS upgrades before MAIL, and AUTH PLAIN works over it', async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const result = await relayer(starttls, {
      secureTransport: 'starttls',
      auth: { user: 'user', pass: 'secret' },
    }).deliver(message(tag, [`ok.${tag}@x.test`]), { signal });
    expect(result.recipients.map((r) => r.status)).toEqual(['delivered']);
    const received = starttls.log.received.find((m) => m.mailFrom.includes(tag));
    expect(received).toMatchObject({ secure: true, user: 'user', rcptTo: [`ok.${tag}@x.test`] });
    expect(Buffer.from(received!.data, 'base64').toString()).toBe(
      `Subject: ${tag}\r\n\r\n.hello\r\n`,
    );
  });

  it('implicit TLS (port 465 style)', async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const result = await relayer(implicit, { secureTransport: 'on' }).deliver(
      message(tag, [`ok.${tag}@x.test`]),
      { signal },
    );
    expect(result.recipients.map((r) => r.status)).toEqual(['delivered']);
    expect(implicit.log.received.find((m) => m.mailFrom.includes(tag))?.secure).toBe(true);
  });

  it('STARTTLS required but not offered: deferred, and no MAIL is ever sent in clear', async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const result = await relayer(plain, { secureTransport: 'starttls' }).deliver(
      message(tag, [`ok.${tag}@x.test`]),
      { signal },
    );
    expect(result.recipients).toEqual([
      expect.objectContaining({
        status: 'deferred',
        diagnostic: expect.objectContaining({ status: '4.7.0' }),
      }),
    ]);
    expect(plain.log.commands.some((c) => c.includes(tag))).toBe(false);
  });

  it('AUTH LOGIN, and a wrong password defers instead of bouncing', async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const good = await relayer(plain, {
      auth: { user: 'user', pass: 'secret', method: 'LOGIN' },
      allowPlaintextAuth: true,
    }).deliver(message(tag, [`ok.${tag}@x.test`]), { signal });
    expect(good.recipients[0]!.status).toBe('delivered');
    expect(plain.log.received.find((m) => m.mailFrom.includes(tag))?.user).toBe('user');

    const bad = await relayer(plain, {
      auth: { user: 'user', pass: 'wrong' },
      allowPlaintextAuth: true,
    }).deliver(message(`${tag}b`, [`ok.${tag}b@x.test`]), { signal });
    expect(bad.recipients[0]).toMatchObject({
      status: 'deferred',
      diagnostic: { code: 535, status: '4.7.8' },
    });
  });

  it('refuses AUTH over plaintext unless allowed', () => {
    expect(() => relayer(plain, { auth: { user: 'u', pass: 'p' } })).toThrow(TypeError);
  });
});
