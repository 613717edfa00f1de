/**
 * Internal test support (Node only): a minimal SMTP server over `node:net` for what smtp-server
 * can't script: its greeting and EHLO lines word for word, and the moment it answers QUIT. It
 * speaks just enough SMTP for one transaction per connection (EHLO/HELO, MAIL, RCPT, DATA with
 * dot-unstuffing, RSET, NOOP, QUIT) and records every session.
 *
 * After its 221 it keeps its side of the connection open, so a session only counts as closed
 * once the client has closed it.
 */
import net from 'node:net';

export interface RawSmtpOptions {
  /** The greeting line. Default `220 raw.test ESMTP`. */
  readonly greeting?: string;
  /** The reply lines to EHLO. Default: `raw.test` with SIZE and 8BITMIME. */
  readonly ehlo?: readonly string[];
  /** The reply to RCPT TO for an address. Default `250 2.1.5 Ok`. */
  readonly rcpt?: (address: string) => string;
  /** Hold the reply to QUIT until the test calls `answerQuit()`. */
  readonly holdQuit?: boolean;
}

export interface RawSmtpSession {
  /** The command lines received, in order (DATA contents not included). */
  readonly commands: string[];
  /** The messages received, as the client meant them: dot-stuffing removed, CRLF kept. */
  readonly messages: Buffer[];
  /** Resolves when QUIT arrives. */
  readonly quitReceived: Promise<void>;
  /** Resolves when the connection is closed (by the client: the server never closes first). */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** Sends the 221 to a held QUIT. */
  answerQuit(): void;
}

export interface RawSmtpServer {
  readonly port: number;
  readonly sessions: readonly RawSmtpSession[];
  /** Resolves with the `index`th session (from 0) once its connection is accepted. */
  session(index: number): Promise<RawSmtpSession>;
  /** Resolves with the first session that received a command containing `text`. */
  sessionWith(text: string): Promise<RawSmtpSession>;
  /** Stops listening and destroys the connections still open. */
  close(): Promise<void>;
}

/** Rejects with a clear message unless `promise` settles within `ms` (a bound, not a pause). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const CRLF = Buffer.from('\r\n');

/** Starts the server on 127.0.0.1 (port 0: the OS picks). */
export async function startRawSmtp(options: RawSmtpOptions = {}): Promise<RawSmtpServer> {
  const greeting = options.greeting ?? '220 raw.test ESMTP';
  const ehlo = options.ehlo ?? ['250-raw.test', '250-SIZE 10485760', '250 8BITMIME'];
  const sessions: RawSmtpSession[] = [];
  const sockets = new Set<net.Socket>();
  // Re-run on every new session and every command, until each has found what it waits for.
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const check of [...waiters]) check();
  };
  const waitFor = (find: () => RawSmtpSession | undefined): Promise<RawSmtpSession> =>
    new Promise((resolve) => {
      const check = (): void => {
        const found = find();
        if (!found) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
    });

  const server = net.createServer((socket) => {
    sockets.add(socket);
    const commands: string[] = [];
    const messages: Buffer[] = [];
    let isClosed = false;
    let onQuit!: () => void;
    const quitReceived = new Promise<void>((resolve) => {
      onQuit = resolve;
    });
    const closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        isClosed = true;
        sockets.delete(socket);
        resolve();
      });
    });
    // A client that resets is a client that closed: nothing to report here.
    socket.on('error', () => undefined);
    const send = (...lines: string[]): void => {
      if (!socket.destroyed) socket.write(lines.map((line) => `${line}\r\n`).join(''));
    };
    let quitAsked = false;
    const session: RawSmtpSession = {
      commands,
      messages,
      quitReceived,
      closed,
      get isClosed() {
        return isClosed;
      },
      answerQuit() {
        if (quitAsked) send('221 2.0.0 Bye');
      },
    };
    sessions.push(session);
    notify();

    let buffered = Buffer.alloc(0);
    let data: Buffer[] | undefined;
    const onLine = (line: Buffer): void => {
      if (data) {
        if (line.length === 1 && line[0] === 0x2e) {
          messages.push(Buffer.concat(data));
          data = undefined;
          send('250 2.0.0 Ok: queued');
          return;
        }
        const unstuffed = line[0] === 0x2e ? line.subarray(1) : line;
        data.push(unstuffed, CRLF);
        return;
      }
      const text = line.toString('latin1');
      commands.push(text);
      notify();
      const verb = text.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') send(...ehlo);
      else if (verb === 'HELO') send(ehlo[0]!.replace(/^250-/, '250 '));
      else if (verb === 'MAIL') send('250 2.1.0 Ok');
      else if (verb === 'RCPT') {
        const address = /<([^>]*)>/.exec(text)?.[1] ?? '';
        send(options.rcpt?.(address) ?? '250 2.1.5 Ok');
      } else if (verb === 'DATA') {
        data = [];
        send('354 End data with <CR><LF>.<CR><LF>');
      } else if (verb === 'RSET' || verb === 'NOOP') send('250 2.0.0 Ok');
      else if (verb === 'QUIT') {
        quitAsked = true;
        onQuit();
        if (!options.holdQuit) session.answerQuit();
      } else send('502 5.5.2 Command not recognized');
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let at = buffered.indexOf(CRLF); at >= 0; at = buffered.indexOf(CRLF)) {
        const line = buffered.subarray(0, at);
        buffered = buffered.subarray(at + 2);
        onLine(line);
      }
    });
    send(greeting);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    sessions,
    session: (index) => waitFor(() => sessions[index]),
    sessionWith: (text) =>
      waitFor(() => sessions.find((s) => s.commands.some((c) => c.includes(text)))),
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
