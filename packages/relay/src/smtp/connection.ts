/**
 * Internal (used by smtp/relayer.ts): one SMTP connection over an {@link SmtpSocket}. Every read
 * and write runs under a timeout from the injected timers and under the delivery's
 * `AbortSignal`; either one closes the socket and rejects with a `RelayError` (`TIMEOUT`,
 * `ABORTED`). A closed or broken connection rejects with `CONNECTION`, a malformed reply with
 * `PROTOCOL`.
 */
import { RelayError, RelayErrorCode } from '../errors.js';
import type { Timers } from '../timers.js';
import { buildReply, parseReplyLine, type ReplyLine, type SmtpReply } from './reply.js';
import type { SmtpConnect, SmtpConnectOptions, SmtpSocket, SmtpSocketAddress } from './socket.js';

/** Longest reply line accepted (RFC 5321 allows 512 octets; servers' texts can run longer). */
const MAX_LINE = 8192;
/** Most lines in one reply (EHLO lists a dozen extensions). */
const MAX_LINES = 256;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A line of the conversation, for logs. */
export interface SmtpTranscriptLine {
  readonly direction: 'client' | 'server';
  readonly line: string;
}

export class SmtpConnection {
  #socket: SmtpSocket;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #buffer: Uint8Array = new Uint8Array(0);
  #closing: Promise<void> | undefined;
  readonly #timers: Timers;
  readonly #signal: AbortSignal;
  readonly #transcript: ((line: SmtpTranscriptLine) => void) | undefined;

  private constructor(
    socket: SmtpSocket,
    timers: Timers,
    signal: AbortSignal,
    transcript: ((line: SmtpTranscriptLine) => void) | undefined,
  ) {
    this.#socket = socket;
    this.#reader = socket.readable.getReader();
    this.#writer = socket.writable.getWriter();
    this.#timers = timers;
    this.#signal = signal;
    this.#transcript = transcript;
  }

  /** Connects, waiting at most `timeout` ms. Rejects with `CONNECTION`, `TIMEOUT` or `ABORTED`. */
  static async open(
    connect: SmtpConnect,
    address: SmtpSocketAddress,
    options: SmtpConnectOptions,
    config: {
      readonly timeout: number;
      readonly timers: Timers;
      readonly signal: AbortSignal;
      readonly transcript?: (line: SmtpTranscriptLine) => void;
    },
  ): Promise<SmtpConnection> {
    if (config.signal.aborted) throw aborted();
    let socket: SmtpSocket;
    try {
      socket = connect(address, options);
    } catch (error) {
      throw new RelayError(
        RelayErrorCode.CONNECTION,
        `connect to ${address.hostname}:${address.port} failed: ${describe(error)}`,
        { cause: error },
      );
    }
    const connection = new SmtpConnection(socket, config.timers, config.signal, config.transcript);
    if (socket.opened) {
      await connection.#guard(
        socket.opened.catch((error: unknown) => {
          throw new RelayError(
            RelayErrorCode.CONNECTION,
            `connect to ${address.hostname}:${address.port} failed: ${describe(error)}`,
            { cause: error },
          );
        }),
        config.timeout,
        'connect',
      );
    }
    return connection;
  }

  /** Reads one complete reply within `timeout` ms. */
  reply(timeout: number, stage: string): Promise<SmtpReply> {
    return this.#guard(this.#readReply(), timeout, stage);
  }

  /** Sends one command line (CRLF added) within `timeout` ms; `shown` replaces it in the transcript. */
  async send(line: string, timeout: number, stage: string, shown?: string): Promise<void> {
    this.#transcript?.({ direction: 'client', line: shown ?? line });
    await this.#guard(this.#write(encoder.encode(`${line}\r\n`)), timeout, stage);
  }

  /** Sends a command and reads its reply. */
  async command(line: string, timeout: number, stage: string, shown?: string): Promise<SmtpReply> {
    await this.send(line, timeout, stage, shown);
    return this.reply(timeout, stage);
  }

  /** Writes raw bytes in blocks of `block` bytes, each within `timeout` ms. */
  async sendBytes(bytes: Uint8Array, timeout: number, stage: string, block = 65536): Promise<void> {
    for (let offset = 0; offset < bytes.length; offset += block) {
      await this.#guard(this.#write(bytes.subarray(offset, offset + block)), timeout, stage);
    }
  }

  /** Switches to TLS (after a 220 to STARTTLS). Throws `PROTOCOL` when the socket can't. */
  startTls(): void {
    if (!this.#socket.startTls)
      throw new RelayError(RelayErrorCode.PROTOCOL, 'this socket can not start TLS');
    if (this.#buffer.length > 0) {
      // Bytes after the 220 would be plaintext injected before the handshake (CVE-2011-0411).
      throw new RelayError(
        RelayErrorCode.PROTOCOL,
        'the server sent data after its STARTTLS reply',
      );
    }
    this.#reader.releaseLock();
    this.#writer.releaseLock();
    this.#socket = this.#socket.startTls();
    this.#reader = this.#socket.readable.getReader();
    this.#writer = this.#socket.writable.getWriter();
  }

  /**
   * Closes the socket; never throws; idempotent. Resolves (never rejects) once the socket's own
   * close settled: the connection no longer counts against the server's limit.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const ignore = (): void => undefined;
    // Cancelling the reader ends a pending read. The writer is left to the socket's close():
    // on workerd, a socket whose writable was aborted never closes its TCP connection.
    this.#reader.cancel().catch(ignore);
    let closing: Promise<unknown>;
    try {
      closing = Promise.resolve(this.#socket.close());
    } catch {
      closing = Promise.resolve(); // already closed
    }
    this.#closing = closing.then(ignore, ignore);
    return this.#closing;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      await this.#writer.write(bytes);
    } catch (error) {
      throw this.#broken('write failed', error);
    }
  }

  async #readReply(): Promise<SmtpReply> {
    const lines: ReplyLine[] = [];
    for (;;) {
      const raw = await this.#readLine();
      this.#transcript?.({ direction: 'server', line: raw });
      const line = parseReplyLine(raw);
      if (!line) {
        throw new RelayError(
          RelayErrorCode.PROTOCOL,
          `not an SMTP reply line: ${JSON.stringify(raw.slice(0, 200))}`,
        );
      }
      if (lines.length > 0 && line.code !== lines[0]!.code) {
        throw new RelayError(RelayErrorCode.PROTOCOL, 'reply lines with different codes');
      }
      lines.push(line);
      if (line.last) return buildReply(lines);
      if (lines.length >= MAX_LINES)
        throw new RelayError(RelayErrorCode.PROTOCOL, 'reply too long');
    }
  }

  async #readLine(): Promise<string> {
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a);
      if (lf >= 0) {
        const end = lf > 0 && this.#buffer[lf - 1] === 0x0d ? lf - 1 : lf;
        const line = decoder.decode(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(lf + 1);
        return line;
      }
      if (this.#buffer.length > MAX_LINE)
        throw new RelayError(RelayErrorCode.PROTOCOL, 'reply line too long');
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await this.#reader.read();
      } catch (error) {
        throw this.#broken('read failed', error);
      }
      if (chunk.done) throw this.#broken('the server closed the connection');
      const merged = new Uint8Array(this.#buffer.length + chunk.value.length);
      merged.set(this.#buffer, 0);
      merged.set(chunk.value, this.#buffer.length);
      this.#buffer = merged;
    }
  }

  #broken(what: string, cause?: unknown): RelayError {
    if (this.#signal.aborted) return aborted();
    const detail = cause === undefined ? '' : `: ${describe(cause)}`;
    return new RelayError(RelayErrorCode.CONNECTION, `${what}${detail}`, { cause });
  }

  /** Settles with `work`, unless `timeout` ms pass or the signal aborts first (then closes). */
  #guard<T>(work: Promise<T>, timeout: number, stage: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        this.#timers.clearTimeout(timer);
        this.#signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (!finish()) return;
        this.close();
        reject(aborted());
      };
      const timer = this.#timers.setTimeout(() => {
        if (!finish()) return;
        this.close();
        reject(
          new RelayError(RelayErrorCode.TIMEOUT, `no progress within ${timeout} ms (${stage})`),
        );
      }, timeout);
      if (this.#signal.aborted) {
        onAbort();
        return;
      }
      this.#signal.addEventListener('abort', onAbort, { once: true });
      work.then(
        (value) => {
          if (finish()) resolve(value);
        },
        (error: unknown) => {
          if (finish()) reject(error);
        },
      );
    });
  }
}

function aborted(): RelayError {
  return new RelayError(RelayErrorCode.ABORTED, 'the delivery was aborted');
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
