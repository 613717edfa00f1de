/**
 * The delivery table's smarthost: a real SMTP server (smtp-server, the one @mailspool/smtp-sink
 * is built on) on 127.0.0.1, with nothing but what the bench needs. It keeps each mail's DATA
 * bytes as received (no MIME parsing, no base64 copy: the Node process shares the 2 cores with
 * workerd) and hands it to the current run's tally.
 *
 * It has a **gate**: while closed, it accepts TCP connections but holds their 220 greeting (the
 * relay waits up to 5 minutes for it), so a run can queue all its mail on the shards before any
 * of it can be delivered; opening the gate greets every waiting connection at once.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { Received } from './mail.js';

export interface Receiver {
  readonly port: number;
  /** Where received mail goes (the current run's tally); `undefined` counts it as stray. */
  sink: ((mail: Received) => void) | undefined;
  /** Mail received while no run was listening, and SMTP errors seen (both fail the next run). */
  readonly strays: string[];
  /** Holds new connections' greetings until `open()`. */
  close(): void;
  /** Greets every held connection, and every new one from now on. */
  open(): void;
  /** Connections accepted since the last `resetStats()`, and the most open at once. */
  readonly stats: { connections: number; peak: number };
  resetStats(): void;
  stop(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  let gateOpen = true;
  let held: Array<() => void> = [];
  let open = 0;
  let sink: ((mail: Received) => void) | undefined;
  const stats = { connections: 0, peak: 0 };
  const strays: string[] = [];

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    // A connection held at the gate is idle for as long as the gate stays closed (the priority
    // table's backlog is queued behind it): smtp-server's default of 60 s would answer it `421`.
    // The relay's own greeting timeout (5 min) stays the bound.
    socketTimeout: 10 * 60_000,
    banner: 'mailspool bench receiver',
    logger: false,
    size: 1024 * 1024,
    onConnect(_session, callback) {
      stats.connections++;
      open++;
      stats.peak = Math.max(stats.peak, open);
      if (gateOpen) callback();
      else held.push(() => callback());
    },
    onClose() {
      open--;
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) => strays.push(`DATA stream: ${error.message}`));
      stream.on('end', () => {
        const mail: Received = {
          raw: Buffer.concat(chunks),
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          at: performance.now(),
        };
        if (sink) sink(mail);
        else strays.push(`a mail outside any run (${mail.raw.byteLength} bytes)`);
        callback(null, 'Ok: received');
      });
    },
  });
  // smtp-server re-emits every connection's socket error here; unhandled, one would stop Node.
  server.on('error', (error: Error) => strays.push(`SMTP server: ${error.message}`));
  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve((server.server.address() as AddressInfo).port);
    });
  });

  const openGate = () => {
    gateOpen = true;
    const waiting = held;
    held = [];
    for (const greet of waiting) greet();
  };
  return {
    port,
    get sink() {
      return sink;
    },
    set sink(next) {
      sink = next;
    },
    strays,
    close() {
      gateOpen = false;
    },
    open: openGate,
    stats,
    resetStats() {
      stats.connections = 0;
      stats.peak = open;
    },
    async stop() {
      openGate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
