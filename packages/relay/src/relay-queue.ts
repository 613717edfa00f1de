/**
 * The relay loop: lease due messages with `claimDue`, hand each to a `Relayer`, and act on the
 * result with fenced writes only (a write made with a lease someone else has since replaced is
 * refused by the engine with `STALE_LEASE`, and the loop then writes nothing more).
 *
 * Per message, after one attempt:
 * - every pending recipient delivered → the message is deleted;
 * - some delivered → they are recorded in `delivered` and never sent to again;
 * - some deferred (4xx, no answer) → `attempts + 1`, next try from the retry policy; when the
 *   policy gives up they count as failed;
 * - some failed (5xx) → one DSN for them to the sender (dropped when the message is a bounce);
 * - with `delayWarning`, the first attempt that defers once the message waited that long also
 *   queues one delay warning (a DSN with `Action: delayed`) to the sender; never a second one.
 * See README.md for the order of the writes and why neither a message nor its bounce can be
 * lost or duplicated.
 */
import {
  type Clock,
  type Envelope,
  ErrorCode,
  fromMeta,
  isMailspoolError,
  type Lease,
  type MessageId,
  type MessageMeta,
  type MetaValue,
  type StorageEngine,
  type StorageSession,
  systemClock,
} from '@mailspool/core';
import { buildBounce, buildDelayNotice } from './bounce.js';
import { isRelayError, RelayErrorCode } from './errors.js';
import { keepLease, type LeaseKeeper } from './lease-keeper.js';
import {
  type DeliveryResult,
  type Diagnostic,
  formatDiagnostic,
  type RecipientOutcome,
  type Relayer,
} from './relayer.js';
import { ExponentialBackoff, type RetryPolicy } from './retry-policy.js';
import { pendingRecipients, RelayMetaKey, readRelayState } from './state.js';
import { systemTimers, type Timers } from './timers.js';

/** Something the loop did, for logs and metrics; `id` is the queue id of the message. */
export type RelayEvent =
  | { readonly type: 'delivered'; readonly id: MessageId; readonly recipients: readonly string[] }
  | {
      readonly type: 'deferred';
      readonly id: MessageId;
      readonly recipients: readonly string[];
      readonly retryAt: number;
      readonly diagnostic: string;
    }
  | {
      readonly type: 'bounced';
      readonly id: MessageId;
      readonly bounceId: MessageId;
      readonly recipients: readonly string[];
    }
  /** Recipients of a bounce (sender `''`) that failed: a bounce is never bounced, so they are dropped. */
  | {
      readonly type: 'bounce-dropped';
      readonly id: MessageId;
      readonly recipients: readonly string[];
      readonly diagnostic: string;
    }
  /** A delay warning (`warningId`, a DSN with `Action: delayed`) was queued for the sender. */
  | {
      readonly type: 'delay-warned';
      readonly id: MessageId;
      readonly warningId: MessageId;
      readonly recipients: readonly string[];
    }
  /** The message is finished and removed from the queue. */
  | { readonly type: 'completed'; readonly id: MessageId }
  /** The relayer did not try (see `DeliveryResult.postponed`): due again at `retryAt`. */
  | {
      readonly type: 'postponed';
      readonly id: MessageId;
      readonly retryAt: number;
      readonly reason: string;
    }
  /** The lease was taken over: the loop stopped and wrote nothing. */
  | { readonly type: 'lease-lost'; readonly id: MessageId }
  /** An unexpected failure (the store was unavailable, stored data was corrupt...). */
  | { readonly type: 'error'; readonly id: MessageId; readonly error: unknown };

/** What happened to one message in one run. */
export interface MessageReport {
  readonly id: MessageId;
  /**
   * `completed`: removed from the queue; `deferred`: scheduled again; `lease-lost`: someone else
   * holds it now and nothing was written; `error`: see the `error` event (the lease then simply
   * expires and the message is tried again later); `postponed`: the relayer did not try, and
   * the message is due again at `retryAt` with nothing else changed.
   */
  readonly outcome: 'completed' | 'deferred' | 'postponed' | 'lease-lost' | 'error';
  readonly delivered: readonly string[];
  readonly deferred: readonly string[];
  readonly failed: readonly string[];
  readonly bounceId?: MessageId;
  /** The delay warning this attempt queued, if it queued one. */
  readonly warningId?: MessageId;
  readonly retryAt?: number;
}

/** When to warn the sender that a message is delayed (see {@link RelayOptions.delayWarning}). */
export interface DelayWarningOptions {
  /** How long a message may wait before the attempt that defers it warns its sender (ms, > 0). */
  readonly after: number;
  /**
   * From when the wait counts (epoch ms). Default: the envelope's `timestamp` (submission). A
   * scheduled send would count from its scheduled time.
   */
  readonly since?: (envelope: Envelope, meta: MessageMeta) => number;
}

/** What one run did. */
export interface RelayRunReport {
  /** Messages leased by this run. */
  readonly claimed: number;
  readonly messages: readonly MessageReport[];
}

/** Options of {@link RelayQueue} and {@link runRelayOnce}; durations in ms. */
export interface RelayOptions {
  readonly engine: StorageEngine;
  readonly relayer: Relayer;
  /** Default: `new ExponentialBackoff()` (Postfix's defaults). */
  readonly policy?: RetryPolicy;
  /** Default: the wall clock. Use the engine's clock. */
  readonly clock?: Clock;
  /** Default: the runtime's timers. Drive them with the same clock in tests (`ManualTimers`). */
  readonly timers?: Timers;
  /** Messages leased per run (default 10). */
  readonly batchSize?: number;
  /** Messages delivered at once (default 4). */
  readonly concurrency?: number;
  /**
   * Lease duration (default 60 s). It is renewed every `renewInterval` while the attempt runs, so
   * it need not outlast a slow SMTP exchange; it bounds how long the mail of a relayer that died
   * mid-attempt waits before another one takes it.
   */
  readonly leaseTtl?: number;
  /** Lease renewal period during a delivery (default `leaseTtl / 3`). */
  readonly renewInterval?: number;
  /** This MTA's name in DSNs (default `localhost`). */
  readonly reportingMta?: string;
  /** Retry time for a message whose stored meta is corrupt (default 1 h): kept, not hot-looped. */
  readonly corruptRetryDelay?: number;
  /** Called for every {@link RelayEvent}; exceptions it throws are ignored. */
  readonly onEvent?: (event: RelayEvent) => void;
  /**
   * Delay warnings (RFC 3464 `Action: delayed`), once per message, stored in the commit of the
   * attempt that deferred it. Default: none. Never for a bounce (sender `''`).
   */
  readonly delayWarning?: DelayWarningOptions;
}

interface Resolved {
  readonly engine: StorageEngine;
  readonly relayer: Relayer;
  readonly policy: RetryPolicy;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly leaseTtl: number;
  readonly renewInterval: number;
  readonly reportingMta: string;
  readonly corruptRetryDelay: number;
  readonly delayWarning: DelayWarningOptions | undefined;
  readonly emit: (event: RelayEvent) => void;
}

const MAX_LAST_ERROR = 1000;

/** Default lease of a message being relayed: 60 s, renewed every 20 s during the attempt. */
export const DEFAULT_LEASE_TTL_MS = 60_000;

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved < 1)
    throw new TypeError(`${name} must be an integer >= 1`);
  return resolved;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const resolved = value ?? fallback;
  if (!Number.isFinite(resolved) || resolved <= 0) throw new TypeError(`${name} must be > 0`);
  return resolved;
}

function resolve(options: RelayOptions): Resolved {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('the relay needs options');
  if (typeof options.engine?.connect !== 'function')
    throw new TypeError('options.engine must be a StorageEngine');
  if (typeof options.relayer?.deliver !== 'function')
    throw new TypeError('options.relayer must be a Relayer');
  const leaseTtl = positive(options.leaseTtl, DEFAULT_LEASE_TTL_MS, 'leaseTtl');
  const onEvent = options.onEvent;
  const delayWarning = options.delayWarning;
  if (delayWarning !== undefined) {
    positive(delayWarning.after, 1, 'delayWarning.after');
    if (delayWarning.since !== undefined && typeof delayWarning.since !== 'function')
      throw new TypeError('delayWarning.since must be a function');
  }
  return {
    engine: options.engine,
    relayer: options.relayer,
    policy: options.policy ?? new ExponentialBackoff(),
    clock: options.clock ?? systemClock,
    timers: options.timers ?? systemTimers,
    batchSize: positiveInteger(options.batchSize, 10, 'batchSize'),
    concurrency: positiveInteger(options.concurrency, 4, 'concurrency'),
    leaseTtl,
    renewInterval: positive(options.renewInterval, leaseTtl / 3, 'renewInterval'),
    reportingMta: options.reportingMta ?? 'localhost',
    corruptRetryDelay: positive(options.corruptRetryDelay, 60 * 60_000, 'corruptRetryDelay'),
    delayWarning,
    emit: (event) => {
      try {
        onEvent?.(event);
      } catch {
        // A logging hook must not change what the queue does.
      }
    },
  };
}

/** The relay loop over one engine. */
export class RelayQueue {
  readonly #options: Resolved;

  /** Throws `TypeError` for missing engine/relayer or out-of-range numbers. */
  constructor(options: RelayOptions) {
    this.#options = resolve(options);
  }

  /**
   * Leases up to `batchSize` due messages and relays them, `concurrency` at a time. Resolves with
   * a report once every leased message was handled; a failure of one message is reported (an
   * `error` event and outcome), not thrown. Rejects only when the engine can't be reached
   * (`UNAVAILABLE` from `connect` or `claimDue`).
   */
  async runOnce(): Promise<RelayRunReport> {
    const o = this.#options;
    const session = await o.engine.connect();
    try {
      const leases = await session.claimDue({ limit: o.batchSize, ttl: o.leaseTtl });
      const messages: MessageReport[] = new Array(leases.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < leases.length) {
          const index = next++;
          messages[index] = await relayOne(o, session, leases[index]!);
        }
      };
      const workers = Math.min(o.concurrency, leases.length);
      await Promise.all(Array.from({ length: workers }, worker));
      return { claimed: leases.length, messages };
    } finally {
      await session.close();
    }
  }

  /**
   * Runs {@link runOnce} until a run claims nothing or `maxRounds` runs were made (default 100):
   * empties what is due now. Resolves with every run's report.
   */
  async drain(maxRounds = 100): Promise<RelayRunReport[]> {
    const reports: RelayRunReport[] = [];
    for (let round = 0; round < maxRounds; round++) {
      const report = await this.runOnce();
      reports.push(report);
      if (report.claimed === 0) break;
    }
    return reports;
  }
}

/** One run of the relay loop: `new RelayQueue(options).runOnce()`. */
export function runRelayOnce(options: RelayOptions): Promise<RelayRunReport> {
  return new RelayQueue(options).runOnce();
}

// ---- one message ------------------------------------------------------------------------------

class LeaseLost extends Error {}

function isStale(error: unknown): boolean {
  return isMailspoolError(error, ErrorCode.STALE_LEASE);
}

async function relayOne(
  o: Resolved,
  session: StorageSession,
  claimed: Lease,
): Promise<MessageReport> {
  const id = claimed.id;
  const base = { id, delivered: [], deferred: [], failed: [] };
  let lease: Lease;
  try {
    // The lease may have waited for a free worker: refresh it (and learn early if it was lost).
    lease = await session.renewLease(claimed, o.leaseTtl);
  } catch (error) {
    if (isStale(error)) {
      o.emit({ type: 'lease-lost', id });
      return { ...base, outcome: 'lease-lost' };
    }
    o.emit({ type: 'error', id, error });
    return { ...base, outcome: 'error' };
  }
  const keeper = keepLease(session, lease, {
    ttl: o.leaseTtl,
    interval: o.renewInterval,
    timers: o.timers,
    clock: o.clock,
  });
  try {
    return await attempt(o, session, id, keeper);
  } catch (error) {
    if (error instanceof LeaseLost || isStale(error) || keeper.signal.aborted) {
      o.emit({ type: 'lease-lost', id });
      return { ...base, outcome: 'lease-lost' };
    }
    o.emit({ type: 'error', id, error });
    return { ...base, outcome: 'error' };
  } finally {
    await keeper.stop();
  }
}

async function attempt(
  o: Resolved,
  session: StorageSession,
  id: MessageId,
  keeper: LeaseKeeper,
): Promise<MessageReport> {
  const fence = (): { lease: Lease } => {
    if (keeper.signal.aborted) throw new LeaseLost();
    return { lease: keeper.lease };
  };
  const meta = await session.getMessageMeta(id);
  let envelope: Envelope;
  let state: ReturnType<typeof readRelayState>;
  try {
    envelope = fromMeta(meta);
    state = readRelayState(meta);
  } catch (error) {
    if (!isMailspoolError(error, ErrorCode.CORRUPT)) throw error;
    // Keep the message for an operator, out of the way of the loop.
    await session.setMessageRetry(id, o.clock.now() + o.corruptRetryDelay, fence());
    await session.releaseLease(keeper.lease);
    throw error;
  }

  const pending = pendingRecipients(envelope, state);
  if (pending.length === 0) {
    await session.deleteMessage(id, fence());
    o.emit({ type: 'completed', id });
    return { id, outcome: 'completed', delivered: [], deferred: [], failed: [] };
  }

  const contents = await session.getMessageContents(id);
  fence();
  let result: DeliveryResult;
  try {
    result = await o.relayer.deliver(
      { id, envelope: { ...envelope, recipients: pending }, contents },
      { signal: keeper.signal },
    );
  } catch (error) {
    if (keeper.signal.aborted) throw new LeaseLost();
    result = { recipients: failureOutcomes(pending, error) };
  }
  // Let an in-flight renewal settle so that a takeover it discovers is not missed.
  await keeper.stop();
  fence();

  const postponed = result?.postponed;
  if (postponed !== undefined && Number.isFinite(postponed.until)) {
    // Not an attempt: only the retry time changes, in one fenced commit.
    const retryAt = Math.max(postponed.until, o.clock.now());
    await session.commitAttempt(keeper.lease, { retryAt });
    o.emit({ type: 'postponed', id, retryAt, reason: String(postponed.reason) });
    return { id, outcome: 'postponed', delivered: [], deferred: [], failed: [], retryAt };
  }

  const outcomes = normalize(pending, result);
  const now = o.clock.now();
  const attempts = envelope.attempts + 1;
  const delivered = outcomes.filter((r) => r.status === 'delivered');
  const failed = outcomes.filter((r) => r.status === 'failed');
  let deferred = outcomes.filter((r) => r.status === 'deferred');
  let retryAt: number | undefined;
  if (deferred.length > 0) {
    const decision = o.policy.next({ attempts, receivedAt: envelope.timestamp, now });
    if (decision.retry) {
      retryAt = decision.retryAt;
    } else {
      failed.push(...deferred.map((r) => gaveUp(r, decision.reason, attempts)));
      deferred = [];
    }
  }

  const next: Record<string, MetaValue> = {
    ...(meta as Record<string, MetaValue>),
    attempts,
    [RelayMetaKey.DELIVERED]: [...state.delivered, ...delivered.map((r) => r.recipient)],
    [RelayMetaKey.FAILED]: [...state.failed, ...failed.map((r) => r.recipient)],
    [RelayMetaKey.LAST_ATTEMPT]: now,
  };
  if (deferred.length > 0) {
    next[RelayMetaKey.LAST_ERROR] = formatDiagnostic(deferred[0]!.diagnostic).slice(
      0,
      MAX_LAST_ERROR,
    );
  }

  // The DSN for the failed recipients (never for a bounce: those are dropped).
  const bounce =
    failed.length > 0 && envelope.sender !== ''
      ? buildBounce({ id, envelope, contents, failed, reportingMta: o.reportingMta, now })
      : undefined;

  const finished = deferred.length === 0;
  const warning = finished
    ? undefined
    : delayWarning(o, id, envelope, meta, contents, deferred, now);
  if (warning !== undefined) next[RelayMetaKey.DELAY_WARNED] = now;
  // The commit: one atomic, fenced step. The original is deleted (finished) or updated and
  // released (deferred), and the DSNs are stored, together or not at all: a takeover makes it
  // STALE_LEASE and nothing of this attempt is written (no warning either, so the next attempt
  // still warns).
  const dsns = [bounce, warning].filter((dsn) => dsn !== undefined);
  const stored = await session.commitAttempt(keeper.lease, {
    ...(finished ? { delete: true } : { meta: next, retryAt: retryAt! }),
    store: dsns.map((dsn) => ({ meta: dsn.meta, contents: dsn.contents })),
  });
  const bounceId = bounce ? stored[0] : undefined;
  const warningId = warning ? stored[bounce ? 1 : 0] : undefined;

  if (delivered.length > 0)
    o.emit({ type: 'delivered', id, recipients: delivered.map((r) => r.recipient) });
  if (failed.length > 0) {
    if (bounceId !== undefined) {
      o.emit({ type: 'bounced', id, bounceId, recipients: failed.map((r) => r.recipient) });
    } else {
      o.emit({
        type: 'bounce-dropped',
        id,
        recipients: failed.map((r) => r.recipient),
        diagnostic: formatDiagnostic(failed[0]!.diagnostic),
      });
    }
  }

  const report = {
    id,
    delivered: delivered.map((r) => r.recipient),
    deferred: deferred.map((r) => r.recipient),
    failed: failed.map((r) => r.recipient),
    ...(bounceId !== undefined ? { bounceId } : {}),
    ...(warningId !== undefined ? { warningId } : {}),
  };
  if (warningId !== undefined) {
    o.emit({ type: 'delay-warned', id, warningId, recipients: report.deferred });
  }

  if (finished) {
    o.emit({ type: 'completed', id });
    return { ...report, outcome: 'completed' };
  }
  o.emit({
    type: 'deferred',
    id,
    recipients: deferred.map((r) => r.recipient),
    retryAt: retryAt!,
    diagnostic: formatDiagnostic(deferred[0]!.diagnostic),
  });
  return { ...report, outcome: 'deferred', retryAt: retryAt! };
}

/**
 * The delay warning this deferring attempt queues, if it is the first attempt since the message
 * waited `delayWarning.after`, the message has a sender to tell and was never warned before.
 */
function delayWarning(
  o: Resolved,
  id: MessageId,
  envelope: Envelope,
  meta: MessageMeta,
  contents: Uint8Array,
  deferred: readonly RecipientOutcome[],
  now: number,
) {
  const options = o.delayWarning;
  if (options === undefined || envelope.sender === '' || deferred.length === 0) return undefined;
  // Any value counts as warned: a warning too few is better than one too many.
  if (meta[RelayMetaKey.DELAY_WARNED] !== undefined) return undefined;
  const since = options.since?.(envelope, meta) ?? envelope.timestamp;
  if (now - since < options.after) return undefined;
  const until = o.policy.giveUpAt?.(envelope.timestamp);
  return buildDelayNotice({
    id,
    envelope,
    contents,
    delayed: deferred,
    reportingMta: o.reportingMta,
    now,
    ...(until !== undefined && Number.isFinite(until) ? { willRetryUntil: until } : {}),
  });
}

/** One outcome per pending recipient: the relayer's, or `deferred` when it left one out. */
function normalize(pending: readonly string[], result: DeliveryResult): RecipientOutcome[] {
  const byRecipient = new Map<string, RecipientOutcome>();
  const list = Array.isArray(result?.recipients) ? result.recipients : [];
  for (const outcome of list) {
    if (
      outcome &&
      typeof outcome.recipient === 'string' &&
      !byRecipient.has(outcome.recipient) &&
      (outcome.status === 'delivered' ||
        outcome.status === 'deferred' ||
        outcome.status === 'failed') &&
      typeof outcome.diagnostic?.status === 'string' &&
      typeof outcome.diagnostic.text === 'string'
    ) {
      byRecipient.set(outcome.recipient, outcome);
    }
  }
  const missing: Diagnostic = { status: '4.0.0', text: 'the relayer reported no outcome' };
  return pending.map(
    (recipient) =>
      byRecipient.get(recipient) ?? { recipient, status: 'deferred', diagnostic: missing },
  );
}

/** The outcomes when the relayer rejected instead of answering. */
function failureOutcomes(pending: readonly string[], error: unknown): RecipientOutcome[] {
  const text = error instanceof Error ? error.message : String(error);
  const permanent = isRelayError(error, RelayErrorCode.INVALID_ADDRESS);
  const diagnostic: Diagnostic = { status: permanent ? '5.1.3' : '4.0.0', text };
  return pending.map((recipient) => ({
    recipient,
    status: permanent ? 'failed' : 'deferred',
    diagnostic,
  }));
}

/** A deferred recipient turned failed because the retry policy gave up (RFC 3463 5.4.7). */
function gaveUp(
  outcome: RecipientOutcome,
  reason: 'attempts' | 'lifetime',
  attempts: number,
): RecipientOutcome {
  const why =
    reason === 'lifetime'
      ? `delivery time expired after ${attempts} attempts`
      : `gave up after ${attempts} attempts`;
  const diagnostic: Diagnostic = {
    status: '5.4.7',
    text: `${why}; last error: ${formatDiagnostic(outcome.diagnostic)}`,
    ...(outcome.diagnostic.remoteMta ? { remoteMta: outcome.diagnostic.remoteMta } : {}),
  };
  return { recipient: outcome.recipient, status: 'failed', diagnostic };
}
