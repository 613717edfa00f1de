/**
 * `FailoverRelayer` over Node sockets against real servers on 127.0.0.1: which failures move on
 * to the next smarthost within the attempt (`SmtpRelayer.attempt().unreachable`) and which are
 * that smarthost's final answer. The raw server (test/support/raw-smtp.ts) scripts greetings,
 * EHLO and RCPT replies word for word and records every session, so a test can tell whether the
 * next smarthost was ever reached.
 */
import { freePort } from '@mailspool/test-support/net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type FailoverEvent,
  FailoverRelayer,
  type OutgoingMessage,
  SmtpRelayer,
  type SmtpRelayerOptions,
} from '../src/index.js';
import { nodeConnect } from './support/node-socket.js';
import { type RawSmtpServer, startRawSmtp } from './support/raw-smtp.js';
import { type SmtpPeer, startSmtpPeer } from './support/smtp-peer.js';

const signal = new AbortController().signal;
const raws: RawSmtpServer[] = [];
let peer: SmtpPeer;

beforeAll(async () => {
  peer = await startSmtpPeer();
});
afterAll(async () => {
  await peer.close();
});
afterEach(async () => {
  await Promise.all(raws.splice(0).map((raw) => raw.close()));
});

async function raw(options: Parameters<typeof startRawSmtp>[0] = {}): Promise<RawSmtpServer> {
  const server = await startRawSmtp(options);
  raws.push(server);
  return server;
}

function smtp(port: number, options: Partial<SmtpRelayerOptions> = {}): SmtpRelayer {
  return new SmtpRelayer({
    connect: nodeConnect,
    host: '127.0.0.1',
    port,
    secureTransport: 'off',
    timeouts: { connect: 5000 },
    ...options,
  });
}

function message(tag: string, recipients = [`ok.${tag}@x.test`]): OutgoingMessage {
  return {
    id: `failover-${tag}`,
    envelope: { sender: `ok.${tag}@sender.test`, recipients, timestamp: 0, attempts: 0 },
    contents: new TextEncoder().encode(`Subject: ${tag}\r\n\r\nhello\r\n`),
  };
}

function tag(): string {
  return crypto.randomUUID().slice(0, 8);
}

describe('FailoverRelayer: the next smarthost, within the attempt', () => {
  const unreachable: [string, () => Promise<number>][] = [
    ['nothing listens on its port', () => freePort()],
    [
      'it greets with 421',
      async () => (await raw({ greeting: '421 4.3.2 busy.test too many connections' })).port,
    ],
    [
      'it answers EHLO with 421',
      async () => (await raw({ ehlo: ['421 4.3.2 shutting down'] })).port,
    ],
  ];
  for (const [what, first] of unreachable) {
    it(`${what}: delivered by the second`, async () => {
      const t = tag();
      const events: FailoverEvent[] = [];
      const firstPort = await first();
      const second = await raw();
      const relayer = new FailoverRelayer([smtp(firstPort), smtp(second.port)], {
        onFailover: (event) => events.push(event),
      });
      const result = await relayer.deliver(message(t), { signal });
      expect(result.recipients).toEqual([
        expect.objectContaining({ recipient: `ok.${t}@x.test`, status: 'delivered' }),
      ]);
      expect(second.sessions).toHaveLength(1);
      expect(second.sessions[0]!.commands).toContain(`RCPT TO:<ok.${t}@x.test>`);
      expect(events).toEqual([
        expect.objectContaining({
          id: `failover-${t}`,
          from: `127.0.0.1:${firstPort}`,
          to: `127.0.0.1:${second.port}`,
        }),
      ]);
      expect(events[0]!.reason).toMatch(/^4/);
    });
  }

  it("none can be reached: every recipient deferred with the last one's error", async () => {
    const busy = await raw({ greeting: '421 4.3.2 first busy' });
    const busier = await raw({ greeting: '421 4.7.0 second busy' });
    const result = await new FailoverRelayer([smtp(busy.port), smtp(busier.port)]).deliver(
      message(tag()),
      { signal },
    );
    expect(result.recipients).toEqual([
      expect.objectContaining({
        status: 'deferred',
        diagnostic: expect.objectContaining({ code: 421, text: 'second busy' }),
      }),
    ]);
  });
});

describe('FailoverRelayer: answers that are final for the attempt', () => {
  const final: [string, () => Promise<SmtpRelayer>, string][] = [
    [
      'a 554 greeting',
      async () => smtp((await raw({ greeting: '554 5.7.1 no service' })).port),
      'failed',
    ],
    [
      'a 451 to RCPT',
      async () => smtp((await raw({ rcpt: () => '451 4.2.1 mailbox busy' })).port),
      'deferred',
    ],
    [
      'a 550 to RCPT',
      async () => smtp((await raw({ rcpt: () => '550 5.1.1 no such user' })).port),
      'failed',
    ],
    [
      'a refused login',
      async () =>
        smtp(peer.port, { auth: { user: 'user', pass: 'wrong' }, allowPlaintextAuth: true }),
      'deferred',
    ],
  ];
  for (const [what, first, status] of final) {
    it(`${what}: ${status}, and the second smarthost is never reached`, async () => {
      const second = await raw();
      const events: FailoverEvent[] = [];
      const relayer = new FailoverRelayer([await first(), smtp(second.port)], {
        onFailover: (event) => events.push(event),
      });
      const result = await relayer.deliver(message(tag()), { signal });
      expect(result.recipients.map((r) => r.status)).toEqual([status]);
      expect(second.sessions).toHaveLength(0);
      expect(events).toEqual([]);
    });
  }

  it('rejects an empty list with TypeError', () => {
    expect(() => new FailoverRelayer([])).toThrow(TypeError);
  });
});
