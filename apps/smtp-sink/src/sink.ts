/**
 * A local SMTP sink for the demo and the end-to-end tests: a real SMTP server (smtp-server) on
 * 127.0.0.1 that accepts every message, keeps it in memory, prints a line per message, and serves
 * a small page and a JSON API so people and tests can see what arrived.
 *
 * It is a development tool: it listens on loopback only, caps message size, and protects its
 * HTTP API with a token when one is configured.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import PostalMime from 'postal-mime';
import { SMTPServer } from 'smtp-server';

/** One message as received. */
export interface ReceivedMail {
  /** 1, 2, 3… in order of arrival. */
  readonly seq: number;
  readonly receivedAt: string;
  /** Envelope: MAIL FROM ('' for the null reverse-path) and RCPT TO, as the server saw them. */
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly subject: string;
  readonly from: string;
  readonly messageId: string;
  readonly size: number;
  /** The DATA bytes as received (after dot-unstuffing), base64. */
  readonly rawBase64: string;
  /** The user who authenticated, if any. */
  readonly user: string | null;
}

export interface SinkOptions {
  /** SMTP port; 0 picks a free one. Default 2525. */
  readonly smtpPort?: number;
  /** HTTP port for the page and API; 0 picks a free one. Default 8025. */
  readonly httpPort?: number;
  /** Require AUTH PLAIN/LOGIN with these credentials (plain text is allowed: loopback only). */
  readonly auth?: { readonly user: string; readonly pass: string };
  /** Bearer token for the HTTP API's clear endpoint; the page and reads are open on loopback. */
  readonly apiToken?: string;
  /** Largest message accepted, bytes. Default 30 MiB. */
  readonly maxBytes?: number;
  /** Called with a line per received message; default console.log. */
  readonly log?: (line: string) => void;
  /**
   * Scripts the answer to each RCPT TO (for tests): return a reply to refuse the recipient, or
   * `undefined` to accept it, or a promise of either to answer later (a server that stalls).
   * `attempt` counts the RCPTs seen for this address, from 1.
   */
  readonly onRcpt?: (address: string, attempt: number) => RcptRefusal | Promise<RcptRefusal>;
}

/** A refusal of one recipient (`onRcpt`), or `undefined` to accept it. */
export type RcptRefusal = { readonly code: number; readonly message: string } | undefined;

export interface Sink {
  readonly smtpPort: number;
  readonly httpPort: number;
  readonly messages: readonly ReceivedMail[];
  /** Resolves when `count` messages have arrived (for tests; rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<readonly ReceivedMail[]>;
  clear(): void;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Starts the SMTP server and the HTTP page; resolves when both listen. */
export async function startSink(options: SinkOptions = {}): Promise<Sink> {
  const messages: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const log = options.log ?? ((line: string) => console.log(line));
  const maxBytes = options.maxBytes ?? 30 * 1024 * 1024;
  let seq = 0;
  const rcptAttempts = new Map<string, number>();

  const smtp = new SMTPServer({
    secure: false,
    size: maxBytes,
    authOptional: !options.auth,
    allowInsecureAuth: true,
    disabledCommands: options.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authMethods: ['PLAIN', 'LOGIN'],
    banner: 'mailspool smtp-sink',
    logger: false,
    onAuth(auth, _session, callback) {
      if (
        options.auth &&
        auth.username === options.auth.user &&
        auth.password === options.auth.pass
      ) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error('535 5.7.8 authentication failed'));
      }
    },
    onRcptTo(address, _session, callback) {
      const attempt = (rcptAttempts.get(address.address) ?? 0) + 1;
      rcptAttempts.set(address.address, attempt);
      const answer = (refusal: RcptRefusal): void => {
        if (refusal) {
          callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
          return;
        }
        callback();
      };
      const decided = options.onRcpt?.(address.address, attempt);
      if (decided instanceof Promise) {
        decided.then(answer, (error: unknown) =>
          answer({ code: 451, message: `4.3.0 ${String(error)}` }),
        );
      } else answer(decided);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      // A client that goes away in the middle of DATA ends the stream with an error; the
      // partial message is dropped, and nobody is left to answer.
      stream.on('error', (error) => {
        log(`smtp-sink: message from ${session.remoteAddress} dropped: ${error.message}`);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', async () => {
        if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
          callback(Object.assign(new Error('552 5.3.4 message too big'), { responseCode: 552 }));
          return;
        }
        const raw = Buffer.concat(chunks);
        let parsed: { subject?: string; from?: { address?: string }; messageId?: string } = {};
        try {
          parsed = await PostalMime.parse(raw);
        } catch {
          // A message we can't parse is still recorded as received.
        }
        const mail: ReceivedMail = {
          seq: ++seq,
          receivedAt: new Date().toISOString(),
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          subject: parsed.subject ?? '',
          from: parsed.from?.address ?? '',
          messageId: parsed.messageId ?? '',
          size: raw.byteLength,
          rawBase64: raw.toString('base64'),
          user: typeof session.user === 'string' ? session.user : null,
        };
        messages.push(mail);
        log(
          `smtp-sink: #${mail.seq} from <${mail.mailFrom}> to ${mail.rcptTo.map((r) => `<${r}>`).join(', ')} "${mail.subject}" (${mail.size} bytes)`,
        );
        for (const wake of [...waiters]) wake();
        callback(null, `2.0.0 Ok: queued as sink-${mail.seq}`);
      });
    },
  });

  // smtp-server re-emits every connection's socket error (a client's ECONNRESET in the middle
  // of a transaction, a broken TLS handshake) and its listener's errors here. Without a
  // listener the EventEmitter throws them, and one client's reset would stop the sink.
  smtp.on('error', (error: Error & { code?: string; remoteAddress?: string }) => {
    const where = error.remoteAddress ? `connection from ${error.remoteAddress}` : 'SMTP server';
    log(`smtp-sink: ${where}: ${error.message}${error.code ? ` (${error.code})` : ''}`);
  });

  const http = createServer((req, res) =>
    serve(req, res, messages, options.apiToken, () => messages.splice(0)),
  );

  const smtpPort = await listen(smtp.server as unknown as Server, options.smtpPort ?? 2525);
  const httpPort = await listen(http, options.httpPort ?? 8025);

  return {
    smtpPort,
    httpPort,
    messages,
    clear: () => {
      messages.splice(0);
    },
    waitFor(count, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(messages);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`smtp-sink: ${messages.length} of ${count} messages after ${timeoutMs} ms`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
    },
  };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function serve(
  req: IncomingMessage,
  res: ServerResponse,
  messages: ReceivedMail[],
  apiToken: string | undefined,
  clear: () => void,
): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/api/messages') {
    json(res, 200, messages);
    return;
  }
  if (req.method === 'DELETE' && url.pathname === '/api/messages') {
    if (apiToken && req.headers.authorization !== `Bearer ${apiToken}`) {
      json(res, 401, { error: 'UNAUTHORIZED' });
      return;
    }
    clear();
    json(res, 200, { cleared: true });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page(messages));
    return;
  }
  json(res, 404, { error: 'NOT_FOUND' });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );

function page(messages: readonly ReceivedMail[]): string {
  const rows = [...messages]
    .reverse()
    .map(
      (m) =>
        `<tr><td>${m.seq}</td><td>${escapeHtml(m.receivedAt.slice(11, 19))}</td><td>${escapeHtml(m.mailFrom || '<>')}</td><td>${escapeHtml(m.rcptTo.join(', '))}</td><td>${escapeHtml(m.subject)}</td><td>${m.size}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>smtp-sink (${messages.length})</title>
<meta http-equiv="refresh" content="2">
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left}th{background:#f4f4f4}</style></head>
<body><h1>smtp-sink</h1><p>${messages.length} message(s) received. This page refreshes every 2 s.</p>
<table><thead><tr><th>#</th><th>time</th><th>MAIL FROM</th><th>RCPT TO</th><th>subject</th><th>bytes</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6">nothing yet</td></tr>'}</tbody></table></body></html>`;
}
