/**
 * When to try a temporarily failed message again, and when to give up. The defaults follow
 * Postfix (`minimal_backoff_time` 300 s, `maximal_backoff_time` 4000 s, `maximal_queue_lifetime`
 * 5 d), in milliseconds like the rest of mailspool.
 */

/** What a policy decides from. */
export interface RetryInput {
  /** Attempts made so far, this one included (≥ 1). */
  readonly attempts: number;
  /** When the message entered the queue (the envelope's `timestamp`, epoch ms). */
  readonly receivedAt: number;
  /** The time of the decision (epoch ms). */
  readonly now: number;
}

/** The decision: retry at `retryAt`, or give up (bounce) with a reason for the DSN. */
export type RetryDecision =
  | { readonly retry: true; readonly retryAt: number }
  | { readonly retry: false; readonly reason: 'attempts' | 'lifetime' };

/** Decides the next attempt after a temporary failure. */
export interface RetryPolicy {
  next(input: RetryInput): RetryDecision;
  /**
   * The time after which a message received at `receivedAt` is given up (a delay warning's
   * `Will-Retry-Until`), when the policy has one.
   */
  giveUpAt?(receivedAt: number): number | undefined;
}

/** Options of {@link ExponentialBackoff}; durations in ms. */
export interface ExponentialBackoffOptions {
  /** The first delay and the smallest ever. Default 300 000 (Postfix `minimal_backoff_time`). */
  readonly minDelay?: number;
  /** The largest delay. Default 4 000 000 (Postfix `maximal_backoff_time`). */
  readonly maxDelay?: number;
  /** Each delay is this many times the previous one (before jitter). Default 2. */
  readonly factor?: number;
  /**
   * Spread in [0, 1]: a delay `d` becomes uniformly random in `d × [1 − jitter, 1 + jitter]`,
   * then clamped to [minDelay, maxDelay]. Spreads retries of messages that failed together.
   * Default 0.2.
   */
  readonly jitter?: number;
  /** Give up once this many attempts were made. Default: no limit (Postfix has none). */
  readonly maxAttempts?: number;
  /** Give up once the message is this old. Default 5 days (Postfix `maximal_queue_lifetime`). */
  readonly maxLifetime?: number;
  /** A source of uniform numbers in [0, 1); inject one for deterministic tests. Default `Math.random`. */
  readonly random?: () => number;
}

/** Postfix's defaults, in ms. */
export const POSTFIX_DEFAULTS = {
  minDelay: 300_000,
  maxDelay: 4_000_000,
  maxLifetime: 5 * 24 * 60 * 60 * 1000,
} as const;

/**
 * Exponential backoff with jitter, bounded by a number of attempts and a queue lifetime.
 * Delay after attempt `n`: `min(maxDelay, minDelay × factor^(n−1))`, jittered, clamped to
 * [minDelay, maxDelay]. A retry is never scheduled past the lifetime's end: the last one happens
 * at the deadline, and the next temporary failure then gives up.
 */
export class ExponentialBackoff implements RetryPolicy {
  readonly minDelay: number;
  readonly maxDelay: number;
  readonly factor: number;
  readonly jitter: number;
  readonly maxAttempts: number;
  readonly maxLifetime: number;
  readonly #random: () => number;

  /** Throws `TypeError` for options out of range (negative delays, min > max, jitter outside [0, 1]...). */
  constructor(options: ExponentialBackoffOptions = {}) {
    this.minDelay = options.minDelay ?? POSTFIX_DEFAULTS.minDelay;
    this.maxDelay = options.maxDelay ?? POSTFIX_DEFAULTS.maxDelay;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.2;
    this.maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
    this.maxLifetime = options.maxLifetime ?? POSTFIX_DEFAULTS.maxLifetime;
    this.#random = options.random ?? Math.random;
    if (!(Number.isFinite(this.minDelay) && this.minDelay > 0))
      throw new TypeError('minDelay must be a finite number > 0');
    if (!(Number.isFinite(this.maxDelay) && this.maxDelay >= this.minDelay))
      throw new TypeError('maxDelay must be a finite number >= minDelay');
    if (!(Number.isFinite(this.factor) && this.factor >= 1))
      throw new TypeError('factor must be a finite number >= 1');
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new TypeError('jitter must be in [0, 1]');
    if (!(this.maxAttempts >= 1)) throw new TypeError('maxAttempts must be >= 1');
    if (!(this.maxLifetime > 0)) throw new TypeError('maxLifetime must be > 0');
    if (typeof this.#random !== 'function') throw new TypeError('random must be a function');
  }

  /** The delay (ms) after `attempts` attempts, jitter included, within [minDelay, maxDelay]. */
  delay(attempts: number): number {
    const exponent = Math.max(0, attempts - 1);
    const base = Math.min(this.maxDelay, this.minDelay * this.factor ** exponent);
    const spread = this.jitter * (2 * this.#random() - 1);
    return Math.round(Math.min(this.maxDelay, Math.max(this.minDelay, base * (1 + spread))));
  }

  /** The end of the message's lifetime (`receivedAt + maxLifetime`). */
  giveUpAt(receivedAt: number): number {
    return receivedAt + this.maxLifetime;
  }

  next({ attempts, receivedAt, now }: RetryInput): RetryDecision {
    if (attempts >= this.maxAttempts) return { retry: false, reason: 'attempts' };
    const deadline = receivedAt + this.maxLifetime;
    if (now >= deadline) return { retry: false, reason: 'lifetime' };
    return { retry: true, retryAt: Math.min(now + this.delay(attempts), deadline) };
  }
}
