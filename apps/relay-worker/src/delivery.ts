/**
 * Delivery: `RelayShard` is the queue's Durable Object. When its alarm finds due mail, the shard
 * relays its own due messages (claimDue → SMTP → fenced commit) through the configured smarthost,
 * on its own store with no RPC, so N shards deliver N disjoint sets of mail in parallel. Bounces
 * are queued on the same shard and delivered the same way.
 *
 * Every queue change that matters to the sender is recorded in the same transaction as the
 * change (`onMessageChange`): a delivery record (records.ts) and, for a tenant with a webhook,
 * an event in the shard's outbox, POSTed by the alarm (webhooks.ts). The SMTP replies come from
 * the attempt itself: the relayer this shard hands the relay loop notes each attempt's outcomes
 * in memory, and the attempt's commit, in this same object, turns them into the record.
 */
import { isMailspoolError, type Lease, type MessageId, type MessageMeta } from '@mailspool/core';
import {
  type DueEvent,
  type MessageChange,
  type OutboxEntry,
  QueueShard,
  type ShardLocalEngine,
} from '@mailspool/durable-objects';
import {
  type DelayWarningOptions,
  type DeliverOptions,
  type DeliveryResult,
  isRelayError,
  type OutgoingMessage,
  type RecipientOutcome,
  RelayErrorCode,
  type Relayer,
  RelayMetaKey,
  type RelayRunReport,
  runRelayOnce,
} from '@mailspool/relay';
import { type RelayConfig, type RelayEnv, readConfig } from './config.js';
import { logEvent, logRelayEvent } from './log.js';
import { type Counter, ShardMetrics, type ShardMetricsSnapshot } from './metrics.js';
import { SEND_AT_KEY } from './queue.js';
import {
  type AttemptNote,
  type DeliveryRecord,
  nextRecord,
  parseRecord,
  recordStatus,
} from './records.js';
import { tenantView } from './redact.js';
import { DeliveryLimits, type RunGrant } from './run-limits.js';
import { smarthostRelayer, smarthostsOf } from './smarthosts.js';
import { tenantOfShard, tenantShardName } from './tenants.js';
import { withTraceHeader } from './trace.js';
import { deliverEvent, eventBody } from './webhooks.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** How long a cancel or an operator's delete holds its message's lease (one commit). */
const END_LEASE_MS = 30_000;

/** What `RelayShard.endMessage` did. */
export type EndResult = 'ended' | 'sending' | 'not_found';

/** Messages leased per relay run; at most `RELAY_CONCURRENCY` SMTP connections at once. */
const BATCH = 10;
/**
 * SMTP connections a shard opens at once: below Workers' limit of 6 simultaneous outgoing
 * connections per invocation.
 */
export const RELAY_CONCURRENCY = 4;
/** Runs per alarm, and the time after which an alarm starts no new run: the rest is handed on. */
const RUNS_PER_ALARM = 10;
const ALARM_BUDGET_MS = 30_000;
/**
 * Lease of a message being delivered. Renewed every third of it while the attempt runs, so a
 * slow SMTP exchange keeps its lease; a relayer that died (the runtime was killed) frees its
 * messages within this time, and the shard's alarm, armed at the lease's expiry, retries them.
 */
export const LEASE_TTL_MS = 60_000;
/**
 * Lease of a relay run's connection slots and tokens at the limiters (limiter.ts), renewed every
 * third of it while the run lasts: the slots of a shard that crashed mid-run are free again
 * within this time.
 */
export const SLOT_LEASE_MS = 15_000;

export class RelayShard extends QueueShard<RelayEnv> {
  /** The latest attempt's outcomes per message, from the relayer to the attempt's commit. */
  readonly #attempts = new Map<MessageId, AttemptNote>();
  /** Cancels and deletes in progress, by message, with the lease token they hold. */
  readonly #endings = new Map<MessageId, { token: number; reason: 'canceled' | 'deleted' }>();
  /** When a limiter told this alarm's runs to wait until: the next alarm comes then. */
  #limitedUntil: number | undefined;
  #metricsTables: ShardMetrics | undefined;

  /** This shard's counters (metrics.ts), in its own storage. */
  get #metrics(): ShardMetrics {
    this.#metricsTables ??= new ShardMetrics(this.ctx.storage.sql);
    return this.#metricsTables;
  }

  protected override async onDue(event: DueEvent): Promise<void> {
    const config = readConfig(this.env);
    const tenant = this.#tenant(config);
    const engine = tenant === undefined ? undefined : this.localEngine();
    if (tenant === undefined || engine === undefined) {
      // Thrown, so the alarm retries with backoff (at most every 5 minutes): the mail is kept and
      // goes out as soon as the configuration names its tenant again.
      throw new Error(
        `shard ${event.name ?? event.shard} has due mail but no configured tenant; retrying`,
      );
    }
    const limits = new DeliveryLimits(
      this.env,
      config,
      tenant,
      event.name ?? event.shard,
      SLOT_LEASE_MS,
      { now: () => this.shardTime() },
      () => this.#urgency(),
    );
    const { waitUntil } = await deliverDue(
      engine,
      config,
      tenant,
      this.#attempts,
      limits,
      (name, by) => this.#metrics.add(name, '', by),
    );
    this.#limitedUntil = waitUntil;
  }

  /**
   * After an alarm whose runs a limiter held back, the next one comes when the limiter said
   * (the due mail stays due, untouched, meanwhile); otherwise the base class's backoff.
   */
  protected override retryDelay(attempt: number): number {
    const until = this.#limitedUntil;
    this.#limitedUntil = undefined;
    return until === undefined ? super.retryDelay(attempt) : Math.max(0, until - this.shardTime());
  }

  /**
   * The priority rank of this shard's most urgent due mail (0 high … 2 bulk; 1 when none is due),
   * so the smarthost's limiter gives a freed connection to the shard with the most urgent mail.
   * Read through the shard's own wire protocol (`peekDue`, the order `claimDue` takes).
   */
  async #urgency(): Promise<number> {
    const call = { op: 'peekDue', args: [1, this.shardTime()] } as unknown as Parameters<
      QueueShard['call']
    >[0][number];
    const [answer] = await this.call([call], 0);
    const keys = (answer as { ok?: readonly { priority?: unknown }[] } | undefined)?.ok;
    const rank = keys?.[0]?.priority;
    return typeof rank === 'number' ? rank : 1;
  }

  protected override outboxRetryDelay(attempt: number): number {
    return super.retryDelay(attempt);
  }

  /**
   * Runs the alarm now: an operator's flush lifted a suspension, and the due mail that waited
   * for it should not wait for the wake-up the limiter gave. (An earlier alarm is always safe:
   * the alarm re-arms itself from the stored state.)
   */
  async wake(): Promise<void> {
    this.#limitedUntil = undefined;
    await this.ctx.storage.setAlarm(Date.now());
  }

  // ---- RPC methods (called by the Worker's fetch handler, app.ts) ------------------------------

  /**
   * The stored delivery record of `id` as JSON text `{ data, expiresAt }` (`data`: a
   * {@link DeliveryRecord}), or `null` when there is none or it expired.
   */
  deliveryRecord(id: string): string | null {
    if (typeof id !== 'string') return null;
    const stored = this.readRecord(id);
    return stored === undefined
      ? null
      : JSON.stringify({ data: JSON.parse(stored.data), expiresAt: stored.expiresAt });
  }

  /**
   * Takes `id` out of the queue as `reason` (a tenant's cancel, an operator's delete) in one
   * fenced step, recorded as such: `sending` (nothing changed) while an attempt holds the
   * message's lease, so no SMTP transaction is ever cut off or followed by a "canceled".
   */
  async endMessage(id: string, reason: 'canceled' | 'deleted'): Promise<EndResult> {
    if (reason !== 'canceled' && reason !== 'deleted') throw new TypeError('bad reason');
    const engine = this.localEngine();
    if (engine === undefined) return 'not_found';
    const session = await engine.connect();
    try {
      let lease: Lease | null;
      try {
        lease = await session.acquireLease(id, END_LEASE_MS);
      } catch (error) {
        if (isMailspoolError(error, 'NOT_FOUND') || error instanceof TypeError) return 'not_found';
        throw error;
      }
      if (lease === null) return 'sending';
      this.#endings.set(id, { token: lease.token, reason });
      try {
        await session.commitAttempt(lease, { delete: true });
      } finally {
        this.#endings.delete(id);
      }
      return 'ended';
    } finally {
      await session.close();
    }
  }

  /**
   * This shard's metrics: its counters, hourly delivery counts, queue counts and the time its
   * oldest queued message was stored (see metrics.ts). Never creates anything.
   */
  async metricsSnapshot(): Promise<ShardMetricsSnapshot> {
    const engine = this.localEngine();
    let stats = { total: 0, active: 0, deferred: 0, due: 0 };
    let oldestAt: number | null = null;
    if (engine !== undefined) {
      const session = await engine.connect();
      try {
        stats = await session.stats();
      } finally {
        await session.close();
      }
      if (stats.total > 0) {
        // The store's own column: when each message was stored (a message being uploaded has
        // no meta yet and is not one).
        const row = this.ctx.storage.sql
          .exec<{ at: number | null }>(
            'SELECT min(created_at) AS at FROM messages WHERE meta IS NOT NULL',
          )
          .one();
        oldestAt = row.at;
      }
    }
    return { ...this.#metrics.read(), stats, oldestAt };
  }

  /** Counts one submission that took `seconds` from its request to its stored message. */
  noteSubmission(seconds: number): void {
    if (typeof seconds === 'number') this.#metrics.observe('submission_latency_seconds', seconds);
  }

  // ---- records and events ------------------------------------------------------------------

  /**
   * Inside the transaction of every change to a message: updates its delivery record and queues
   * the event it announces. Builds nothing from contents; never throws for a bad record or
   * configuration (the mail matters more than its record: that is logged instead).
   */
  protected override onMessageChange(change: MessageChange): void {
    let config: RelayConfig | undefined;
    try {
      config = readConfig(this.env);
    } catch {
      config = undefined; // the fetch handler reports a bad configuration; keep the record
    }
    let previous: MessageMeta | null;
    try {
      previous = change.previousMeta();
    } catch {
      return; // corrupt meta: nothing to record
    }
    const now = this.shardTime();
    const ending = this.#endings.get(change.id);
    const existing = this.readRecord(change.id);
    const output = nextRecord({
      kind: change.kind,
      ended: change.ended,
      previous,
      next: change.meta,
      existing: existing === undefined ? undefined : parseRecord(existing.data),
      attempt: this.#attempts.get(change.id),
      ending:
        ending !== undefined && ending.token === change.lease?.token ? ending.reason : undefined,
      now,
    });
    // A note serves the one commit of its attempt: the one that ends the message or counts it.
    const counted =
      change.meta !== undefined && previous !== null && change.meta.attempts !== previous.attempts;
    const attempt = this.#attempts.get(change.id);
    if (change.ended || counted) this.#attempts.delete(change.id);
    if (output === undefined || previous === null) return;
    this.#count(change, previous, output, attempt !== undefined && (change.ended || counted), now);
    const retentionMs = (config?.retentionDays ?? 7) * DAY_MS;
    const expiresAt = change.ended ? now + retentionMs : null;
    this.keepRecord(change.id, JSON.stringify(output.record), expiresAt);
    const tenant = config === undefined ? undefined : tenantOfShard(this.shardName);
    if (
      output.event === undefined ||
      config === undefined ||
      tenant === undefined ||
      output.record.bounce ||
      !config.webhooks.has(tenant)
    ) {
      return;
    }
    const status = recordStatus(
      change.id,
      output.record,
      output.record.state ?? 'deferred',
      change.ended ? null : (change.retryAt ?? null),
      expiresAt,
    );
    this.enqueueOutbox(change.id, eventBody(output.event, tenantView(status, config), now));
  }

  /**
   * Counts what `change` did (metrics.ts), in its transaction: an attempt by its result, a
   * message delivered or bounced, its delivery latency, a delay warning. A failure to count is
   * logged and never undoes the change.
   */
  #count(
    change: MessageChange,
    previous: MessageMeta,
    output: NonNullable<ReturnType<typeof nextRecord>>,
    attempted: boolean,
    now: number,
  ): void {
    try {
      const metrics = this.#metrics;
      const { event, record } = output;
      if (attempted) {
        const result =
          event === 'message.delivered'
            ? 'delivered'
            : event === 'message.bounced'
              ? 'bounced'
              : 'deferred';
        metrics.add('attempts_total', result);
      }
      if (change.ended && record.state === 'delivered') {
        metrics.add('deliveries_total');
        metrics.observe('delivery_latency_seconds', (now - record.receivedAt) / 1000);
        metrics.hourly('delivered', now);
      } else if (change.ended && record.state === 'bounced') {
        metrics.add('bounces_total');
        metrics.hourly('bounced', now);
      }
      if (
        change.meta?.[RelayMetaKey.DELAY_WARNED] !== undefined &&
        previous[RelayMetaKey.DELAY_WARNED] === undefined
      ) {
        metrics.add('delay_warnings_total');
      }
    } catch (error) {
      logEvent({ event: 'metrics-error', error: String(error) });
    }
  }

  /**
   * POSTs one event to its tenant's webhook; throws (retried with backoff) while the receiver
   * fails. An event older than the retention period, or of a tenant whose webhook was removed,
   * is dropped with a log line: it describes a record that is gone, or nobody wants it.
   */
  protected override async deliverOutboxEntry(entry: OutboxEntry): Promise<void> {
    const config = readConfig(this.env);
    const tenant = this.#tenant(config);
    if (tenant === undefined) throw new Error('the shard has no configured tenant');
    const target = config.webhooks.get(tenant);
    if (
      target === undefined ||
      entry.createdAt < this.shardTime() - config.retentionDays * DAY_MS
    ) {
      console.warn(`mailspool[${tenant}]: dropped webhook event of ${entry.stream}`);
      return;
    }
    await deliverEvent(target, entry.body);
  }

  /**
   * The configured tenant this shard belongs to. Its name comes from its own storage (the shard
   * stores it the first time a request names it); a shard that has none yet (it was created
   * before shards stored their names, and the runtime started it without one) is recognised by
   * comparing its id with the ids of every configured tenant's shard names, and stores the name.
   */
  #tenant(config: RelayConfig): string | undefined {
    let name = this.shardName;
    if (name === undefined) {
      name = findShardName(this.env, config, this.ctx.id);
      if (name !== undefined) this.rememberName(name);
    }
    const tenant = tenantOfShard(name);
    return tenant !== undefined && config.tenants.has(tenant) ? tenant : undefined;
  }
}

export function findShardName(
  env: RelayEnv,
  config: RelayConfig,
  id: DurableObjectId,
): string | undefined {
  for (const tenant of config.tenants.keys()) {
    for (let index = 0; index < config.shards; index++) {
      const name = tenantShardName(tenant, index);
      if (env.QUEUE_SHARD.idFromName(name).equals(id)) return name;
    }
  }
  return undefined;
}

/** How long a relay run waits in its alarm for a limiter's go; a longer wait ends the alarm. */
const LIMIT_WAIT_MS = 2_000;

/**
 * Relays the due mail of one shard (`engine`, the shard's local engine) until none is due, the
 * runs or the time budget are spent, within `limits` (limiter.ts): resolves to how many messages
 * were leased, and, when a limiter made the shard wait longer than this alarm should, until when.
 */
export async function deliverDue(
  engine: ShardLocalEngine,
  config: RelayConfig,
  tenant: string,
  notes: Map<MessageId, AttemptNote>,
  limits?: DeliveryLimits,
  count: (name: Counter, by: number) => void = () => {},
): Promise<{ handled: number; waitUntil: number | undefined }> {
  let failovers = 0;
  const smtp = smarthostRelayer(smarthostsOf(config, tenant), config.hostname, (failover) => {
    failovers++;
    logEvent({ event: 'failover', tenant, ...failover });
  });
  // The outcomes of this alarm's attempts, for the log lines of their events (the notes are
  // taken by the commits before the events are told).
  const replies = new Map<MessageId, readonly RecipientOutcome[]>();
  const relayer = noting(withTraceHeader(smtp, tenant, config.hostname), notes, replies);
  const started = Date.now();
  let handled = 0;
  for (let run = 0; run < RUNS_PER_ALARM && Date.now() - started < ALARM_BUDGET_MS; run++) {
    let grant: RunGrant | undefined;
    if (limits?.active) {
      const permit = await limits.acquire(BATCH, RELAY_CONCURRENCY);
      if (!permit.ok) {
        const wait = permit.retryAt - limits.clock.now();
        if (wait > LIMIT_WAIT_MS || Date.now() + wait - started >= ALARM_BUDGET_MS) {
          return { handled, waitUntil: permit.retryAt };
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
        run--; // a wait is not a run
        continue;
      }
      grant = permit.grant;
    }
    let report: RelayRunReport | undefined;
    try {
      report = await runRelayOnce({
        engine,
        relayer: grant ? grant.relayer(relayer) : relayer,
        batchSize: grant?.batch ?? BATCH,
        concurrency: grant?.concurrency ?? RELAY_CONCURRENCY,
        leaseTtl: LEASE_TTL_MS,
        reportingMta: config.hostname,
        ...delayWarningOf(config),
        onEvent: (event) => logRelayEvent(tenant, event, replies.get(event.id)),
      });
    } finally {
      // The slots are the connections: free only once they are closed, QUIT included.
      if (grant) {
        await smtp.idle();
        await grant.release(report?.claimed ?? 0);
      }
    }
    handled += report.claimed;
    replies.clear();
    // An attempt that lost its lease or failed wrote nothing: forget what its relayer said.
    let expired = 0;
    let errors = 0;
    for (const message of report.messages) {
      if (
        message.outcome === 'lease-lost' ||
        message.outcome === 'error' ||
        message.outcome === 'postponed'
      )
        notes.delete(message.id);
      if (message.outcome === 'lease-lost') expired++;
      if (message.outcome === 'error') errors++;
    }
    count('lease_expiries_total', expired);
    count('attempt_errors_total', errors);
    count('failovers_total', failovers);
    failovers = 0;
    if (report.claimed < (grant?.batch ?? BATCH)) break;
  }
  return { handled, waitUntil: undefined };
}

/**
 * The relay loop's delay warning option for `DELAY_WARNING_HOURS` (none for 0). A scheduled send
 * waits from its scheduled time, not from its submission.
 */
export function delayWarningOf(config: Pick<RelayConfig, 'delayWarningHours'>): {
  delayWarning?: DelayWarningOptions;
} {
  if (config.delayWarningHours <= 0) return {};
  return {
    delayWarning: {
      after: config.delayWarningHours * HOUR_MS,
      since: (envelope, meta) => Math.max(envelope.timestamp, Number(meta[SEND_AT_KEY]) || 0),
    },
  };
}

/**
 * `relayer`, noting each attempt's outcomes in `notes` for the attempt's commit (see
 * `RelayShard.onMessageChange`). A rejection is noted as the relay loop reads it: a temporary
 * failure of every pending recipient (`INVALID_ADDRESS`: a permanent one), unless the lease was
 * lost, when the loop writes nothing.
 */
function noting(
  relayer: Relayer,
  notes: Map<MessageId, AttemptNote>,
  replies: Map<MessageId, readonly RecipientOutcome[]>,
): Relayer {
  return {
    async deliver(message: OutgoingMessage, options: DeliverOptions): Promise<DeliveryResult> {
      const pending = message.envelope.recipients;
      try {
        const result = await relayer.deliver(message, options);
        const outcomes = Array.isArray(result?.recipients) ? result.recipients : [];
        notes.set(message.id, { pending, outcomes, at: Date.now() });
        replies.set(message.id, outcomes);
        return result;
      } catch (error) {
        if (options.signal.aborted) notes.delete(message.id);
        else {
          const permanent = isRelayError(error, RelayErrorCode.INVALID_ADDRESS);
          const text = error instanceof Error ? error.message : String(error);
          notes.set(message.id, {
            pending,
            outcomes: pending.map((recipient) => ({
              recipient,
              status: permanent ? 'failed' : 'deferred',
              diagnostic: { status: permanent ? '5.1.3' : '4.0.0', text },
            })),
            at: Date.now(),
          });
        }
        throw error;
      }
    },
  };
}
