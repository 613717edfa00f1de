/**
 * Internal test support (Node only): a real `smtp-server` on 127.0.0.1 whose replies are scripted
 * by the addresses a test uses, plus a small HTTP control server so tests running inside workerd
 * can read what the SMTP server received. Used by test/global-setup.ts and the Node SMTP tests.
 *
 * Scripts, chosen by the local part up to its first `.` (tests add a unique tag after it, so
 * per-address state never leaks between tests):
 *
 * recipients (RCPT TO)
 * - `ok.*`         250
 * - `perm.*`       550 5.1.1 (always)
 * - `temp.*`       451 4.2.1 (always)
 * - `tempfirst.*`  451 4.2.1 the first time this address is seen, 250 afterwards
 * - `stallfirst.*` no reply at all the first time (the session hangs), 250 afterwards
 * senders (MAIL FROM), acting on the reply to the end of DATA
 * - `datatempfirst.*` 451 4.3.0 the first time this sender is seen, 250 afterwards
 * - `dataperm.*`      554 5.6.0 (always)
 * - anything else     250
 * AUTH: user `user`, password `secret` (PLAIN and LOGIN); anything else 535.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { type RawSmtpServer, type RawSmtpSession, within } from './raw-smtp.js';

/** One message the server accepted (a 250 to the end of DATA). */
export interface ReceivedMessage {
  readonly mailFrom: string;
  readonly rcptTo: string[];
  /** The message bytes as the server got them after removing dot-stuffing, base64. */
  readonly data: string;
  readonly envid: string | null;
  /** The `SIZE=` parameter of MAIL FROM, or `null` when the client sent none. */
  readonly declaredSize: number | null;
  readonly user: string | null;
  readonly secure: boolean;
}

/** What the control endpoint `/log` returns. */
export interface PeerLog {
  readonly received: ReceivedMessage[];
  /** Every MAIL FROM / RCPT TO the server saw, accepted or not, as `MAIL <addr>` / `RCPT <addr>`. */
  readonly commands: string[];
  /** Connections accepted so far. */
  readonly connections: number;
}

export interface SmtpPeer {
  readonly port: number;
  readonly log: PeerLog;
  /** Resolves once a `stallfirst.*` recipient containing `tag` is hanging. */
  stalled(tag: string): Promise<void>;
  close(): Promise<void>;
}

function scriptOf(address: string): string {
  const at = address.indexOf('.');
  return at < 0 ? '' : address.slice(0, at).toLowerCase();
}

function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

/** Starts a scripted SMTP server on 127.0.0.1 (port 0: the OS picks). */
export async function startSmtpPeer(extra: Partial<SMTPServerOptions> = {}): Promise<SmtpPeer> {
  const log: { received: ReceivedMessage[]; commands: string[]; connections: number } = {
    received: [],
    commands: [],
    connections: 0,
  };
  const seen = new Map<string, number>();
  const stalls = new Set<string>();
  const stallWaiters: { tag: string; resolve: () => void }[] = [];
  const hanging = new Set<(err?: Error | null) => void>();
  const count = (key: string): number => {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return n;
  };

  const server = new SMTPServer({
    name: 'peer.test',
    banner: 'scripted peer',
    authOptional: true,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    disabledCommands: ['STARTTLS'],
    closeTimeout: 200,
    size: 50 * 1024 * 1024,
    logger: false,
    ...extra,
    onConnect(_session, callback) {
      log.connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (auth.username === 'user' && auth.password === 'secret') {
        callback(null, { user: auth.username });
      } else {
        callback(smtpError(535, '5.7.8 Authentication credentials invalid'));
      }
    },
    onMailFrom(address, _session, callback) {
      log.commands.push(`MAIL ${address.address}`);
      callback();
    },
    onRcptTo(address, _session, callback) {
      const rcpt = address.address;
      log.commands.push(`RCPT ${rcpt}`);
      switch (scriptOf(rcpt)) {
        case 'perm':
          return callback(smtpError(550, 'No such user here'));
        case 'temp':
          return callback(smtpError(451, 'Mailbox busy, try later'));
        case 'tempfirst':
          return count(`rcpt:${rcpt}`) === 1
            ? callback(smtpError(451, 'Greylisted, try later'))
            : callback();
        case 'stallfirst':
          if (count(`rcpt:${rcpt}`) === 1) {
            // Never answer: the client must time out. Released when the connection closes.
            hanging.add(callback);
            stalls.add(rcpt);
            for (const waiter of stallWaiters.splice(0)) {
              if (rcpt.includes(waiter.tag)) waiter.resolve();
              else stallWaiters.push(waiter);
            }
            return;
          }
          return callback();
        default:
          return callback();
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const sender = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        const script = scriptOf(sender);
        if (script === 'dataperm') return callback(smtpError(554, 'Message refused by policy'));
        if (script === 'datatempfirst' && count(`data:${sender}`) === 1) {
          return callback(smtpError(451, 'Local error in processing'));
        }
        const envelope = session.envelope as typeof session.envelope & {
          dsn?: { envid?: string | null };
        };
        const mailArgs =
          session.envelope.mailFrom === false
            ? undefined
            : (session.envelope.mailFrom.args as { SIZE?: string } | false);
        log.received.push({
          mailFrom: sender,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('base64'),
          envid: envelope.dsn?.envid ?? null,
          declaredSize: mailArgs && mailArgs.SIZE !== undefined ? Number(mailArgs.SIZE) : null,
          user: typeof session.user === 'string' ? session.user : null,
          secure: session.secure,
        });
        callback();
      });
    },
    onClose() {
      // A hung RCPT callback would keep the session alive: fail it once the client is gone.
      for (const callback of hanging) callback(smtpError(421, 'closing'));
      hanging.clear();
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    log,
    stalled(tag: string) {
      for (const rcpt of stalls) if (rcpt.includes(tag)) return Promise.resolve();
      return new Promise((resolve) => stallWaiters.push({ tag, resolve }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What the control endpoints `/raw/*` return about a session of the raw server. */
export interface RawSessionState {
  readonly commands: string[];
  readonly closed: boolean;
}

/** Longest wait of a `/raw/*` control request for the session to get there. */
const RAW_WAIT = 4000;

/**
 * The HTTP control server: `GET /log?peer=main|canary` returns a {@link PeerLog};
 * `GET /stalled?tag=T` answers once a `stallfirst.*` recipient containing `T` hangs on `main`.
 * For the raw server (one that holds its reply to QUIT), each returning a {@link RawSessionState}
 * of the session that got a command containing `T`: `GET /raw/quit?tag=T` once it received QUIT
 * (unanswered), `GET /raw/answer-quit?tag=T` once, after its 221, the client closed it, and
 * `GET /raw/closed?tag=T` once the client closed it without a 221.
 */
export async function startControl(
  peers: Record<string, SmtpPeer>,
  raw?: RawSmtpServer,
): Promise<Server> {
  const http = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (raw && url.pathname.startsWith('/raw/')) {
      const tag = url.searchParams.get('tag') ?? '';
      const state = (session: RawSmtpSession): RawSessionState => ({
        commands: session.commands,
        closed: session.isClosed,
      });
      const reached = async (): Promise<RawSessionState> => {
        const session = await within(raw.sessionWith(tag), RAW_WAIT, `a session with ${tag}`);
        if (url.pathname === '/raw/quit') {
          await within(session.quitReceived, RAW_WAIT, 'QUIT');
        } else {
          if (url.pathname === '/raw/answer-quit') session.answerQuit();
          await within(session.closed, RAW_WAIT, 'the client closing the connection');
        }
        return state(session);
      };
      reached().then(
        (body) => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify(body));
        },
        (error: unknown) => response.writeHead(504).end(String(error)),
      );
      return;
    }
    const peer = peers[url.searchParams.get('peer') ?? 'main'];
    if (!peer) {
      response.writeHead(404).end();
      return;
    }
    if (url.pathname === '/log') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(peer.log));
      return;
    }
    if (url.pathname === '/stalled') {
      void peer.stalled(url.searchParams.get('tag') ?? '').then(() => {
        response.writeHead(200).end('stalled');
      });
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return http;
}
