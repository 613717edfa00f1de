/**
 * The delivery table's mail and its check (delivery.ts). One mail = the anchor message as SMTP
 * sees it: sender, 3 recipients, a few headers and a 10 KiB text body (128 lines of 78 random
 * base64 characters: no dots, no bare CR or LF, so the bytes go through SMTP unchanged).
 *
 * The relay's message id (`s<shard>.<random>`) is made when the mail is stored, after its bytes
 * are written, so the mail can't carry it. Instead each mail carries its run's tag and its index
 * (`X-Bench-Mail: <tag>.<index>`, also in the Subject and Message-ID); the submitter records the
 * id the POST answered for each index, and the receiver attributes each received mail to the
 * shard named by that id (`RelayShard` delivers only mail stored on its own shard).
 */
import { verify } from '../lib/harness.js';

/** The body's size: 128 lines of 78 characters + CRLF. */
export const BODY_BYTES = 10 * 1024;
const LINE = 78;

export const SENDER = 'alice@example.com';
export const RECIPIENTS = ['bob@example.org', 'carol@example.net', 'dave@example.com'] as const;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const encoder = new TextEncoder();

/** Mail `index` of run `tag` (the tag: 8 hex digits). */
export function makeMail(tag: string, index: number): Uint8Array {
  const random = crypto.getRandomValues(new Uint8Array((BODY_BYTES / (LINE + 2)) * LINE));
  const lines: string[] = [];
  for (let at = 0; at < random.length; at += LINE) {
    let line = '';
    for (let i = at; i < at + LINE; i++) line += ALPHABET[random[i]! & 63];
    lines.push(line);
  }
  const head = [
    `From: Alice <${SENDER}>`,
    `To: ${RECIPIENTS.join(', ')}`,
    `Subject: bench ${tag} #${index}`,
    `Message-ID: <${tag}.${index}@bench.mailspool.invalid>`,
    `X-Bench-Mail: ${tag}.${index}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
  ];
  return encoder.encode(`${head.join('\r\n')}\r\n\r\n${lines.join('\r\n')}\r\n`);
}

const MARK = /\r\nX-Bench-Mail: ([0-9a-f]{8})\.(\d+)\r\n/;

/** The `[tag, index]` a received mail carries, or `undefined` for a mail that is not ours. */
export function markOf(raw: Uint8Array): [string, number] | undefined {
  const head = Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 1024)).toString(
    'latin1',
  );
  const match = MARK.exec(head);
  return match ? [match[1]!, Number(match[2])] : undefined;
}

/** A mail as the SMTP receiver got it. */
export interface Received {
  readonly raw: Uint8Array;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** `performance.now()` when its DATA ended. */
  readonly at: number;
}

/** What one run delivered, per shard. */
export interface DeliveryCheck {
  readonly mails: number;
  readonly bytes: number;
  /** Mails delivered by each shard, by shard index. */
  readonly perShard: number[];
  /** When each shard's last mail arrived (`performance.now()`), by shard index. */
  readonly lastAt: number[];
  /** When the last mail arrived. */
  readonly doneAt: number;
}

/**
 * The expected mails of one run and the mails received for it. `accept` takes each received mail
 * (from any run: a mail of another run or none is recorded as foreign and fails the check);
 * `done` resolves once every mail has arrived; `check` verifies: each mail exactly once, its bytes
 * equal to the submitted ones, the envelope as submitted, every mail attributed to a shard that
 * exists, and nothing foreign.
 */
export class DeliveryTally {
  readonly #tag: string;
  readonly #mails: Uint8Array[];
  readonly #shards: number;
  /** The shard each mail was stored on (from the id the POST answered), by index. */
  readonly #shardOf: (number | undefined)[];
  readonly #got: (Received | undefined)[];
  #received = 0;
  readonly #problems: string[] = [];
  #wake: (() => void) | undefined;

  constructor(tag: string, mails: Uint8Array[], shards: number) {
    this.#tag = tag;
    this.#mails = mails;
    this.#shards = shards;
    this.#shardOf = new Array(mails.length);
    this.#got = new Array(mails.length);
  }

  get tag(): string {
    return this.#tag;
  }

  get received(): number {
    return this.#received;
  }

  /** Problems seen so far (a duplicate, a foreign mail, bytes that differ). */
  get problems(): readonly string[] {
    return this.#problems;
  }

  /** Records the id the relay answered for mail `index`. */
  stored(index: number, id: string): void {
    const match = /^s(0|[1-9][0-9]*)\./.exec(id);
    verify(match, `mail ${index}: id ${JSON.stringify(id)} names no shard`);
    const shard = Number(match[1]);
    verify(shard < this.#shards, `mail ${index}: id ${id} names shard ${shard} of ${this.#shards}`);
    verify(this.#shardOf[index] === undefined, `mail ${index} stored twice`);
    this.#shardOf[index] = shard;
  }

  accept(mail: Received): void {
    const mark = markOf(mail.raw);
    if (mark === undefined || mark[0] !== this.#tag || !(mark[1] < this.#mails.length)) {
      this.#problems.push(
        mark ? `a mail of another run (${mark[0]}.${mark[1]})` : 'a mail that is not ours',
      );
    } else if (this.#got[mark[1]] !== undefined) {
      this.#problems.push(`mail ${mark[1]} received twice`);
    } else {
      this.#got[mark[1]] = mail;
      this.#received++;
    }
    if (this.#problems.length > 0 || this.#received === this.#mails.length) this.#wake?.();
  }

  /** Resolves when every mail has arrived; rejects on the first problem or after `timeoutMs`. */
  done(timeoutMs: number, failed?: () => string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => settle(), 50);
      const timer = setTimeout(
        () => settle(`${this.#received} of ${this.#mails.length} mails after ${timeoutMs} ms`),
        timeoutMs,
      );
      const settle = (timeout?: string) => {
        const problem = this.#problems[0] ?? failed?.() ?? timeout;
        if (problem === undefined && this.#received < this.#mails.length) return;
        clearInterval(poll);
        clearTimeout(timer);
        this.#wake = undefined;
        if (problem === undefined) resolve();
        else reject(new Error(`verification failed: ${problem}`));
      };
      this.#wake = () => settle();
      settle();
    });
  }

  /** Verifies the run (see the class) and sums it up per shard. Throws on any mismatch. */
  check(): DeliveryCheck {
    verify(this.#problems.length === 0, this.#problems.join('; '));
    const perShard = new Array<number>(this.#shards).fill(0);
    const lastAt = new Array<number>(this.#shards).fill(Number.NaN);
    const wanted = [...RECIPIENTS].sort().join(',');
    let bytes = 0;
    let doneAt = 0;
    for (const [index, sent] of this.#mails.entries()) {
      const got = this.#got[index];
      const shard = this.#shardOf[index];
      verify(got, `mail ${index} never arrived`);
      verify(shard !== undefined, `mail ${index} has no stored id`);
      // What was submitted, after the relay's one `Received:` trace header (folded lines).
      const raw = Buffer.from(got.raw);
      const body = raw.subarray(raw.byteLength - sent.byteLength);
      const trace = raw.subarray(0, raw.byteLength - sent.byteLength).toString('latin1');
      verify(Buffer.from(sent).equals(body), `mail ${index}: bytes differ`);
      verify(
        /^Received: [^\r\n]*(\r\n\t[^\r\n]*)*\r\n$/.test(trace),
        `mail ${index}: no trace header`,
      );
      verify(got.mailFrom === SENDER, `mail ${index}: MAIL FROM <${got.mailFrom}>`);
      verify(
        [...got.rcptTo].sort().join(',') === wanted,
        `mail ${index}: RCPT TO ${got.rcptTo.join(',')}`,
      );
      bytes += body.byteLength;
      perShard[shard]!++;
      if (Number.isNaN(lastAt[shard]!) || got.at > lastAt[shard]!) lastAt[shard] = got.at;
      doneAt = Math.max(doneAt, got.at);
    }
    verify(this.#received === this.#mails.length, `${this.#received} mails counted`);
    return { mails: this.#mails.length, bytes, perShard, lastAt, doneAt };
  }
}
