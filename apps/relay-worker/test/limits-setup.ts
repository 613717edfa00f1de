/// <reference path="./provided.d.ts" />
/**
 * The smarthost of the limits tests (test/limits/): the SMTP recorder of test/node on
 * 127.0.0.1, enforcing 2 connections (`421` beyond them), with an HTTP control server:
 * `GET /state` answers its counters and the deliveries in the order they were accepted,
 * `POST /storm?on=1|0` answers `421` to every connection (or stops), `POST /gate?open=1|0`
 * holds every greeting (or lets them go), `POST /reset` forgets the peak and the counters.
 */
import { createServer } from 'node:http';
import type { TestProject } from 'vitest/node';
import { SmtpRecorder } from './node/smtp-recorder.js';

/** What the server enforces: the relay under test is configured with the same limit. */
export const SERVER_MAX_CONNECTIONS = 2;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { limitedPort, limitedControlPort } = project.getProvidedContext();
  const recorder = new SmtpRecorder({ maxConnections: SERVER_MAX_CONNECTIONS });
  await recorder.start(limitedPort);
  const control = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    if (req.method === 'GET' && url.pathname === '/state') {
      res.end(
        JSON.stringify({
          peak: recorder.peak,
          active: recorder.active,
          refused: recorder.refused,
          connections: recorder.connections,
          deliveries: recorder.deliveries.map(({ seq, marker, connection }) => ({
            seq,
            marker,
            connection,
          })),
        }),
      );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/storm') {
      recorder.storm = url.searchParams.get('on') === '1';
      res.end('{}');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/gate') {
      recorder.setGate(url.searchParams.get('open') === '1');
      res.end('{}');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/reset') {
      recorder.resetPeak();
      recorder.refused = 0;
      res.end('{}');
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((resolve) => control.listen(limitedControlPort, '127.0.0.1', resolve));
  return async () => {
    recorder.setGate(true);
    control.close();
    await recorder.stop();
  };
}
