/**
 * The SMTP relayer inside workerd, over `cloudflare:sockets`, against a real smtp-server on
 * 127.0.0.1 (started by test/global-setup.ts). The relay loop runs here too, on the memory
 * engine with a ManualClock and ManualTimers, so retries and timeouts happen without sleeping.
 *
 * Every test uses fresh addresses (a random tag), so the server's per-address scripts and
 * records never mix between tests.
 */
import { ManualClock, MemoryEngine } from '@mailspool/core';
import { describe, expect, inject, it } from 'vitest';
import { createCloudflareRelayer } from '../../src/cloudflare.js';
import {
  ExponentialBackoff,
  isRelayError,
  ManualTimers,
  type OutgoingMessage,
  RelayErrorCode,
  RelayQueue,
  type SmtpLogEntry,
  type SmtpRelayerOptions,
  settle,
} from '../../src/index.js';
import { dump, enqueue, parseDsn } from '../support/queue-helpers.js';
import type { PeerLog, RawSessionState } from '../support/smtp-peer.js';

const enc = new TextEncoder();
const signal = new AbortController().signal;
const T0 = 1_700_000_000_000;

function newTag(): string {
  return crypto.randomUUID().replaceAll('-', '').slice(0, 12);
}

async function peerLog(peer: 'main' | 'canary' = 'main'): Promise<PeerLog> {
  const response = await fetch(`http://127.0.0.1:${inject('controlPort')}/log?peer=${peer}`);
  return (await response.json()) as PeerLog;
}

function bytesOf(received: { data: string }): Uint8Array {
  return Uint8Array.from(atob(received.data), (c) => c.charCodeAt(0));
}

function relayer(options: Partial<SmtpRelayerOptions> = {}) {
  return createCloudflareRelayer({
    host: '127.0.0.1',
    port: inject('smtpPort'),
    secureTransport: 'off',
    ehloName: 'relay.test',
    ...options,
  });
}

function message(
  tag: string,
  recipients: string[],
  contents: Uint8Array,
  sender = `ok.${tag}@sender.test`,
): OutgoingMessage {
  return {
    id: `msg-${tag}`,
    envelope: { sender, recipients, timestamp: T0, attempts: 0 },
    contents,
  };
}

/** The relay loop on a memory engine, time under test control. */
function loop(options: Partial<SmtpRelayerOptions> = {}) {
  const clock = new ManualClock(T0);
  const timers = new ManualTimers(clock);
  const engine = new MemoryEngine({ clock });
  const queue = new RelayQueue({
    engine,
    relayer: relayer({ timers, ...options }),
    clock,
    timers,
    policy: new ExponentialBackoff({ random: () => 0.5 }),
    reportingMta: 'relay.test',
    leaseTtl: 15 * 60_000,
  });
  return { clock, timers, engine, queue };
}

describe('delivery', () => {
  it('delivers the exact bytes and envelope, with the queue id in ENVID and the logs', async () => {
    const tag = newTag();
    const contents = enc.encode(
      `From: a@sender.test\r\nTo: b@x.test\r\nSubject: caf\u00e9 ${tag}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBonjour \u00e0 tous\r\n\r\nline with trailing spaces   \r\n`,
    );
    const lines: SmtpLogEntry[] = [];
    const result = await relayer({ log: (entry) => lines.push(entry) }).deliver(
      message(tag, [`ok.${tag}@x.test`, `ok.${tag}-2@y.test`], contents),
      { signal },
    );
    expect(result.recipients.map((r) => [r.recipient, r.status, r.diagnostic.code])).toEqual([
      [`ok.${tag}@x.test`, 'delivered', 250],
      [`ok.${tag}-2@y.test`, 'delivered', 250],
    ]);
    const received = (await peerLog()).received.filter(
      (m) => m.mailFrom === `ok.${tag}@sender.test`,
    );
    expect(received).toHaveLength(1);
    expect(received[0]!.rcptTo).toEqual([`ok.${tag}@x.test`, `ok.${tag}-2@y.test`]);
    expect(bytesOf(received[0]!)).toEqual(contents);
    expect(received[0]!.envid).toBe(`msg-${tag}`);
    expect(lines.every((l) => l.id === `msg-${tag}` && l.host === '127.0.0.1')).toBe(true);
    expect(lines.map((l) => l.line)).toContain(
      `MAIL FROM:<ok.${tag}@sender.test> SIZE=${contents.length} BODY=8BITMIME ENVID=msg-${tag}`,
    );
  });

  it('dot-stuffing round trip, and bare LFs arrive as CRLF', async () => {
    const tag = newTag();
    const text = `Subject: dots ${tag}\r\n\r\n.\r\n..\r\n.leading dot\r\nmiddle . dot\r\n...\r\n.`;
    const result = await relayer().deliver(message(tag, [`ok.${tag}@x.test`], enc.encode(text)), {
      signal,
    });
    expect(result.recipients[0]!.status).toBe('delivered');
    const tag2 = newTag();
    await relayer().deliver(
      message(tag2, [`ok.${tag2}@x.test`], enc.encode('Subject: lf\n\n.a\nb\n')),
      {
        signal,
      },
    );
    const log = await peerLog();
    const first = log.received.find((m) => m.mailFrom === `ok.${tag}@sender.test`)!;
    // The last line had no CRLF: the client ends it (the only change SMTP forces).
    expect(new TextDecoder().decode(bytesOf(first))).toBe(`${text}\r\n`);
    const second = log.received.find((m) => m.mailFrom === `ok.${tag2}@sender.test`)!;
    expect(new TextDecoder().decode(bytesOf(second))).toBe('Subject: lf\r\n\r\n.a\r\nb\r\n');
  });

  it('maps a refused connection to deferred 4.4.1', async () => {
    const tag = newTag();
    const result = await relayer({ port: 1 }).deliver(
      message(tag, [`ok.${tag}@x.test`], enc.encode('x\r\n')),
      { signal },
    );
    expect(result.recipients[0]).toMatchObject({
      status: 'deferred',
      diagnostic: { status: '4.4.1' },
    });
  });

  it('AUTH PLAIN and AUTH LOGIN against onAuth; a bad password defers and sends nothing', async () => {
    for (const method of ['PLAIN', 'LOGIN'] as const) {
      const tag = newTag();
      const result = await relayer({
        auth: { user: 'user', pass: 'secret', method },
        allowPlaintextAuth: true,
      }).deliver(message(tag, [`ok.${tag}@x.test`], enc.encode('a\r\n')), { signal });
      expect(result.recipients[0]!.status).toBe('delivered');
      const received = (await peerLog()).received.find(
        (m) => m.mailFrom === `ok.${tag}@sender.test`,
      );
      expect(received?.user).toBe('user');
    }
    const tag = newTag();
    const lines: string[] = [];
    const bad = await relayer({
      auth: { user: 'user', pass: 'nope' },
      allowPlaintextAuth: true,
      log: (entry) => lines.push(entry.line),
    }).deliver(message(tag, [`ok.${tag}@x.test`], enc.encode('a\r\n')), { signal });
    expect(bad.recipients[0]).toMatchObject({ status: 'deferred', diagnostic: { code: 535 } });
    expect((await peerLog()).commands.some((c) => c.includes(tag))).toBe(false);
    // Credentials never reach the log.
    expect(lines.join('\n')).not.toContain(btoa('\0user\0nope'));
  });

  it('a whole-message 5xx to the end of DATA fails every accepted recipient', async () => {
    const tag = newTag();
    const result = await relayer().deliver(
      message(
        tag,
        [`ok.${tag}@x.test`, `perm.${tag}@x.test`],
        enc.encode('a\r\n'),
        `dataperm.${tag}@s.test`,
      ),
      { signal },
    );
    expect(result.recipients.map((r) => [r.status, r.diagnostic.code])).toEqual([
      ['failed', 554],
      ['failed', 550],
    ]);
  });
});

describe('the end of a session', () => {
  async function rawSession(
    step: 'quit' | 'answer-quit' | 'closed',
    tag: string,
  ): Promise<RawSessionState> {
    const response = await fetch(
      `http://127.0.0.1:${inject('controlPort')}/raw/${step}?tag=${tag}`,
    );
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as RawSessionState;
  }

  it('resolves on the reply to the final dot; QUIT and the close follow', async () => {
    const tag = newTag();
    let resolved = false;
    // A server that holds its reply to QUIT until the test releases it.
    const smtp = relayer({ port: inject('rawPort') });
    let idle = false;
    const delivery = smtp
      .deliver(message(tag, [`ok.${tag}@x.test`], enc.encode(`Subject: ${tag}\r\n\r\nhi\r\n`)), {
        signal,
      })
      .then((result) => {
        resolved = true;
        return result;
      });
    let held: RawSessionState | undefined;
    let released: RawSessionState;
    try {
      held = await rawSession('quit', tag);
      expect(resolved).toBe(true);
      // idle() waits for the connection, which is still open while QUIT waits for its reply.
      void smtp.idle().then(() => {
        idle = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(idle).toBe(false);
    } finally {
      // Released either way, so that a failure here leaves no session behind.
      released = await rawSession('answer-quit', tag);
    }
    expect(held.commands.at(-1)).toBe('QUIT');
    expect(held.closed).toBe(false);
    // After the 221 the client closed the connection (the server never closes first).
    expect(released.closed).toBe(true);
    await smtp.idle();
    expect((await delivery).recipients).toEqual([
      expect.objectContaining({
        status: 'delivered',
        diagnostic: expect.objectContaining({ code: 250 }),
      }),
    ]);
  });

  it('a QUIT without a reply: the connection is closed once the QUIT timeout elapses', async () => {
    const tag = newTag();
    const timers = new ManualTimers(new ManualClock(T0));
    const result = await relayer({
      port: inject('rawPort'),
      timers,
      timeouts: { quit: 5000 },
    }).deliver(message(tag, [`ok.${tag}@x.test`], enc.encode(`Subject: ${tag}\r\n\r\nhi\r\n`)), {
      signal,
    });
    expect(result.recipients.map((r) => r.status)).toEqual(['delivered']);
    expect((await rawSession('quit', tag)).closed).toBe(false);
    // The QUIT reply's timer may be armed a turn of the event loop after the server read QUIT.
    for (let turn = 0; turn < 100 && timers.size === 0; turn++) await settle();
    expect(timers.size).toBe(1);
    await timers.advance(5000);
    expect(await rawSession('closed', tag)).toMatchObject({ closed: true });
    expect(timers.size).toBe(0);
  });
});

describe('abort', () => {
  it('an aborted delivery (lost lease) rejects with ABORTED and completes no transaction', async () => {
    const tag = newTag();
    const rcpt = `stallfirst.${tag}@x.test`;
    const controller = new AbortController();
    const delivery = relayer().deliver(message(tag, [rcpt], enc.encode('x\r\n')), {
      signal: controller.signal,
    });
    const stalled = await fetch(`http://127.0.0.1:${inject('controlPort')}/stalled?tag=${tag}`);
    expect(await stalled.text()).toBe('stalled');
    controller.abort();
    let caught: unknown;
    await delivery.catch((error) => {
      caught = error;
    });
    expect(isRelayError(caught, RelayErrorCode.ABORTED)).toBe(true);
    expect((await peerLog()).received.some((m) => m.rcptTo.includes(rcpt))).toBe(false);
  });
});

describe('injection', () => {
  const attempts = [
    'victim@x.test>\r\nRCPT TO:<evil@x.test',
    'victim@x.test\r\nDATA',
    'victim@x.test\nRSET',
    'victim@x.test\rQUIT',
    'vic\0tim@x.test',
    'victim@x.test> NOTIFY=NEVER',
    'victim@x.test ORCPT=rfc822;evil@x.test',
    'vic\x1btim@x.test',
    'v\u00efctim@x.test',
  ];

  it('refuses every malformed recipient before any byte is sent (no connection at all)', async () => {
    const canary = relayer({ port: inject('canaryPort') });
    for (const bad of attempts) {
      const result = await canary.deliver(message(newTag(), [bad], enc.encode('x\r\n')), {
        signal,
      });
      expect(result.recipients).toEqual([
        expect.objectContaining({
          recipient: bad,
          status: 'failed',
          diagnostic: expect.objectContaining({ status: '5.1.3' }),
        }),
      ]);
      let caught: unknown;
      await canary.send(message(newTag(), [bad], enc.encode('x\r\n'))).catch((error) => {
        caught = error;
      });
      expect(isRelayError(caught, RelayErrorCode.INVALID_ADDRESS)).toBe(true);
    }
    for (const bad of attempts) {
      const result = await canary.deliver(
        message(newTag(), ['ok@x.test'], enc.encode('x\r\n'), bad),
        { signal },
      );
      expect(result.recipients[0]).toMatchObject({
        status: 'failed',
        diagnostic: { status: '5.1.7' },
      });
    }
    const log = await peerLog('canary');
    expect(log.connections).toBe(0);
    expect(log.commands).toEqual([]);
  });

  it('with one valid and one malformed recipient, only the valid one is sent', async () => {
    const tag = newTag();
    const bad = `victim.${tag}@x.test>\r\nRCPT TO:<evil.${tag}@x.test`;
    const result = await relayer().deliver(
      message(tag, [`ok.${tag}@x.test`, bad], enc.encode('x\r\n')),
      {
        signal,
      },
    );
    expect(result.recipients.map((r) => r.status)).toEqual(['delivered', 'failed']);
    const log = await peerLog();
    expect(log.commands.filter((c) => c.includes(tag))).toEqual([
      `MAIL ok.${tag}@sender.test`,
      `RCPT ok.${tag}@x.test`,
    ]);
  });
});

describe('the relay loop in workerd', () => {
  it('4xx then 2xx: delivered exactly once, after the retry', async () => {
    const { clock, engine, queue } = loop();
    const tag = newTag();
    await enqueue(engine, {
      sender: `ok.${tag}@s.test`,
      recipients: [`tempfirst.${tag}@x.test`],
      timestamp: T0,
    });
    const first = await queue.runOnce();
    expect(first.messages[0]).toMatchObject({ outcome: 'deferred', retryAt: T0 + 300_000 });
    expect((await dump(engine))[0]!.meta.last_error).toMatch(/^451 4\.\d\.\d Greylisted/);
    clock.advance(300_000);
    const second = await queue.runOnce();
    expect(second.messages[0]).toMatchObject({
      outcome: 'completed',
      delivered: [`tempfirst.${tag}@x.test`],
    });
    const received = (await peerLog()).received.filter((m) =>
      m.rcptTo.includes(`tempfirst.${tag}@x.test`),
    );
    expect(received).toHaveLength(1);
    expect(await dump(engine)).toEqual([]);
  });

  it('5xx: a DSN replaces the message, and is then sent from <> to the sender', async () => {
    const { engine, queue } = loop();
    const tag = newTag();
    const id = await enqueue(engine, {
      sender: `ok.${tag}@s.test`,
      recipients: [`perm.${tag}@x.test`],
      timestamp: T0,
    });
    const first = await queue.runOnce();
    expect(first.messages[0]).toMatchObject({
      outcome: 'completed',
      failed: [`perm.${tag}@x.test`],
    });
    const [bounce] = await dump(engine);
    expect(bounce!.meta).toMatchObject({
      sender: '',
      recipients: [`ok.${tag}@s.test`],
      bounce_of: id,
    });
    const dsn = await parseDsn(bounce!.contents!);
    expect(dsn.perRecipient).toEqual([
      expect.objectContaining({
        'final-recipient': `rfc822; perm.${tag}@x.test`,
        action: 'failed',
        status: '5.1.1',
        'remote-mta': 'dns; peer.test',
        'diagnostic-code': 'smtp; 550 5.1.1 No such user here',
      }),
    ]);

    const second = await queue.runOnce();
    expect(second.messages[0]).toMatchObject({
      outcome: 'completed',
      delivered: [`ok.${tag}@s.test`],
    });
    const delivered = (await peerLog()).received.filter((m) =>
      m.rcptTo.includes(`ok.${tag}@s.test`),
    );
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.mailFrom).toBe('');
    expect(bytesOf(delivered[0]!)).toEqual(bounce!.contents);
  });

  it('mixed replies: the accepted recipient gets exactly one copy across all attempts', async () => {
    const { clock, engine, queue } = loop();
    const tag = newTag();
    const ok = `ok.${tag}@x.test`;
    const later = `tempfirst.${tag}@x.test`;
    const never = `perm.${tag}@x.test`;
    const id = await enqueue(engine, {
      sender: `ok.${tag}@s.test`,
      recipients: [ok, later, never],
      timestamp: T0,
    });
    const first = await queue.runOnce();
    expect(first.messages[0]).toMatchObject({
      outcome: 'deferred',
      delivered: [ok],
      deferred: [later],
      failed: [never],
    });
    clock.advance(300_000);
    const reports = await queue.drain(5);
    expect(reports.flatMap((r) => r.messages).find((m) => m.id === id)).toMatchObject({
      outcome: 'completed',
      delivered: [later],
    });
    const log = await peerLog();
    const copies = (rcpt: string) => log.received.filter((m) => m.rcptTo.includes(rcpt)).length;
    expect(copies(ok)).toBe(1);
    expect(copies(later)).toBe(1);
    expect(copies(never)).toBe(0);
    // perm.* was offered once, refused, and never offered again.
    expect(log.commands.filter((c) => c === `RCPT ${never}`)).toHaveLength(1);
    // The sender got one DSN.
    expect(copies(`ok.${tag}@s.test`)).toBe(1);
  });

  it('a server that stops answering: timeout, deferred, delivered once on the retry', async () => {
    const { clock, timers, engine, queue } = loop({ timeouts: { command: 60_000 } });
    const tag = newTag();
    const rcpt = `stallfirst.${tag}@x.test`;
    await enqueue(engine, { sender: `ok.${tag}@s.test`, recipients: [rcpt], timestamp: T0 });
    const run = queue.runOnce();
    // Wait (on an event, not a clock) until the server is sitting on our RCPT...
    const stalled = await fetch(`http://127.0.0.1:${inject('controlPort')}/stalled?tag=${tag}`);
    expect(await stalled.text()).toBe('stalled');
    // ...then let the command timeout elapse on the injected clock.
    await timers.advance(60_000);
    const first = await run;
    expect(first.messages[0]).toMatchObject({ outcome: 'deferred', deferred: [rcpt] });
    expect((await dump(engine))[0]!.meta.last_error).toMatch(
      /^4\.4\.2 RCPT: no progress within 60000 ms/,
    );
    clock.set(first.messages[0]!.retryAt!);
    const second = await queue.runOnce();
    expect(second.messages[0]).toMatchObject({ outcome: 'completed', delivered: [rcpt] });
    const received = (await peerLog()).received.filter((m) => m.rcptTo.includes(rcpt));
    expect(received).toHaveLength(1);
  });

  it('4xx to the end of DATA, then 2xx: one copy', async () => {
    const { clock, engine, queue } = loop();
    const tag = newTag();
    const sender = `datatempfirst.${tag}@s.test`;
    await enqueue(engine, { sender, recipients: [`ok.${tag}@x.test`], timestamp: T0 });
    expect((await queue.runOnce()).messages[0]!.outcome).toBe('deferred');
    clock.advance(300_000);
    expect((await queue.runOnce()).messages[0]!.outcome).toBe('completed');
    expect((await peerLog()).received.filter((m) => m.mailFrom === sender)).toHaveLength(1);
  });
});
