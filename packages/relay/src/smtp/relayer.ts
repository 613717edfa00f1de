/**
 * `SmtpRelayer`: a `Relayer` that hands every message to one smarthost over SMTP (RFC 5321),
 * with implicit TLS, STARTTLS or plain connections, AUTH PLAIN / LOGIN (RFC 4954), SIZE,
 * 8BITMIME and DSN's ENVID when the server offers them, and one reply per recipient.
 *
 * Reply codes map to outcomes: 2xx → delivered, 4xx → deferred, 5xx → failed; a connection
 * that can't be opened, breaks or stops answering → deferred for every recipient not yet
 * decided. AUTH failures defer (like Postfix's `smtp_sasl_auth_soft_bounce`): a wrong password
 * is an operator's problem, not the sender's, so mail waits instead of bouncing.
 *
 * `deliver` resolves as soon as every recipient is decided (on the reply to the final `.` for an
 * accepted message) and QUIT follows on its own: a crash between the server's 250 and the
 * caller's commit of the outcome sends the message again, so that interval holds no wait for
 * the server.
 */
import { isRelayError, RelayError, RelayErrorCode } from '../errors.js';
import type {
  DeliverOptions,
  DeliveryResult,
  Diagnostic,
  OutgoingMessage,
  RecipientOutcome,
  Relayer,
} from '../relayer.js';
import { systemTimers, type Timers } from '../timers.js';
import { addressProblem, assertSmtpAddress } from './address.js';
import { SmtpConnection, type SmtpTranscriptLine } from './connection.js';
import { encodeMessage, hasEightBit } from './data.js';
import { hostAsMtaName, serverName } from './remote-mta.js';
import { replyClass, replyText, type SmtpReply } from './reply.js';
import type { SmtpConnect } from './socket.js';

/** Per-step timeouts in ms. Defaults follow RFC 5321 §4.5.3.2 where it gives one. */
export interface SmtpTimeouts {
  /** Opening the connection (TLS handshake included for implicit TLS). Default 30 s. */
  readonly connect: number;
  /** The 220 greeting. Default 5 min. */
  readonly greeting: number;
  /** EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET: sending the command and its reply. Default 5 min. */
  readonly command: number;
  /** The reply to DATA (354). Default 2 min. */
  readonly dataStart: number;
  /** Each 64 KiB block of the message. Default 3 min. */
  readonly dataBlock: number;
  /** The reply to the final `.`. Default 10 min. */
  readonly dataEnd: number;
  /**
   * QUIT and its reply. Default 10 s. The outcome is decided before QUIT and `deliver` does not
   * wait for it: this bounds how long the connection stays open afterwards.
   */
  readonly quit: number;
}

/** The defaults of {@link SmtpTimeouts}. */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = {
  connect: 30_000,
  greeting: 300_000,
  command: 300_000,
  dataStart: 120_000,
  dataBlock: 180_000,
  dataEnd: 600_000,
  quit: 10_000,
};

/** How long {@link SmtpRelayer.idle} waits for a socket's close to settle once it was sent. */
const CLOSE_WAIT_MS = 1000;

/** Credentials for AUTH. */
export interface SmtpAuth {
  readonly user: string;
  readonly pass: string;
  /** Default: PLAIN if the server offers it, else LOGIN. */
  readonly method?: 'PLAIN' | 'LOGIN';
}

/** A line of a conversation, tagged with the message it was about (for log correlation). */
export interface SmtpLogEntry extends SmtpTranscriptLine {
  /** The queue id of the message. */
  readonly id: string;
  readonly host: string;
}

/**
 * One attempt of {@link SmtpRelayer.attempt}: the outcomes, and whether the server could not be
 * reached, so that a {@link FailoverRelayer} may try the next smarthost within the same attempt.
 */
export interface SmtpAttempt {
  readonly result: DeliveryResult;
  /**
   * `true` when the attempt ended before the transaction (before MAIL FROM) because the
   * connection could not be opened, broke or timed out (TLS included), or the server answered
   * its greeting, EHLO/HELO or STARTTLS with a 4xx. Then no recipient was tried and every one is
   * deferred. `false` for everything else: a 5xx at connect, a refused login, any reply from
   * MAIL FROM on.
   */
  readonly unreachable: boolean;
}

/** Options of {@link SmtpRelayer}. */
export interface SmtpRelayerOptions {
  /** Opens sockets: `cloudflareConnect` from `@mailspool/relay/cloudflare` on Workers. */
  readonly connect: SmtpConnect;
  /** The smarthost. */
  readonly host: string;
  readonly port: number;
  /** `on`: implicit TLS (465); `starttls` (587): STARTTLS is required, never skipped; `off`: plain. */
  readonly secureTransport: 'on' | 'starttls' | 'off';
  readonly auth?: SmtpAuth;
  /** Allow AUTH over a plain connection (`secureTransport: 'off'`); for local tests only. */
  readonly allowPlaintextAuth?: boolean;
  /** Our name in EHLO. Default `localhost`; set the host's real name in production. */
  readonly ehloName?: string;
  readonly timeouts?: Partial<SmtpTimeouts>;
  /** Default: the runtime's timers. */
  readonly timers?: Timers;
  /** Receives every line sent and received (credentials hidden), tagged with the message id. */
  readonly log?: (entry: SmtpLogEntry) => void;
}

function checkToken(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(value))
    throw new TypeError(`${name} must be 1-255 printable ASCII characters without spaces`);
  return value;
}

/** xtext (RFC 3461 §4): `+`, `=` and characters outside `!`..`~` become `+HH`. */
function xtext(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.charCodeAt(0);
    out +=
      code >= 0x21 && code <= 0x7e && ch !== '+' && ch !== '='
        ? ch
        : `+${code.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A diagnostic from a reply: its enhanced status, else `2.0.0` / `4.0.0` / `5.0.0` by class. */
function diagnosticOf(reply: SmtpReply, remoteMta: string): Diagnostic {
  const cls = replyClass(reply);
  return {
    status: reply.enhanced ?? `${cls === 2 ? 2 : cls === 5 ? 5 : 4}.0.0`,
    code: reply.code,
    text: replyText(reply),
    remoteMta,
  };
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * The stages of a session before its transaction (MAIL FROM): a connection failure or a 4xx
 * there means the server could not be reached (see {@link SmtpAttempt.unreachable}). AUTH is not
 * one of them: a refused login is this host's answer, not its absence.
 */
const BEFORE_TRANSACTION = new Set(['connect', 'greeting', 'EHLO', 'STARTTLS']);

/** Thrown inside a session to end it with the same outcome for every undecided recipient. */
class Stop {
  constructor(
    readonly status: 'deferred' | 'failed',
    readonly diagnostic: Diagnostic,
  ) {}
}

/**
 * Who answers, for `Remote-MTA`: the configured host until the server names itself in its
 * greeting or, failing that, in its reply to EHLO (see remote-mta.ts).
 */
class RemoteMta {
  #name: string;
  #namedByServer = false;

  constructor(host: string) {
    this.#name = hostAsMtaName(host);
  }

  get name(): string {
    return this.#name;
  }

  /** Takes the server's name from the first line of a greeting or EHLO reply, once. */
  learnFrom(reply: SmtpReply): void {
    if (this.#namedByServer) return;
    const name = serverName(reply.lines[0] ?? '');
    if (name === undefined) return;
    this.#name = name;
    this.#namedByServer = true;
  }
}

/** A `Relayer` over SMTP to one smarthost. */
export class SmtpRelayer implements Relayer {
  readonly #options: SmtpRelayerOptions;
  readonly #timeouts: SmtpTimeouts;
  readonly #timers: Timers;
  readonly #ehloName: string;
  /** Connections opened and not closed yet: see {@link SmtpRelayer.idle}. */
  readonly #open = new Set<Promise<void>>();

  /** Throws `TypeError` for a missing `connect`, a bad host, port, EHLO name or timeout, or AUTH over plaintext without `allowPlaintextAuth`. */
  constructor(options: SmtpRelayerOptions) {
    if (typeof options?.connect !== 'function') throw new TypeError('options.connect is required');
    checkToken(options.host, 'host');
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
      throw new TypeError('port must be an integer in 1-65535');
    if (!['on', 'starttls', 'off'].includes(options.secureTransport))
      throw new TypeError("secureTransport must be 'on', 'starttls' or 'off'");
    this.#ehloName = checkToken(options.ehloName ?? 'localhost', 'ehloName');
    if (options.auth) {
      if (typeof options.auth.user !== 'string' || typeof options.auth.pass !== 'string')
        throw new TypeError('auth needs string user and pass');
      if (options.auth.method !== undefined && !['PLAIN', 'LOGIN'].includes(options.auth.method))
        throw new TypeError("auth.method must be 'PLAIN' or 'LOGIN'");
      if (options.secureTransport === 'off' && !options.allowPlaintextAuth)
        throw new TypeError('AUTH over a plain connection needs allowPlaintextAuth: true');
    }
    this.#timeouts = { ...DEFAULT_SMTP_TIMEOUTS, ...options.timeouts };
    for (const [name, value] of Object.entries(this.#timeouts)) {
      if (!(Number.isFinite(value) && value > 0))
        throw new TypeError(`timeouts.${name} must be > 0`);
    }
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
  }

  /**
   * Delivers `message` to its recipients in one SMTP transaction. Addresses are checked first:
   * an invalid sender fails every recipient (5.1.7), an invalid recipient fails alone (5.1.3),
   * and no connection is opened unless some recipient can be sent. Resolves with an outcome
   * per recipient as soon as they are decided (for an accepted message: on the server's reply to
   * the final `.`); QUIT and closing the connection follow without holding the result back.
   * Rejects only with a `RelayError` `ABORTED` when `options.signal` aborts (the final `.` is
   * then never sent).
   */
  async deliver(message: OutgoingMessage, options: DeliverOptions): Promise<DeliveryResult> {
    return (await this.attempt(message, options)).result;
  }

  /** The host and port this relayer delivers to, as `host:port` (for logs). */
  get address(): string {
    return `${this.#options.host}:${this.#options.port}`;
  }

  /**
   * {@link SmtpRelayer.deliver}, also telling whether the server could not be reached at all
   * (see {@link SmtpAttempt.unreachable}).
   */
  async attempt(message: OutgoingMessage, options: DeliverOptions): Promise<SmtpAttempt> {
    const { envelope, contents, id } = message;
    const outcomes = new Map<string, RecipientOutcome>();
    const senderProblem = addressProblem(envelope.sender, 'sender');
    const valid: string[] = [];
    for (const recipient of envelope.recipients) {
      if (outcomes.has(recipient) || valid.includes(recipient)) continue;
      const problem = senderProblem ?? addressProblem(recipient, 'recipient');
      if (problem === undefined) {
        valid.push(recipient);
      } else {
        const diagnostic: Diagnostic = senderProblem
          ? { status: '5.1.7', text: `invalid sender address: ${senderProblem}` }
          : { status: '5.1.3', text: `invalid recipient address: ${problem}` };
        outcomes.set(recipient, { recipient, status: 'failed', diagnostic });
      }
    }
    const unreachable =
      valid.length > 0 &&
      (await this.#session(id, envelope.sender, valid, contents, options.signal, outcomes));
    // One outcome per distinct recipient, in envelope order.
    return {
      result: {
        recipients: [...new Set(envelope.recipients)].flatMap((r) => outcomes.get(r) ?? []),
      },
      unreachable,
    };
  }

  /**
   * Sends one message without the `Relayer` policy around it: resolves with the per-recipient
   * outcomes. Rejects with a `RelayError` `INVALID_ADDRESS` before opening any connection when
   * the sender or any recipient can't be sent, and with `ABORTED` when `signal` aborts.
   */
  async send(
    message: OutgoingMessage,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<DeliveryResult> {
    assertSmtpAddress(message.envelope.sender, 'sender');
    for (const recipient of message.envelope.recipients) assertSmtpAddress(recipient, 'recipient');
    return this.deliver(message, { signal: options.signal ?? new AbortController().signal });
  }

  /**
   * Resolves once every connection this relayer opened so far is closed, QUIT included (`deliver`
   * resolves before QUIT). A caller that holds a connection slot of a limited smarthost releases
   * it after this, so the server never sees more connections than the slots.
   */
  async idle(): Promise<void> {
    while (this.#open.size > 0) await Promise.all([...this.#open]);
  }

  /** Counts `closed` as open until it settles. */
  #track(closed: Promise<void>): void {
    const done = closed.then(() => {
      this.#open.delete(done);
    });
    this.#open.add(done);
  }

  /**
   * Closes `c`, resolving when the socket's close settled or after {@link CLOSE_WAIT_MS}: a
   * runtime's socket close may never settle (workerd's, after some errors), and the close was
   * sent by then.
   */
  #close(c: SmtpConnection): Promise<void> {
    let timer: unknown;
    return Promise.race([
      c.close(),
      new Promise<void>((resolve) => {
        timer = this.#timers.setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]).then(() => this.#timers.clearTimeout(timer));
  }

  async #session(
    id: string,
    sender: string,
    recipients: readonly string[],
    contents: Uint8Array,
    signal: AbortSignal,
    outcomes: Map<string, RecipientOutcome>,
  ): Promise<boolean> {
    const o = this.#options;
    const t = this.#timeouts;
    const remote = new RemoteMta(o.host);
    const settle = (
      recipient: string,
      status: RecipientOutcome['status'],
      diagnostic: Diagnostic,
    ) => {
      if (!outcomes.has(recipient)) outcomes.set(recipient, { recipient, status, diagnostic });
    };
    const fromReply = (reply: SmtpReply): Diagnostic => diagnosticOf(reply, remote.name);
    /** Stops the session unless `reply` has the expected class. */
    const expect = (reply: SmtpReply, wanted: number): void => {
      const cls = replyClass(reply);
      if (cls === wanted) return;
      throw new Stop(cls === 5 ? 'failed' : 'deferred', fromReply(reply));
    };
    const log = o.log;
    const transcript = log
      ? (line: SmtpTranscriptLine) => log({ ...line, id, host: o.host })
      : undefined;

    let connection: SmtpConnection | undefined;
    // Set once every recipient is decided on a connection still in order: it then ends with
    // QUIT after this method returns. Every other way out closes it at once.
    let decided = false;
    let stage = 'connect';
    try {
      connection = await SmtpConnection.open(
        o.connect,
        { hostname: o.host, port: o.port },
        { secureTransport: o.secureTransport },
        { timeout: t.connect, timers: this.#timers, signal, ...(transcript ? { transcript } : {}) },
      );
      const c = connection;
      stage = 'greeting';
      const greeting = await c.reply(t.greeting, stage);
      remote.learnFrom(greeting);
      expect(greeting, 2);

      stage = 'EHLO';
      let extensions = await this.#ehlo(c, o.secureTransport === 'off' && !o.auth, remote);
      if (o.secureTransport === 'starttls') {
        stage = 'STARTTLS';
        if (!extensions.has('STARTTLS')) {
          throw new Stop('deferred', {
            status: '4.7.0',
            text: 'the server does not offer STARTTLS, which this relayer requires',
            remoteMta: remote.name,
          });
        }
        expect(await c.command('STARTTLS', t.command, stage), 2);
        c.startTls();
        stage = 'EHLO';
        extensions = await this.#ehlo(c, false, remote);
      }
      if (o.auth) {
        stage = 'AUTH';
        await this.#authenticate(c, extensions, o.auth, remote);
      }

      stage = 'MAIL';
      let mail = `MAIL FROM:<${sender}>`;
      const data = encodeMessage(contents);
      if (extensions.has('SIZE')) mail += ` SIZE=${data.messageSize}`;
      if (extensions.has('8BITMIME') && hasEightBit(contents)) mail += ' BODY=8BITMIME';
      if (extensions.has('DSN')) mail += ` ENVID=${xtext(id)}`;
      expect(await c.command(mail, t.command, stage), 2);

      stage = 'RCPT';
      const accepted: string[] = [];
      for (const recipient of recipients) {
        const reply = await c.command(`RCPT TO:<${recipient}>`, t.command, stage);
        const cls = replyClass(reply);
        if (cls === 2) accepted.push(recipient);
        else settle(recipient, cls === 5 ? 'failed' : 'deferred', fromReply(reply));
      }
      if (accepted.length === 0) {
        decided = true;
        return false;
      }

      stage = 'DATA';
      const start = await c.command('DATA', t.dataStart, stage);
      if (replyClass(start) !== 3) {
        for (const r of accepted)
          settle(r, replyClass(start) === 5 ? 'failed' : 'deferred', fromReply(start));
        decided = true;
        return false;
      }
      // Everything but the final ".": without it the server discards the transaction, so an
      // abort (lost lease) up to here delivers nothing.
      const { bytes } = data;
      await c.sendBytes(bytes.subarray(0, bytes.length - 3), t.dataBlock, stage);
      if (signal.aborted) throw new RelayError(RelayErrorCode.ABORTED, 'the delivery was aborted');
      await c.sendBytes(bytes.subarray(bytes.length - 3), t.dataBlock, stage);
      stage = 'end of DATA';
      const end = await c.reply(t.dataEnd, stage);
      const cls = replyClass(end);
      for (const r of accepted) {
        settle(r, cls === 2 ? 'delivered' : cls === 5 ? 'failed' : 'deferred', fromReply(end));
      }
      decided = true;
      return false;
    } catch (error) {
      if (error instanceof Stop) {
        for (const r of recipients) settle(r, error.status, error.diagnostic);
        decided = true;
        const code = error.diagnostic.code;
        return (
          BEFORE_TRANSACTION.has(stage) &&
          error.status === 'deferred' &&
          code !== undefined &&
          code >= 400 &&
          code < 500
        );
      }
      if (isRelayError(error, RelayErrorCode.ABORTED) || signal.aborted) {
        throw isRelayError(error, RelayErrorCode.ABORTED)
          ? error
          : new RelayError(RelayErrorCode.ABORTED, 'the delivery was aborted', { cause: error });
      }
      const text = `${stage}: ${error instanceof Error ? error.message : String(error)}`;
      // RFC 3463: 4.4.1 no answer from host, 4.4.2 bad connection, 4.5.0 protocol error.
      const status = isRelayError(error, RelayErrorCode.PROTOCOL)
        ? '4.5.0'
        : stage === 'connect'
          ? '4.4.1'
          : '4.4.2';
      for (const r of recipients) settle(r, 'deferred', { status, text, remoteMta: remote.name });
      return BEFORE_TRANSACTION.has(stage);
    } finally {
      if (connection && decided) this.#track(this.#quitThenClose(connection));
      else if (connection) this.#track(this.#close(connection));
    }
  }

  /** EHLO (or HELO when EHLO is refused and no extension is needed); returns the extensions. */
  async #ehlo(
    c: SmtpConnection,
    heloAllowed: boolean,
    remote: RemoteMta,
  ): Promise<Map<string, string>> {
    const t = this.#timeouts;
    const reply = await c.command(`EHLO ${this.#ehloName}`, t.command, 'EHLO');
    const extensions = new Map<string, string>();
    if (replyClass(reply) === 2) {
      remote.learnFrom(reply);
      for (const line of reply.lines.slice(1)) {
        const [keyword = '', ...params] = line.trim().split(/[ =]/);
        extensions.set(keyword.toUpperCase(), params.join(' '));
      }
      return extensions;
    }
    if (replyClass(reply) === 5 && heloAllowed) {
      const helo = await c.command(`HELO ${this.#ehloName}`, t.command, 'HELO');
      if (replyClass(helo) === 2) {
        remote.learnFrom(helo);
        return extensions;
      }
      throw new Stop(
        replyClass(helo) === 5 ? 'failed' : 'deferred',
        diagnosticOf(helo, remote.name),
      );
    }
    // EHLO refused while TLS or AUTH needs it: an operator's problem, so defer.
    throw new Stop('deferred', {
      status: '4.0.0',
      code: reply.code,
      text: replyText(reply),
      remoteMta: remote.name,
    });
  }

  async #authenticate(
    c: SmtpConnection,
    extensions: Map<string, string>,
    auth: SmtpAuth,
    remote: RemoteMta,
  ): Promise<void> {
    const t = this.#timeouts;
    const offered = (extensions.get('AUTH') ?? '').toUpperCase().split(/\s+/);
    const method = auth.method ?? (offered.includes('PLAIN') ? 'PLAIN' : 'LOGIN');
    if (!offered.includes(method)) {
      throw new Stop('deferred', {
        status: '4.7.0',
        text: `the server does not offer AUTH ${method}`,
        remoteMta: remote.name,
      });
    }
    // A refused login defers (a soft bounce, see the module comment), whatever the reply class.
    const step = (reply: SmtpReply, wanted: number): void => {
      if (replyClass(reply) === wanted) return;
      throw new Stop('deferred', {
        status: reply.enhanced ? `4${reply.enhanced.slice(1)}` : '4.7.0',
        code: reply.code,
        text: replyText(reply),
        remoteMta: remote.name,
      });
    };
    if (method === 'PLAIN') {
      const token = base64(`\0${auth.user}\0${auth.pass}`);
      step(await c.command(`AUTH PLAIN ${token}`, t.command, 'AUTH', 'AUTH PLAIN (hidden)'), 2);
      return;
    }
    step(await c.command('AUTH LOGIN', t.command, 'AUTH'), 3);
    step(await c.command(base64(auth.user), t.command, 'AUTH', '(user hidden)'), 3);
    step(await c.command(base64(auth.pass), t.command, 'AUTH', '(password hidden)'), 2);
  }

  /**
   * Ends a session whose outcome is decided: QUIT, its reply (or the QUIT timeout), then close.
   * Not awaited by `deliver`, so the caller can commit the outcome meanwhile ({@link
   * SmtpRelayer.idle} waits for it); nothing the server says now can
   * change it, so a failure here only ends the connection.
   */
  #quitThenClose(c: SmtpConnection): Promise<void> {
    const close = (): Promise<void> => this.#close(c);
    return c.command('QUIT', this.#timeouts.quit, 'QUIT').then(close, close);
  }
}
