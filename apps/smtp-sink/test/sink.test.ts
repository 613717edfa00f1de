import { once } from 'node:events';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sink, startSink } from '../src/sink.js';

let sink: Sink | undefined;
afterEach(async () => {
  await sink?.close();
  sink = undefined;
});

describe('smtp-sink', () => {
  it('records the envelope and the exact bytes of a real SMTP delivery and lists them over HTTP', async () => {
    const lines: string[] = [];
    sink = await startSink({ smtpPort: 0, httpPort: 0, log: (line) => lines.push(line) });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: sink.smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    const raw =
      'From: a@example.com\r\nTo: b@example.org\r\nSubject: Hello sink\r\n\r\n.leading dot\r\nbody\r\n';
    await transport.sendMail({
      envelope: { from: 'a@example.com', to: ['b@example.org', 'c@example.net'] },
      raw,
    });
    const [mail] = await sink.waitFor(1, 5000);
    expect(mail?.mailFrom).toBe('a@example.com');
    expect(mail?.rcptTo).toEqual(['b@example.org', 'c@example.net']);
    expect(mail?.subject).toBe('Hello sink');
    expect(Buffer.from(mail!.rawBase64, 'base64').toString()).toBe(raw);
    expect(lines.join('\n')).toContain('"Hello sink"');

    const listed = (await (
      await fetch(`http://127.0.0.1:${sink.httpPort}/api/messages`)
    ).json()) as unknown[];
    expect(listed).toHaveLength(1);
    const html = await (await fetch(`http://127.0.0.1:${sink.httpPort}/`)).text();
    expect(html).toContain('Hello sink');
  });

  it('requires AUTH when configured and refuses wrong credentials', async () => {
    sink = await startSink({
      smtpPort: 0,
      httpPort: 0,
      auth: { user: 'relay', pass: 's3cret' },
      log: () => {},
    });
    const send = (pass: string) =>
      nodemailer
        .createTransport({
          host: '127.0.0.1',
          port: sink!.smtpPort,
          secure: false,
          ignoreTLS: true,
          auth: { user: 'relay', pass },
        })
        .sendMail({
          envelope: { from: 'a@example.com', to: ['b@example.org'] },
          raw: 'Subject: x\r\n\r\ny\r\n',
        });
    await expect(send('wrong')).rejects.toThrow(/535|auth/i);
    expect(sink.messages).toHaveLength(0);
    await send('s3cret');
    expect((await sink.waitFor(1, 5000))[0]?.user).toBe('relay');
  });

  it('refuses messages over the size cap and protects the clear endpoint with the token', async () => {
    sink = await startSink({
      smtpPort: 0,
      httpPort: 0,
      maxBytes: 1000,
      apiToken: 'tok',
      log: () => {},
    });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: sink.smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    await expect(
      transport.sendMail({
        envelope: { from: 'a@example.com', to: ['b@example.org'] },
        raw: `Subject: big\r\n\r\n${'x'.repeat(5000)}\r\n`,
      }),
    ).rejects.toThrow(/552|size|big/i);
    expect(sink.messages).toHaveLength(0);
    await transport.sendMail({
      envelope: { from: 'a@example.com', to: ['b@example.org'] },
      raw: 'Subject: ok\r\n\r\nok\r\n',
    });
    await sink.waitFor(1, 5000);
    const base = `http://127.0.0.1:${sink.httpPort}/api/messages`;
    expect((await fetch(base, { method: 'DELETE' })).status).toBe(401);
    expect(sink.messages).toHaveLength(1);
    expect(
      (await fetch(base, { method: 'DELETE', headers: { authorization: 'Bearer tok' } })).status,
    ).toBe(200);
    expect(sink.messages).toHaveLength(0);
  });
});

describe('smtp-sink scripted recipients', () => {
  it('refuses recipients as scripted, per attempt, and records only accepted ones', async () => {
    sink = await startSink({
      smtpPort: 0,
      httpPort: 0,
      log: () => {},
      onRcpt: (address, attempt) =>
        address.startsWith('later') && attempt === 1
          ? { code: 451, message: '4.3.0 try later' }
          : undefined,
    });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: sink.smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    const mail = {
      envelope: { from: 'a@example.com', to: ['later@example.org'] },
      raw: 'Subject: x\r\n\r\ny\r\n',
    };
    await expect(transport.sendMail(mail)).rejects.toThrow(/451|try later/);
    expect(sink.messages).toHaveLength(0);
    await transport.sendMail(mail);
    expect((await sink.waitFor(1, 5000))[0]?.rcptTo).toEqual(['later@example.org']);
  });
});

/** Collects the sink's log lines and lets a test wait for one (bounded, no polling interval). */
function logCollector() {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  return {
    lines,
    log: (line: string) => {
      lines.push(line);
      for (const wake of [...waiters]) wake();
    },
    until(predicate: (lines: readonly string[]) => boolean, timeoutMs = 5000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(lines)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`log condition not met within ${timeoutMs} ms: ${lines.join(' | ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/** A raw SMTP client socket: `reply()` resolves with the next complete reply's code. */
async function rawClient(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  let buffered = '';
  const waiting: ((code: number) => void)[] = [];
  const replies: number[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let lf = buffered.indexOf('\n'); lf >= 0; lf = buffered.indexOf('\n')) {
      const line = buffered.slice(0, lf);
      buffered = buffered.slice(lf + 1);
      // The last line of a reply is `NNN text`; continuation lines are `NNN-text`.
      if (line[3] === '-') continue;
      const code = Number(line.slice(0, 3));
      const waiter = waiting.shift();
      if (waiter) waiter(code);
      else replies.push(code);
    }
  });
  // The reset is ours: the error the socket may report afterwards is expected.
  socket.on('error', () => undefined);
  return {
    socket,
    reply: () =>
      new Promise<number>((resolve) => {
        const code = replies.shift();
        if (code === undefined) waiting.push(resolve);
        else resolve(code);
      }),
  };
}

describe('smtp-sink and broken clients', () => {
  it('keeps serving after clients reset their connections in the middle of a transaction', async () => {
    const collector = logCollector();
    sink = await startSink({ smtpPort: 0, httpPort: 0, log: collector.log });
    const resets = (lines: readonly string[]) => lines.filter((l) => l.includes('ECONNRESET'));
    for (let i = 1; i <= 3; i++) {
      const client = await rawClient(sink.smtpPort);
      expect(await client.reply()).toBe(220);
      client.socket.write('EHLO reset.test\r\n');
      expect(await client.reply()).toBe(250);
      // MAIL opens a transaction; half a RCPT follows in the same write, so once the 250 has
      // been read the server holds the partial command.
      client.socket.write(`MAIL FROM:<reset${i}@example.com>\r\nRCPT TO:<half`);
      expect(await client.reply()).toBe(250);
      // A TCP RST instead of a FIN: the server's read fails with ECONNRESET.
      client.socket.resetAndDestroy();
      await collector.until((lines) => resets(lines).length === i);
    }

    // Once more in the middle of DATA: the partial message is dropped, not recorded.
    const client = await rawClient(sink.smtpPort);
    expect(await client.reply()).toBe(220);
    client.socket.write('EHLO reset.test\r\n');
    expect(await client.reply()).toBe(250);
    client.socket.write('MAIL FROM:<middata@example.com>\r\n');
    expect(await client.reply()).toBe(250);
    client.socket.write('RCPT TO:<b@example.org>\r\n');
    expect(await client.reply()).toBe(250);
    client.socket.write('DATA\r\nSubject: cut short\r\n\r\nhalf a bo');
    expect(await client.reply()).toBe(354);
    client.socket.resetAndDestroy();
    await collector.until(
      (lines) => resets(lines).length === 4 && lines.some((l) => l.includes('dropped')),
    );
    expect(sink.messages).toHaveLength(0);

    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: sink.smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    await transport.sendMail({
      envelope: { from: 'a@example.com', to: ['b@example.org'] },
      raw: 'Subject: after resets\r\n\r\nstill here\r\n',
    });
    const [mail] = await sink.waitFor(1, 5000);
    expect(mail?.subject).toBe('after resets');
    expect(sink.messages).toHaveLength(1);
    expect(resets(collector.lines)).toHaveLength(4);
    expect(resets(collector.lines)[0]).toMatch(/^smtp-sink: connection from 127\.0\.0\.1: /);
  }, 15_000);
});
