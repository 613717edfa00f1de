/**
 * A small SMTP server for the fault test (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET,
 * NOOP, QUIT; no extensions that change the exchange). It accepts every message and records,
 * per message, the moment its final 250 reply was written: what the relay's crash window is
 * measured against. Unlike smtp-sink it has nothing that a client's connection reset can crash,
 * and it can be stopped (connections refused) and started again on the same port.
 *
 * For the limits tests it can also enforce a connection limit (a connection beyond
 * `maxConnections` open sessions gets `421 4.7.0 too many connections` and is closed), answer
 * `421` to every connection (`storm`), and hold every greeting while its gate is closed. It
 * counts the sessions open at once (from accept to QUIT or close) and their peak.
 */
import { createServer, type Server, type Socket } from 'node:net';

/** One message as accepted. */
export interface RecordedDelivery {
  /** 1, 2, 3… in order of the 250 replies. */
  readonly seq: number;
  /** The marker of the message (from `Subject: fault <marker>`), or '' when it has none. */
  readonly marker: string;
  /** When the final 250 reply was written (epoch ms). */
  readonly at: number;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly bytes: number;
  /** The connection it came on (1, 2, 3… per connection accepted). */
  readonly connection: number;
}

const MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_LINE = 4096;
const SUBJECT = /^Subject: fault (\S+)\r?$/im;

export interface SmtpRecorderOptions {
  /** Sessions open at once beyond which a connection is refused with 421 (default: no limit). */
  readonly maxConnections?: number;
}

export class SmtpRecorder {
  /** Every connection is answered `421` and closed while this is set. */
  storm = false;
  /** Connections answered `421` (over the limit, or in a storm). */
  refused = 0;
  /** The most sessions open at once since the last {@link SmtpRecorder.resetPeak}. */
  peak = 0;
  #active = 0;
  #gateOpen = true;
  readonly #held: (() => void)[] = [];
  readonly #maxConnections: number;

  constructor(options: SmtpRecorderOptions = {}) {
    this.#maxConnections = options.maxConnections ?? Number.POSITIVE_INFINITY;
  }

  /** Sessions open now: accepted, not yet at QUIT or closed. */
  get active(): number {
    return this.#active;
  }

  resetPeak(): void {
    this.peak = this.#active;
  }

  /** Closed: greetings wait (connections are accepted and held); open: they go out. */
  setGate(open: boolean): void {
    this.#gateOpen = open;
    if (open) for (const greet of this.#held.splice(0)) greet();
  }

  readonly deliveries: RecordedDelivery[] = [];
  #server: Server | undefined;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  /** Connections in a mail transaction (after MAIL FROM, before its outcome). */
  #inTransaction = 0;
  #connections = 0;
  readonly #listeners = new Set<(delivery: RecordedDelivery) => void>();

  get port(): number {
    return this.#port;
  }

  get listening(): boolean {
    return this.#server !== undefined;
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /** Connections in a mail transaction now (MAIL FROM seen, no final reply yet). */
  get inTransaction(): number {
    return this.#inTransaction;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** Calls `listener` with every delivery; returns the unsubscribe function. */
  onDelivery(listener: (delivery: RecordedDelivery) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves true once `test()` holds after a delivery (or at once), false after `timeoutMs`. */
  waitUntil(test: () => boolean, timeoutMs: number): Promise<boolean> {
    if (test()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        unsubscribe();
        resolve(value);
      };
      const timer = setTimeout(() => done(test()), timeoutMs);
      const unsubscribe = this.onDelivery(() => {
        if (test()) done(true);
      });
    });
  }

  /** Listens on 127.0.0.1:`port` (0: a free one the first time; afterwards the same one). */
  async start(port = this.#port): Promise<number> {
    if (this.#server) return this.#port;
    const server = createServer((socket) => this.#serve(socket));
    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.#port = typeof address === 'object' && address ? address.port : port;
    this.#server = server;
    return this.#port;
  }

  /** Stops listening and drops every open connection (the smarthost is down). */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #serve(socket: Socket): void {
    const connection = ++this.#connections;
    this.#sockets.add(socket);
    this.#active++;
    this.peak = Math.max(this.peak, this.#active);
    let ended = false;
    const end = () => {
      if (!ended) this.#active--;
      ended = true;
    };
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    let buffer = '';
    let mode: 'command' | 'data' = 'command';
    let mailFrom: string | undefined;
    let rcptTo: string[] = [];
    let inTransaction = false;
    const setTransaction = (value: boolean) => {
      if (value !== inTransaction) this.#inTransaction += value ? 1 : -1;
      inTransaction = value;
    };
    const reply = (text: string) => {
      if (!socket.destroyed) socket.write(`${text}\r\n`);
    };
    const reset = () => {
      mailFrom = undefined;
      rcptTo = [];
      setTransaction(false);
    };
    const accept = (data: string) => {
      const body = data.replace(/^\.\./gm, '.');
      const headerEnd = body.indexOf('\r\n\r\n');
      const marker = SUBJECT.exec(headerEnd < 0 ? body : body.slice(0, headerEnd))?.[1] ?? '';
      const delivery: RecordedDelivery = {
        seq: this.deliveries.length + 1,
        marker,
        at: Date.now(),
        mailFrom: mailFrom ?? '',
        rcptTo,
        bytes: Buffer.byteLength(body, 'latin1'),
        connection,
      };
      this.deliveries.push(delivery);
      reply(`250 2.0.0 Ok: queued as rec-${delivery.seq}`);
      reset();
      for (const listener of [...this.#listeners]) listener(delivery);
    };
    const command = (line: string) => {
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') reply('250-fault-recorder\r\n250-8BITMIME\r\n250 SIZE 1048576');
      else if (verb === 'HELO') reply('250 fault-recorder');
      else if (verb === 'MAIL') {
        const match = /^MAIL FROM:\s*<([^>]*)>/i.exec(line);
        if (!match) return reply('501 5.5.4 syntax: MAIL FROM:<address>');
        reset();
        mailFrom = match[1]!;
        setTransaction(true);
        reply('250 2.1.0 Ok');
      } else if (verb === 'RCPT') {
        const match = /^RCPT TO:\s*<([^>]+)>/i.exec(line);
        if (mailFrom === undefined) return reply('503 5.5.1 MAIL first');
        if (!match) return reply('501 5.5.4 syntax: RCPT TO:<address>');
        rcptTo.push(match[1]!);
        reply('250 2.1.5 Ok');
      } else if (verb === 'DATA') {
        if (mailFrom === undefined || rcptTo.length === 0) return reply('503 5.5.1 RCPT first');
        mode = 'data';
        reply('354 End data with <CR><LF>.<CR><LF>');
      } else if (verb === 'RSET') {
        reset();
        reply('250 2.0.0 Ok');
      } else if (verb === 'NOOP') reply('250 2.0.0 Ok');
      else if (verb === 'QUIT') {
        end();
        reply('221 2.0.0 Bye');
        socket.end();
      } else reply('502 5.5.2 command not implemented');
    };
    const pump = () => {
      for (;;) {
        if (mode === 'data') {
          const end = buffer.startsWith('.\r\n') ? -2 : buffer.indexOf('\r\n.\r\n');
          if (end === -1) {
            if (buffer.length > MAX_MESSAGE_BYTES) {
              reply('552 5.3.4 message too big');
              socket.destroy();
            }
            return;
          }
          const data = buffer.slice(0, end + 2);
          buffer = buffer.slice(end + 5);
          mode = 'command';
          accept(data);
        } else {
          const end = buffer.indexOf('\r\n');
          if (end === -1) {
            if (buffer.length > MAX_LINE) socket.destroy();
            return;
          }
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          command(line);
        }
      }
    };
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      pump();
    });
    // A client that dies (the relay killed mid-session) resets the connection: not our failure.
    socket.on('error', () => {});
    socket.on('close', () => {
      end();
      setTransaction(false);
      this.#sockets.delete(socket);
    });
    if (this.storm || this.#active > this.#maxConnections) {
      this.refused++;
      reply('421 4.7.0 too many connections, try again later');
      socket.end();
      return;
    }
    const greet = () => reply('220 fault-recorder ESMTP');
    if (this.#gateOpen) greet();
    else this.#held.push(greet);
  }
}
