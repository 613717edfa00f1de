/**
 * The relay delivery table's own checks (src/do/mail.ts) and its SMTP receiver's gate
 * (src/do/smtp-receiver.ts): a run that lost, doubled or changed a mail, or got one that is not
 * its own, must fail, and a closed gate must hold the greeting until it opens.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BODY_BYTES,
  DeliveryTally,
  makeMail,
  markOf,
  RECIPIENTS,
  type Received,
  SENDER,
} from '../src/do/mail.js';
import { type Receiver, startReceiver } from '../src/do/smtp-receiver.js';

const TAG = '0a1b2c3d';

/** A mail as the relay delivers it: its `Received:` trace header, then the bytes submitted. */
const TRACE =
  'Received: by relay.bench.invalid (mailspool relay, tenant bench) with HTTPS id s0.x;\r\n\tTue, 01 Dec 2026 16:30:05 +0000\r\n';

function received(raw: Uint8Array, at = 1): Received {
  const delivered = Buffer.concat([Buffer.from(TRACE, 'latin1'), Buffer.from(raw)]);
  return { raw: delivered, mailFrom: SENDER, rcptTo: [...RECIPIENTS].reverse(), at };
}

/** A tally of 4 mails on 2 shards (ids s0, s1, s0, s1) with every mail delivered once. */
function fullRun() {
  const mails = Array.from({ length: 4 }, (_, i) => makeMail(TAG, i));
  const tally = new DeliveryTally(TAG, mails, 2);
  mails.forEach((_, i) => {
    tally.stored(i, `s${i % 2}.id${i}`);
  });
  return { mails, tally };
}

describe('makeMail', () => {
  it('has a 10 KiB body of SMTP-safe lines and carries its tag and index', () => {
    const raw = makeMail(TAG, 7);
    const text = Buffer.from(raw).toString('latin1');
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    expect(body.length).toBe(BODY_BYTES);
    expect(body.split('\r\n').every((line) => line.length <= 78 && !line.startsWith('.'))).toBe(
      true,
    );
    expect(text).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    expect(markOf(raw)).toEqual([TAG, 7]);
    expect(markOf(new TextEncoder().encode('Subject: hi\r\n\r\nnot ours\r\n'))).toBeUndefined();
  });
});

describe('DeliveryTally', () => {
  it('accepts every mail once, byte for byte, and counts them per shard', async () => {
    const { mails, tally } = fullRun();
    mails.forEach((raw, i) => {
      tally.accept(received(raw, 10 + i));
    });
    await tally.done(1000);
    expect(tally.check()).toMatchObject({
      mails: 4,
      bytes: mails.reduce((sum, m) => sum + m.byteLength, 0),
      perShard: [2, 2],
      lastAt: [12, 13],
      doneAt: 13,
    });
  });

  it('fails a run with a mail missing, doubled, changed, foreign or misaddressed', async () => {
    const missing = fullRun();
    for (const raw of missing.mails.slice(1)) missing.tally.accept(received(raw));
    await expect(missing.tally.done(100)).rejects.toThrow(/3 of 4 mails/);
    expect(() => missing.tally.check()).toThrow(/mail 0 never arrived/);

    const doubled = fullRun();
    doubled.tally.accept(received(doubled.mails[0]!));
    doubled.tally.accept(received(doubled.mails[0]!));
    await expect(doubled.tally.done(1000)).rejects.toThrow(/mail 0 received twice/);

    const changed = fullRun();
    changed.mails.forEach((raw, i) => {
      const copy = Buffer.from(raw);
      if (i === 2) copy[copy.length - 3] = copy[copy.length - 3]! ^ 1;
      changed.tally.accept(received(copy));
    });
    expect(() => changed.tally.check()).toThrow(/mail 2: bytes differ/);

    const foreign = fullRun();
    foreign.tally.accept(received(makeMail('ffffffff', 0)));
    await expect(foreign.tally.done(1000)).rejects.toThrow(/another run/);

    const envelope = fullRun();
    envelope.mails.forEach((raw, i) => {
      envelope.tally.accept(
        i === 1 ? { ...received(raw), rcptTo: [RECIPIENTS[0]] } : received(raw),
      );
    });
    expect(() => envelope.tally.check()).toThrow(/mail 1: RCPT TO/);
  });

  it('refuses an id that names no shard, or one the relay does not have', () => {
    const tally = new DeliveryTally(TAG, [makeMail(TAG, 0), makeMail(TAG, 1)], 2);
    expect(() => tally.stored(0, 'abc')).toThrow(/names no shard/);
    expect(() => tally.stored(0, 's2.x')).toThrow(/shard 2 of 2/);
  });
});

describe('the SMTP receiver', () => {
  let receiver: Receiver | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    await receiver?.stop();
    receiver = undefined;
  });

  /** A raw SMTP client: `next()` resolves to the next reply text. */
  async function client(port: number) {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let buffered = '';
    let wake: (() => void) | undefined;
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      wake?.();
    });
    const next = async (timeoutMs = 2000): Promise<string | undefined> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const end = /^\d{3} .*\r\n/m.exec(buffered);
        if (end) {
          const reply = buffered.slice(0, end.index + end[0].length);
          buffered = buffered.slice(reply.length);
          return reply;
        }
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, left);
        });
      }
    };
    const command = (line: string) => {
      socket.write(`${line}\r\n`);
      return next();
    };
    await new Promise((resolve) => socket.once('connect', resolve));
    return { next, command, socket };
  }

  it('holds the greeting while the gate is closed, then takes mail to the current sink', async () => {
    receiver = await startReceiver();
    const got: Received[] = [];
    receiver.sink = (mail) => got.push(mail);
    receiver.close();
    const c = await client(receiver.port);
    expect(await c.next(200)).toBeUndefined();
    receiver.open();
    expect(await c.next()).toMatch(/^220 /);
    expect(await c.command('EHLO bench.test')).toMatch(/^250 /m);
    expect(await c.command(`MAIL FROM:<${SENDER}>`)).toMatch(/^250 /);
    for (const rcpt of RECIPIENTS) expect(await c.command(`RCPT TO:<${rcpt}>`)).toMatch(/^250 /);
    expect(await c.command('DATA')).toMatch(/^354 /);
    const raw = makeMail(TAG, 3);
    c.socket.write(raw);
    expect(await c.command('.')).toMatch(/^250 /);
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]!.raw).equals(Buffer.from(raw))).toBe(true);
    expect(got[0]).toMatchObject({ mailFrom: SENDER, rcptTo: [...RECIPIENTS] });
    expect(receiver.stats).toMatchObject({ connections: 1, peak: 1 });
    expect(receiver.strays).toEqual([]);
  });
});
