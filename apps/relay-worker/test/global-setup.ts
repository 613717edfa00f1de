/// <reference path="./provided.d.ts" />
/**
 * Starts the smtp-sink the Worker delivers to, on the port vitest.config.ts gave the Worker.
 * Scripted recipients: `reject…@` is refused for good (550); `tempfail…@` is refused once (451)
 * and accepted from the second attempt on; `stall…@` gets no answer to RCPT until a test
 * answers it through the stall control server (`GET /stalled` lists the waiting addresses,
 * `POST /answer?address=…&code=250|451` answers one), so a test can act while an SMTP
 * transaction is running.
 *
 * Also acme's webhook receiver, a plain HTTP server: `POST /hook/acme` records each delivery
 * (headers and the exact body) and answers 200, or 503 while the receiver is "down"
 * (`POST /mode?up=0|1`); `GET /deliveries` lists what it accepted, `GET /refused` counts what
 * it refused.
 *
 * And two smarthosts that can not take mail, for failover: on `busyPort` every connection gets
 * `421` as its greeting, on `refusingPort` `554`, and the connection is closed. Each counts its
 * connections, read with `GET http://127.0.0.1:<stallPort>/greeted?port=<port>`.
 */
import { createServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';
import { type RcptRefusal, startSink } from '@mailspool/smtp-sink';
import type { TestProject } from 'vitest/node';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { smtpPort, sinkHttpPort, stallPort, webhookPort, busyPort, refusingPort } =
    project.getProvidedContext();
  const greeted = new Map<number, number>();
  const greeters = await Promise.all(
    [
      [busyPort, '421 4.3.2 busy.test too many connections, try later'],
      [refusingPort, '554 5.7.1 refusing.test no service for you'],
    ].map(([port, greeting]) => greeter(port as number, greeting as string, greeted)),
  );
  const stalled = new Map<string, (refusal: RcptRefusal) => void>();
  const sink = await startSink({
    smtpPort,
    httpPort: sinkHttpPort,
    log: () => {},
    onRcpt: (address, attempt) => {
      if (address.startsWith('reject')) return { code: 550, message: '5.1.1 no such user here' };
      if (address.startsWith('tempfail') && attempt === 1)
        return { code: 451, message: '4.3.0 try again later' };
      if (address.startsWith('stall') && attempt === 1)
        return new Promise<RcptRefusal>((resolve) => stalled.set(address, resolve));
      return undefined;
    },
  });
  const control = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    if (req.method === 'GET' && url.pathname === '/greeted') {
      res.end(
        JSON.stringify({ connections: greeted.get(Number(url.searchParams.get('port'))) ?? 0 }),
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === '/stalled') {
      res.end(JSON.stringify([...stalled.keys()]));
      return;
    }
    const address = url.searchParams.get('address') ?? '';
    const answer = stalled.get(address);
    if (req.method === 'POST' && url.pathname === '/answer' && answer) {
      stalled.delete(address);
      answer(
        url.searchParams.get('code') === '451'
          ? { code: 451, message: '4.3.0 stalled, then deferred' }
          : undefined,
      );
      res.end('{}');
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((resolve) => control.listen(stallPort, '127.0.0.1', resolve));

  const deliveries: { headers: Record<string, string>; body: string }[] = [];
  let up = true;
  let refused = 0;
  const receiver = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://receiver');
    if (req.method === 'POST' && url.pathname === '/mode') {
      up = url.searchParams.get('up') === '1';
      res.end('{}');
      return;
    }
    if (req.method === 'GET' && url.pathname === '/deliveries') {
      res.end(JSON.stringify(deliveries));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/refused') {
      res.end(JSON.stringify({ refused }));
      return;
    }
    if (req.method !== 'POST' || url.pathname !== '/hook/acme') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= 1024 * 1024) chunks.push(chunk);
    });
    req.on('end', () => {
      if (!up || size > 1024 * 1024) {
        refused++;
        res.statusCode = 503;
        res.end();
        return;
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) headers[name] = String(value);
      deliveries.push({ headers, body: Buffer.concat(chunks).toString('utf8') });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(webhookPort, '127.0.0.1', resolve));
  return async () => {
    receiver.close();
    for (const answer of stalled.values()) answer({ code: 421, message: '4.3.2 shutting down' });
    control.close();
    for (const server of greeters) server.close();
    await sink.close();
  };
}

/** A smarthost that greets every connection with `greeting` and hangs up, counting connections. */
async function greeter(
  port: number,
  greeting: string,
  counts: Map<number, number>,
): Promise<Server> {
  const server = createTcpServer((socket) => {
    counts.set(port, (counts.get(port) ?? 0) + 1);
    socket.on('error', () => {});
    socket.end(`${greeting}\r\n`);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}
