/**
 * The SMTP session over Node sockets against real servers on 127.0.0.1: the size it declares in
 * MAIL FROM, the name it gives the server in DSNs (`Remote-MTA`), and when `deliver` resolves
 * relative to QUIT. smtp-server checks what a standard server sees; a minimal `node:net` server
 * (test/support/raw-smtp.ts) scripts greetings word for word and holds its reply to QUIT.
 */
import { ManualClock } from '@mailspool/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBounce,
  type DeliveryResult,
  ManualTimers,
  type OutgoingMessage,
  type SmtpLogEntry,
  SmtpRelayer,
  type SmtpRelayerOptions,
  settle,
} from '../src/index.js';
import { nodeConnect } from './support/node-socket.js';
import { parseDsn } from './support/queue-helpers.js';
import {
  type RawSmtpServer,
  type RawSmtpSession,
  startRawSmtp,
  within,
} from './support/raw-smtp.js';
import { type SmtpPeer, startSmtpPeer } from './support/smtp-peer.js';

const enc = new TextEncoder();
const signal = new AbortController().signal;
/** Bound on every wait for the other side (events, not pauses). */
const BOUND = 3000;

let peer: SmtpPeer;
const raws: RawSmtpServer[] = [];

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

function newTag(): string {
  return crypto.randomUUID().slice(0, 8);
}

function message(tag: string, recipients: string[], contents?: Uint8Array): OutgoingMessage {
  return {
    id: `session-${tag}`,
    envelope: { sender: `ok.${tag}@sender.test`, recipients, timestamp: 0, attempts: 0 },
    contents: contents ?? enc.encode(`Subject: ${tag}\r\n\r\nhello\r\n`),
  };
}

function relayer(port: number, options: Partial<SmtpRelayerOptions> = {}): SmtpRelayer {
  return new SmtpRelayer({
    connect: nodeConnect,
    host: '127.0.0.1',
    port,
    secureTransport: 'off',
    ...options,
  });
}

/** The `Remote-MTA` field of the DSN built from a delivery's failed recipients. */
async function remoteMtaInDsn(tag: string, result: DeliveryResult): Promise<string | undefined> {
  const failed = result.recipients.filter((r) => r.status === 'failed');
  expect(failed).toHaveLength(1);
  const bounce = buildBounce({
    id: `session-${tag}`,
    envelope: { sender: `ok.${tag}@sender.test`, recipients: [], timestamp: 0, attempts: 1 },
    contents: enc.encode('Subject: s\r\n\r\nb\r\n'),
    failed,
    reportingMta: 'relay.test',
    now: 0,
  });
  return (await parseDsn(bounce.contents)).perRecipient[0]?.['remote-mta'];
}

describe('SIZE=', () => {
  it('declares the size the server receives: CRLF line ends counted, stuffing dots not', async () => {
    const tag = newTag();
    // Bare LF and bare CR line ends, lines starting with dots, and no line end at the end.
    const contents = enc.encode(
      `Subject: size ${tag}\n\n.leading dot\n..two dots\nbare CR\rcrlf\r\nlast line`,
    );
    const lines: SmtpLogEntry[] = [];
    const result = await relayer(peer.port, { log: (entry) => lines.push(entry) }).deliver(
      message(tag, [`ok.${tag}@x.test`], contents),
      { signal },
    );
    expect(result.recipients.map((r) => r.status)).toEqual(['delivered']);
    const received = peer.log.received.find((m) => m.mailFrom === `ok.${tag}@sender.test`)!;
    const receivedBytes = Buffer.from(received.data, 'base64');
    expect(receivedBytes.toString()).toBe(
      `Subject: size ${tag}\r\n\r\n.leading dot\r\n..two dots\r\nbare CR\r\ncrlf\r\nlast line\r\n`,
    );
    expect(received.declaredSize).toBe(receivedBytes.length);
    // Longer than the raw contents: 5 bare line ends became CRLF, and a final CRLF was added.
    expect(receivedBytes.length).toBe(contents.length + 7);
    expect(lines.map((l) => l.line)).toContain(
      `MAIL FROM:<ok.${tag}@sender.test> SIZE=${receivedBytes.length} ENVID=session-${tag}`,
    );
  });
});

describe('Remote-MTA', () => {
  it('is the name in the greeting, not the address connected to', async () => {
    const tag = newTag();
    const result = await relayer(peer.port).deliver(message(tag, [`perm.${tag}@x.test`]), {
      signal,
    });
    expect(result.recipients[0]).toMatchObject({
      status: 'failed',
      diagnostic: { code: 550, remoteMta: 'peer.test' },
    });
    expect(await remoteMtaInDsn(tag, result)).toBe('dns; peer.test');
  });

  it("is the EHLO reply's name when the greeting gives none", async () => {
    const server = await raw({
      greeting: '220 ESMTP service ready',
      ehlo: ['250-mx.ehlo.test Hello relay', '250 8BITMIME'],
      rcpt: () => '550 5.1.1 No such user',
    });
    const tag = newTag();
    const result = await relayer(server.port).deliver(message(tag, [`a.${tag}@x.test`]), {
      signal,
    });
    expect(await remoteMtaInDsn(tag, result)).toBe('dns; mx.ehlo.test');
  });

  it('is an address literal when the server names itself by address only', async () => {
    const server = await raw({
      greeting: '220 [127.0.0.1] ESMTP',
      ehlo: ['250-[127.0.0.1]', '250 8BITMIME'],
      rcpt: () => '550 5.1.1 No such user',
    });
    const tag = newTag();
    const result = await relayer(server.port).deliver(message(tag, [`a.${tag}@x.test`]), {
      signal,
    });
    expect(result.recipients[0]!.diagnostic.remoteMta).toBe('[127.0.0.1]');
    expect(await remoteMtaInDsn(tag, result)).toBe('dns; [127.0.0.1]');
  });
});

describe('the end of a session', () => {
  /** Delivers, and reports whether `deliver` had resolved by the time the server got QUIT. */
  async function deliverUntilQuit(
    server: RawSmtpServer,
    relay: SmtpRelayer,
    outgoing: OutgoingMessage,
  ): Promise<{ session: RawSmtpSession; resolvedBeforeQuit: boolean; result: DeliveryResult }> {
    let resolved = false;
    const delivery = relay.deliver(outgoing, { signal }).then((result) => {
      resolved = true;
      return result;
    });
    const session = await within(server.session(0), BOUND, 'connection');
    await within(session.quitReceived, BOUND, 'QUIT');
    const resolvedBeforeQuit = resolved;
    if (!resolvedBeforeQuit) session.answerQuit();
    return { session, resolvedBeforeQuit, result: await delivery };
  }

  it('resolves on the reply to the final dot; QUIT and the close follow', async () => {
    const server = await raw({ holdQuit: true });
    const tag = newTag();
    const { session, resolvedBeforeQuit, result } = await deliverUntilQuit(
      server,
      relayer(server.port),
      message(tag, [`ok.${tag}@x.test`]),
    );
    expect(resolvedBeforeQuit).toBe(true);
    expect(result.recipients).toEqual([
      expect.objectContaining({
        status: 'delivered',
        diagnostic: expect.objectContaining({ code: 250 }),
      }),
    ]);
    expect(session.messages.map((m) => m.toString())).toEqual([`Subject: ${tag}\r\n\r\nhello\r\n`]);
    // QUIT is still unanswered, so the client keeps the connection open for the reply...
    expect(session.isClosed).toBe(false);
    session.answerQuit();
    // ...and closes it once the 221 arrives (the server never closes first).
    await within(session.closed, BOUND, 'the client closing the connection');
    expect(session.commands.at(-1)).toBe('QUIT');
  });

  it('resolves before QUIT when every recipient was refused too', async () => {
    const server = await raw({ holdQuit: true, rcpt: () => '550 5.1.1 No such user' });
    const tag = newTag();
    const { session, resolvedBeforeQuit, result } = await deliverUntilQuit(
      server,
      relayer(server.port),
      message(tag, [`a.${tag}@x.test`]),
    );
    expect(resolvedBeforeQuit).toBe(true);
    expect(result.recipients.map((r) => r.status)).toEqual(['failed']);
    expect(session.commands.some((c) => c.startsWith('DATA'))).toBe(false);
    session.answerQuit();
    await within(session.closed, BOUND, 'the client closing the connection');
  });

  it('closes the connection when QUIT gets no reply within the QUIT timeout', async () => {
    const server = await raw({ holdQuit: true });
    const timers = new ManualTimers(new ManualClock(0));
    const tag = newTag();
    const { session, resolvedBeforeQuit, result } = await deliverUntilQuit(
      server,
      relayer(server.port, { timers, timeouts: { quit: 5000 } }),
      message(tag, [`ok.${tag}@x.test`]),
    );
    expect(resolvedBeforeQuit).toBe(true);
    expect(result.recipients.map((r) => r.status)).toEqual(['delivered']);
    expect(session.isClosed).toBe(false);
    // The QUIT timeout runs on the injected clock: the connection stays open until it elapses.
    // (Its timer may be armed a turn of the event loop after the server read QUIT.)
    for (let turn = 0; turn < 100 && timers.size === 0; turn++) await settle();
    expect(timers.size).toBe(1);
    await timers.advance(4999);
    expect(session.isClosed).toBe(false);
    await timers.advance(1);
    await within(session.closed, BOUND, 'the client closing the connection');
    expect(timers.size).toBe(0);
  });
});
