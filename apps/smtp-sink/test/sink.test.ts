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
