/**
 * The flusher: hands due outbox messages to the relay Worker, at most once at a time per message
 * across every tab and the service worker, and records the outcome. It uses no DOM: everything
 * it needs (engine, fetch, clock, random, timers, online state) is passed in, so the same code
 * runs in a page, in the service worker's `sync` event, and in Node tests with a ManualClock.
 *
 * Rules (README.md, "The flusher's rules"):
 * - `claimDue` leases a few due messages (`limit`, `leaseTtlMs`); a lease is renewed while its
 *   POST is slow, so no other flusher takes the message meanwhile.
 * - Each message is POSTed to `/v1/messages` with its outbox id as `Idempotency-Key`: if a
 *   response is lost and the message is posted again, the relay answers 200 "duplicate".
 * - 200/202: fenced `deleteMessage`, then a "sent" history entry.
 * - no response, 408, 429, 5xx: attempts + 1, exponential backoff with jitter (Retry-After
 *   respected, bounded), then meta + retry time + release in one fenced `commitAttempt`. Without a response
 *   while the runtime says it is offline, the try does not count as an attempt.
 * - 400/409/413/415 and other 4xx: failed with the reason, held (retry time far in the future)
 *   until "retry now".
 * - 401/403/404/405: a configuration error (token or URL); the message stays queued, and the
 *   pass stops so a bad token is not sent again and again.
 * - Every write is fenced by the lease: a flusher whose lease was taken over writes nothing.
 */
import {
  type Clock,
  type Envelope,
  fromMeta,
  isMailspoolError,
  type Lease,
  type MessageMeta,
  type StorageEngine,
  type StorageSession,
  systemClock,
} from '@mailspool/core';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF, parseRetryAfter } from './backoff.js';
import { bytesToBase64 } from './base64.js';
import { messagesUrl, type RelayConfig } from './config.js';
import type { SentHistory } from './history.js';
import { type ErrorKind, HELD_UNTIL, MetaKey, withMeta } from './meta.js';

/** Timer functions (inject fakes in tests). */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The global timers. */
export const globalTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Options of {@link Flusher}. */
export interface FlusherOptions {
  /** The outbox engine (IndexedDbEngine in browsers, MemoryEngine in tests). */
  readonly engine: StorageEngine;
  /** Where sent messages are recorded. */
  readonly history: SentHistory;
  /** The relay configuration, read at the start of every pass; `null` = not configured (no pass). */
  readonly config: () => RelayConfig | null;
  /** Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
  /** Default the wall clock. Give the engine the same clock. */
  readonly clock?: Clock;
  /** A number in [0, 1); default `Math.random` (only used for backoff jitter). */
  readonly random?: () => number;
  /** Default the global timers (lease renewal and request timeout). */
  readonly timers?: Timers;
  /** Whether the runtime believes it is online; default `navigator.onLine`, or true without it. */
  readonly isOnline?: () => boolean;
  /** Messages leased per claim (default 3): small, so one slow tab does not sit on the queue. */
  readonly limit?: number;
  /** Lease duration in ms (default 60 s); renewed every third of it while a POST runs. */
  readonly leaseTtlMs?: number;
  /** A POST taking longer than this is aborted and counted as a network error (default 45 s). */
  readonly requestTimeoutMs?: number;
  /** Backoff after failed attempts (default 5 s doubling up to 15 min, equal jitter). */
  readonly backoff?: BackoffOptions;
  /** Next try after a failure while offline (default 30 s, jittered down to half). */
  readonly offlineRetryMs?: number;
  /** Next try after a configuration error (default 5 min, jittered down to half). */
  readonly configRetryMs?: number;
  /** A message still undelivered this long after it was queued fails as `expired` (default 5 days, Postfix's maximal_queue_lifetime). */
  readonly maxQueueAgeMs?: number;
  /** Claims per pass at most (default 50): a pass always ends. */
  readonly maxRounds?: number;
  /** Called for every outcome (for the UI and logs); a throwing listener is ignored. */
  readonly onEvent?: (event: FlusherEvent) => void;
}

/** What happened to one leased message. */
export type Outcome =
  | 'sent'
  | 'retry'
  | 'failed'
  | 'offline'
  | 'config'
  | 'stale'
  | 'gone'
  | 'error';

/** An outcome, as reported to `onEvent`. */
export type FlusherEvent =
  | {
      readonly type: 'sent';
      readonly id: string;
      readonly relayId: string | null;
      readonly duplicate: boolean;
    }
  | {
      readonly type: 'retry';
      readonly id: string;
      readonly at: number;
      readonly kind: ErrorKind;
      readonly error: string;
    }
  | {
      readonly type: 'failed';
      readonly id: string;
      readonly kind: ErrorKind;
      readonly error: string;
    }
  | { readonly type: 'offline'; readonly id: string; readonly at: number }
  | { readonly type: 'config'; readonly id: string; readonly at: number; readonly error: string }
  | { readonly type: 'stale'; readonly id: string }
  | { readonly type: 'gone'; readonly id: string }
  | { readonly type: 'error'; readonly id: string; readonly error: unknown };

/** Counts of one {@link Flusher.flush} call. */
export interface FlushReport {
  /** `unconfigured` when no relay is configured: nothing was claimed. */
  /** `offline`: the runtime says it is offline and no probe was due (see `offlineRetryMs`). */
  readonly skipped: 'unconfigured' | 'offline' | null;
  readonly claimed: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
}

type Response2xx = { kind: 'response'; status: number; body: unknown; retryAfter: string | null };
type PostResult = Response2xx | { kind: 'network'; error: unknown };

const DEFAULTS = {
  limit: 3,
  leaseTtlMs: 60_000,
  requestTimeoutMs: 45_000,
  offlineRetryMs: 30_000,
  configRetryMs: 5 * 60_000,
  maxQueueAgeMs: 5 * 24 * 60 * 60_000,
  maxRounds: 50,
} as const;

function emptyOutcomes(): Record<Outcome, number> {
  return { sent: 0, retry: 0, failed: 0, offline: 0, config: 0, stale: 0, gone: 0, error: 0 };
}

/** Delivers due outbox messages to the relay; see the module comment for the rules. */
export class Flusher {
  readonly #engine: StorageEngine;
  readonly #history: SentHistory;
  readonly #config: () => RelayConfig | null;
  readonly #fetch: typeof fetch;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #timers: Timers;
  readonly #isOnline: () => boolean;
  readonly #onEvent: ((event: FlusherEvent) => void) | undefined;
  readonly #backoff: BackoffOptions;
  readonly #o: typeof DEFAULTS;
  #running: Promise<FlushReport> | undefined;
  #again = false;
  /** While offline, the time from which one pass may probe the network anyway. */
  #nextOfflineProbe: number;
  #probeTimer: unknown;

  /** Throws `TypeError` for a bad option. */
  constructor(options: FlusherOptions) {
    if (!options?.engine || !options.history || typeof options.config !== 'function') {
      throw new TypeError('Flusher needs { engine, history, config }');
    }
    this.#engine = options.engine;
    this.#history = options.history;
    this.#config = options.config;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#timers = options.timers ?? globalTimers;
    this.#isOnline =
      options.isOnline ??
      (() => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false);
    this.#onEvent = options.onEvent;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#o = {
      limit: options.limit ?? DEFAULTS.limit,
      leaseTtlMs: options.leaseTtlMs ?? DEFAULTS.leaseTtlMs,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      offlineRetryMs: options.offlineRetryMs ?? DEFAULTS.offlineRetryMs,
      configRetryMs: options.configRetryMs ?? DEFAULTS.configRetryMs,
      maxQueueAgeMs: options.maxQueueAgeMs ?? DEFAULTS.maxQueueAgeMs,
      maxRounds: options.maxRounds ?? DEFAULTS.maxRounds,
    } as typeof DEFAULTS;
    for (const [key, value] of Object.entries(this.#o)) {
      if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${key} must be > 0`);
    }
    this.#nextOfflineProbe = this.#clock.now() + this.#o.offlineRetryMs;
  }

  /** The lease duration in ms (the scheduler re-checks stuck leases after it). */
  get leaseTtlMs(): number {
    return this.#o.leaseTtlMs;
  }

  /**
   * Sends what is due now. Calls made while a pass runs join it and trigger one more pass after
   * it (a message stored meanwhile is not missed). Resolves to the counts of the passes; rejects
   * only when the engine can't be opened or claimed from (`UNAVAILABLE`, ...).
   */
  flush(): Promise<FlushReport> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const run = async (): Promise<FlushReport> => {
      const total = {
        skipped: null as FlushReport['skipped'],
        claimed: 0,
        outcomes: emptyOutcomes(),
      };
      for (let pass = 0; pass < 10; pass++) {
        this.#again = false;
        const report = await this.#pass();
        total.skipped = report.skipped;
        total.claimed += report.claimed;
        for (const key of Object.keys(total.outcomes) as Outcome[]) {
          total.outcomes[key] += report.outcomes[key];
        }
        if (!this.#again) break;
      }
      return total;
    };
    this.#running = run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<FlushReport> {
    const outcomes = emptyOutcomes();
    const config = this.#config();
    if (!config) return { skipped: 'unconfigured', claimed: 0, outcomes };
    // While the runtime says it is offline, a post can only fail, and leasing messages for it
    // would show them as "sending" (until the lease expires) to a tab reloaded meanwhile. So
    // offline passes claim nothing, except one probe per `offlineRetryMs`, for runtimes that say
    // offline wrongly (Chromium in a loopback-only network namespace does).
    if (!this.#isOnline()) {
      const now = this.#clock.now();
      if (now < this.#nextOfflineProbe) {
        this.#armOfflineProbe(this.#nextOfflineProbe - now);
        return { skipped: 'offline', claimed: 0, outcomes };
      }
      this.#nextOfflineProbe = now + this.#o.offlineRetryMs;
    }
    let claimed = 0;
    const session = await this.#engine.connect();
    try {
      for (let round = 0; round < this.#o.maxRounds; round++) {
        const leases = await session.claimDue({ limit: this.#o.limit, ttl: this.#o.leaseTtlMs });
        if (leases.length === 0) break;
        claimed += leases.length;
        const results = await Promise.all(
          leases.map((lease) => this.#deliver(session, lease, config)),
        );
        for (const outcome of results) outcomes[outcome]++;
        // Offline or a bad token: every further post would fail the same way.
        if (results.includes('offline') || results.includes('config')) break;
      }
    } finally {
      await session.close();
    }
    return { skipped: null, claimed, outcomes };
  }

  /** Runs one pass after `ms` (once; later calls while it is armed change nothing). */
  #armOfflineProbe(ms: number): void {
    if (this.#probeTimer !== undefined) return;
    this.#probeTimer = this.#timers.setTimeout(() => {
      this.#probeTimer = undefined;
      this.flush().catch(() => {
        // The engine was unavailable: the next trigger (online, a change, a timer) tries again.
      });
    }, ms);
  }

  async #deliver(session: StorageSession, lease: Lease, config: RelayConfig): Promise<Outcome> {
    const id = lease.id;
    try {
      let meta: MessageMeta;
      let contents: Uint8Array;
      try {
        meta = await session.getMessageMeta(id);
        contents = await session.getMessageContents(id);
      } catch (error) {
        if (isMailspoolError(error, 'NOT_FOUND')) return this.#report({ type: 'gone', id }, 'gone');
        throw error;
      }
      let envelope: Envelope;
      try {
        envelope = fromMeta(meta);
      } catch (error) {
        const reason = `the stored message is unreadable: ${(error as Error).message}`;
        return await this.#fail(session, lease, meta, 1, 'corrupt', reason);
      }
      const attempt = envelope.attempts + 1;
      const sendAt = meta[MetaKey.sendAt];
      const posted = await this.#post(
        session,
        lease,
        config,
        envelope,
        contents,
        typeof sendAt === 'number' ? sendAt : undefined,
      );
      const current = posted.lease;
      const result = posted.result;

      if (result.kind === 'network') {
        const reason = describeNetworkError(result.error);
        if (!this.#isOnline()) {
          return await this.#wait(session, current, meta, 'offline', `offline: ${reason}`);
        }
        return await this.#retry(
          session,
          current,
          meta,
          envelope,
          attempt,
          'network',
          reason,
          null,
        );
      }
      const { status, body } = result;
      if (status === 200 || status === 202) {
        return await this.#sent(session, current, meta, envelope, attempt, body);
      }
      const reason = describeHttpError(status, body);
      if (status === 401 || status === 403 || status === 404 || status === 405) {
        return await this.#wait(session, current, meta, 'config', reason);
      }
      if (status === 408 || status === 429 || status >= 500 || status < 400) {
        const after = parseRetryAfter(result.retryAfter, this.#clock.now());
        return await this.#retry(
          session,
          current,
          meta,
          envelope,
          attempt,
          'unavailable',
          reason,
          after,
        );
      }
      return await this.#fail(session, current, meta, attempt, 'rejected', reason);
    } catch (error) {
      if (isMailspoolError(error, 'STALE_LEASE'))
        return this.#report({ type: 'stale', id }, 'stale');
      if (isMailspoolError(error, 'NOT_FOUND')) return this.#report({ type: 'gone', id }, 'gone');
      // An engine failure (UNAVAILABLE, QUOTA_EXCEEDED...): leave the message as it is; its
      // lease expires and a later pass tries again.
      return this.#report({ type: 'error', id, error }, 'error');
    }
  }

  /** POSTs the message while keeping its lease alive; resolves to the response or the network error. */
  async #post(
    session: StorageSession,
    lease: Lease,
    config: RelayConfig,
    envelope: Envelope,
    contents: Uint8Array,
    sendAt: number | undefined,
  ): Promise<{ result: PostResult; lease: Lease }> {
    const controller = new AbortController();
    let current = lease;
    let renewTimer: unknown;
    const ttl = this.#o.leaseTtlMs;
    const renew = () => {
      renewTimer = this.#timers.setTimeout(() => {
        session.renewLease(current, ttl).then(
          (renewed) => {
            current = renewed;
            if (!controller.signal.aborted) renew();
          },
          // Someone else holds the message now (or the store failed): stop our copy of the post;
          // the fenced writes that follow will find out which.
          () => controller.abort(new Error('the lease was lost during the post')),
        );
      }, ttl / 3);
    };
    renew();
    const timeout = this.#timers.setTimeout(
      () => controller.abort(new Error(`no answer within ${this.#o.requestTimeoutMs} ms`)),
      this.#o.requestTimeoutMs,
    );
    try {
      const response = await this.#fetch(messagesUrl(config), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${config.token}`,
          'content-type': 'application/json',
          'idempotency-key': lease.id,
        },
        body: JSON.stringify({
          from: envelope.sender,
          to: envelope.recipients,
          raw: bytesToBase64(contents),
          // The same value on every retry: it is part of the request's fingerprint.
          ...(sendAt === undefined ? {} : { sendAt }),
        }),
        signal: controller.signal,
      });
      const text = await response.text().catch(() => '');
      let body: unknown = null;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        body = text;
      }
      const retryAfter = response.headers.get('retry-after');
      return {
        result: { kind: 'response', status: response.status, body, retryAfter },
        lease: current,
      };
    } catch (error) {
      return {
        result: { kind: 'network', error: controller.signal.reason ?? error },
        lease: current,
      };
    } finally {
      controller.abort();
      this.#timers.clearTimeout(renewTimer);
      this.#timers.clearTimeout(timeout);
    }
  }

  async #sent(
    session: StorageSession,
    lease: Lease,
    meta: MessageMeta,
    envelope: Envelope,
    attempt: number,
    body: unknown,
  ): Promise<Outcome> {
    // Fenced: if our lease was taken over, the new holder posts again (a relay-side duplicate)
    // and records the send itself; we write nothing.
    await session.deleteMessage(lease.id, { lease });
    const answer =
      typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const relayId = typeof answer.id === 'string' ? answer.id : null;
    const duplicate = answer.duplicate === true;
    try {
      await this.#history.record({
        outboxId: lease.id,
        relayId,
        duplicate,
        sentAt: this.#clock.now(),
        subject: typeof meta[MetaKey.subject] === 'string' ? (meta[MetaKey.subject] as string) : '',
        from:
          typeof meta[MetaKey.from] === 'string' ? (meta[MetaKey.from] as string) : envelope.sender,
        to: Array.isArray(meta[MetaKey.to])
          ? (meta[MetaKey.to] as string[])
          : [...envelope.recipients],
        recipients: envelope.recipients.length,
        attempts: attempt,
        sendAt: typeof meta[MetaKey.sendAt] === 'number' ? (meta[MetaKey.sendAt] as number) : null,
        undoUntil:
          typeof meta[MetaKey.undoUntil] === 'number' ? (meta[MetaKey.undoUntil] as number) : null,
        delivery: null,
      });
    } catch (error) {
      // The mail is with the relay; only its line in the Sent list is lost.
      this.#report({ type: 'error', id: lease.id, error }, 'error');
    }
    return this.#report({ type: 'sent', id: lease.id, relayId, duplicate }, 'sent');
  }

  async #retry(
    session: StorageSession,
    lease: Lease,
    meta: MessageMeta,
    envelope: Envelope,
    attempt: number,
    kind: ErrorKind,
    reason: string,
    retryAfterMs: number | null,
  ): Promise<Outcome> {
    const now = this.#clock.now();
    const queuedAt =
      typeof meta[MetaKey.queuedAt] === 'number'
        ? (meta[MetaKey.queuedAt] as number)
        : envelope.timestamp;
    if (now - queuedAt >= this.#o.maxQueueAgeMs) {
      const why = `gave up after ${attempt} attempts: ${reason}`;
      return this.#fail(session, lease, meta, attempt, 'expired', why);
    }
    let delay = backoffDelay(attempt, this.#random, this.#backoff);
    if (retryAfterMs !== null) delay = Math.max(delay, Math.min(retryAfterMs, this.#backoff.maxMs));
    const at = now + delay;
    // Meta, retry time and release in one fenced commit (one IndexedDB transaction).
    await session.commitAttempt(lease, {
      meta: withMeta(meta, {
        attempts: attempt,
        [MetaKey.status]: 'retry',
        [MetaKey.lastError]: reason,
        [MetaKey.lastErrorKind]: kind,
      }),
      retryAt: at,
    });
    return this.#report({ type: 'retry', id: lease.id, at, kind, error: reason }, 'retry');
  }

  /** Offline or misconfigured: stays queued, not counted as an attempt, tried again later. */
  async #wait(
    session: StorageSession,
    lease: Lease,
    meta: MessageMeta,
    kind: 'offline' | 'config',
    reason: string,
  ): Promise<Outcome> {
    const base = kind === 'offline' ? this.#o.offlineRetryMs : this.#o.configRetryMs;
    const at = this.#clock.now() + Math.round(base / 2 + (base / 2) * this.#random());
    await session.commitAttempt(lease, {
      meta: withMeta(meta, {
        [MetaKey.status]: 'queued',
        [MetaKey.lastError]: reason,
        [MetaKey.lastErrorKind]: kind,
      }),
      retryAt: at,
    });
    const event: FlusherEvent =
      kind === 'offline'
        ? { type: 'offline', id: lease.id, at }
        : { type: 'config', id: lease.id, at, error: reason };
    return this.#report(event, kind);
  }

  async #fail(
    session: StorageSession,
    lease: Lease,
    meta: MessageMeta,
    attempt: number,
    kind: ErrorKind,
    reason: string,
  ): Promise<Outcome> {
    const now = this.#clock.now();
    // Held (retry time at the end of time): never due until "retry now" moves it back.
    await session.commitAttempt(lease, {
      meta: withMeta(meta, {
        attempts: attempt,
        [MetaKey.status]: 'failed',
        [MetaKey.lastError]: reason,
        [MetaKey.lastErrorKind]: kind,
        [MetaKey.failedAt]: now,
      }),
      retryAt: HELD_UNTIL,
    });
    return this.#report({ type: 'failed', id: lease.id, kind, error: reason }, 'failed');
  }

  #report(event: FlusherEvent, outcome: Outcome): Outcome {
    try {
      this.#onEvent?.(event);
    } catch {
      // A listener's bug must not change what was written.
    }
    return outcome;
  }
}

function describeNetworkError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `no answer from the relay (${message})`;
}

/** `413 TOO_LARGE: …` from the relay's `{ error: { code, message } }`, or `HTTP 502`. */
export function describeHttpError(status: number, body: unknown): string {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error && typeof error.code === 'string') {
    const message =
      typeof error.message === 'string' && error.message !== '' ? `: ${error.message}` : '';
    return `${status} ${error.code}${message}`;
  }
  return `HTTP ${status}`;
}
