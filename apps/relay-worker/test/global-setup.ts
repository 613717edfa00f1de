/// <reference path="./provided.d.ts" />
/**
 * Starts the smtp-sink the Worker delivers to, on the port vitest.config.ts gave the Worker.
 * Scripted recipients: `reject…@` is refused for good (550); `tempfail…@` is refused once (451)
 * and accepted from the second attempt on; `stall…@` gets no answer to RCPT until a test
 * answers it through the stall control server (`GET /stalled` lists the waiting addresses,
 * `POST /answer?address=…&code=250|451` answers one), so a test can act while an SMTP
 * transaction is running.
 */
import { createServer } from 'node:http';
import { type RcptRefusal, startSink } from '@mailspool/smtp-sink';
import type { TestProject } from 'vitest/node';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { smtpPort, sinkHttpPort, stallPort } = project.getProvidedContext();
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
  return async () => {
    for (const answer of stalled.values()) answer({ code: 421, message: '4.3.2 shutting down' });
    control.close();
    await sink.close();
  };
}
