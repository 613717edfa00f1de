/**
 * Dead-destination back-off (Postfix's "dead destination", KumoMTA's automatic suspension): the
 * state a smarthost's limiter keeps about whether to send to it at all, and how it changes with
 * each outcome. Pure functions of that state and the caller's time; the limiter Durable Object
 * (limiter.ts) stores it, so every shard sees the same suspension.
 *
 * - `threshold` consecutive destination failures (the connection could not be opened or broke,
 *   or the server said `421` / "too many connections") suspend every delivery to the smarthost
 *   for `baseMs`.
 * - When the suspension ends, one delivery is let through: the probe. Success resumes
 *   everything (and the next suspension starts again at `baseMs`); failure suspends again for
 *   twice as long, up to `maxMs`.
 * - A success anywhere resets the count of consecutive failures.
 * - An operator's flush lifts the suspension at once.
 */

/** How a smarthost is suspended; durations in ms. */
export interface SuspensionPolicy {
  /** The first suspension (`SUSPEND_SECONDS`). */
  readonly baseMs: number;
  /** The longest one: each failed probe doubles the suspension up to this. */
  readonly maxMs: number;
  /** Consecutive destination failures that suspend. */
  readonly threshold: number;
}

/** Consecutive destination failures that suspend a smarthost. */
export const SUSPEND_THRESHOLD = 3;
/** The longest suspension: one hour. */
export const MAX_SUSPEND_MS = 3_600_000;

export interface SuspensionState {
  /** Destination failures in a row, over every shard. */
  readonly failures: number;
  /**
   * `null`: not suspended. A time in the future: suspended until then. A time past: the
   * suspension is over but no probe has succeeded yet (only the probe may send).
   */
  readonly suspendedUntil: number | null;
  /** The length of the latest suspension (0: none since the last success). */
  readonly lastMs: number;
  /** Suspensions started (for metrics): a first one, and each failed probe. */
  readonly suspensions: number;
  /** Suspensions ended by a successful probe or a flush. */
  readonly resumptions: number;
}

export const NOT_SUSPENDED: SuspensionState = {
  failures: 0,
  suspendedUntil: null,
  lastMs: 0,
  suspensions: 0,
  resumptions: 0,
};

/** `suspended`: send nothing before `until`; `probe`: only one probe may go; `open`: send. */
export type SuspensionPhase =
  | { readonly phase: 'open' }
  | { readonly phase: 'suspended'; readonly until: number }
  | { readonly phase: 'probe' };

export function phaseOf(state: SuspensionState, now: number): SuspensionPhase {
  if (state.suspendedUntil === null) return { phase: 'open' };
  return now < state.suspendedUntil
    ? { phase: 'suspended', until: state.suspendedUntil }
    : { phase: 'probe' };
}

/** The state after a delivery that reached the server and was not refused at connect. */
export function afterSuccess(state: SuspensionState): SuspensionState {
  if (state.suspendedUntil === null)
    return state.failures === 0 ? state : { ...state, failures: 0 };
  return {
    ...state,
    failures: 0,
    suspendedUntil: null,
    lastMs: 0,
    resumptions: state.resumptions + 1,
  };
}

/** The state after a destination failure at `now`. */
export function afterFailure(
  state: SuspensionState,
  now: number,
  policy: SuspensionPolicy,
): SuspensionState {
  const failures = state.failures + 1;
  const phase = phaseOf(state, now);
  // A delivery that was already running when the suspension began: it changes nothing.
  if (phase.phase === 'suspended') return { ...state, failures };
  if (phase.phase === 'probe') {
    const lastMs = Math.min(policy.maxMs, Math.max(policy.baseMs, state.lastMs * 2));
    return {
      ...state,
      failures,
      suspendedUntil: now + lastMs,
      lastMs,
      suspensions: state.suspensions + 1,
    };
  }
  if (failures < policy.threshold) return { ...state, failures };
  return {
    ...state,
    failures,
    suspendedUntil: now + policy.baseMs,
    lastMs: policy.baseMs,
    suspensions: state.suspensions + 1,
  };
}

/** The state after an operator's flush: not suspended, failures forgotten. */
export function lifted(state: SuspensionState): SuspensionState {
  return {
    ...state,
    failures: 0,
    suspendedUntil: null,
    lastMs: 0,
    resumptions: state.suspendedUntil === null ? state.resumptions : state.resumptions + 1,
  };
}
