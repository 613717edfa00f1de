/**
 * Retry delays of the flusher: exponential, capped, with "equal jitter" (half fixed, half random),
 * so that many tabs or many messages that failed together do not retry in lock step, while every
 * delay stays within known bounds a test can assert: [cap/2, cap] with
 * cap = min(maxMs, baseMs · 2^(attempt-1)).
 */

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** The first retry's upper bound. Default 5 s. */
  readonly baseMs: number;
  /** The largest delay. Default 15 min. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 5_000, maxMs: 15 * 60_000 };

/** The upper bound of the delay after failed attempt number `attempt` (1-based). */
export function backoffCap(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  return Math.min(options.maxMs, options.baseMs * 2 ** exponent);
}

/**
 * The delay before the next attempt after failed attempt number `attempt`, in
 * [cap/2, cap]; `random` returns a number in [0, 1) (inject it in tests).
 */
export function backoffDelay(
  attempt: number,
  random: () => number,
  options: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const cap = backoffCap(attempt, options);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(cap / 2 + (cap / 2) * r);
}

/**
 * The `Retry-After` header as milliseconds (delta-seconds or an HTTP date), or `null` when absent
 * or malformed.
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/u.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
