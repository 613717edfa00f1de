/**
 * Metrics: counters and histograms each shard keeps in its own SQLite storage, next to the queue
 * they count, so they survive restarts and deploys; `GET /metrics` adds up every shard of every
 * tenant and renders the Prometheus text exposition format (version 0.0.4).
 *
 * What changes with a message (attempts, deliveries, bounces, delay warnings, the delivery
 * latency) is counted by `RelayShard.onMessageChange` in the transaction of the change itself:
 * a count is never lost or doubled by a crash. What the relay loop sees without a commit (lost
 * leases, failovers) and submission latencies (measured by the Worker) are added afterwards.
 *
 * Counters are monotonic per shard, as Prometheus expects; a shard's storage is only ever reset
 * by deleting the Durable Object, which Prometheus' `rate()` treats as a counter reset.
 */
import type { QueueStats } from '@mailspool/core';
import type { LimiterStats, WaitReason } from './limiter.js';

/** Upper bounds (seconds) of the delivery latency buckets: submission → delivered. */
export const DELIVERY_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14_400, 86_400] as const;
/** Upper bounds (seconds) of the submission latency buckets: request → stored. */
export const SUBMISSION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

export type Histogram = 'delivery_latency_seconds' | 'submission_latency_seconds';
const BUCKETS: Record<Histogram, readonly number[]> = {
  delivery_latency_seconds: DELIVERY_BUCKETS,
  submission_latency_seconds: SUBMISSION_BUCKETS,
};

/** The counters a shard keeps (name → the label values it may carry; `''`: none). */
export type Counter =
  | 'attempts_total'
  | 'deliveries_total'
  | 'bounces_total'
  | 'delay_warnings_total'
  | 'lease_expiries_total'
  | 'attempt_errors_total'
  | 'failovers_total';

/** How long the hourly delivery counts are kept (the status page shows the last 24 h). */
const HOURLY_KEEP_HOURS = 48;
const HOUR_MS = 3_600_000;

/** What one shard answers `metricsSnapshot` with. */
export interface ShardMetricsSnapshot {
  /** `[name, label, value]`: counters and histogram parts (bucket counts not cumulative). */
  readonly counters: readonly (readonly [string, string, number])[];
  /** `[hour (epoch ms / 1 h), result, count]` for the last {@link HOURLY_KEEP_HOURS} hours. */
  readonly hourly: readonly (readonly [number, 'delivered' | 'bounced', number])[];
  readonly stats: QueueStats;
  /** When the oldest message still queued was stored (epoch ms); `null`: none. */
  readonly oldestAt: number | null;
}

/** A shard's metrics tables, created on the first count (a shard never counted has none). */
export class ShardMetrics {
  readonly #sql: SqlStorage;
  #ready = false;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  #tables(): SqlStorage {
    if (!this.#ready) {
      this.#sql.exec(
        'CREATE TABLE IF NOT EXISTS relay_counters (name TEXT NOT NULL, label TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, label))',
      );
      this.#sql.exec(
        'CREATE TABLE IF NOT EXISTS relay_hourly (hour INTEGER NOT NULL, result TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (hour, result))',
      );
      this.#ready = true;
    }
    return this.#sql;
  }

  #exists(): boolean {
    if (this.#ready) return true;
    return (
      this.#sql
        .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'relay_counters'")
        .toArray().length > 0
    );
  }

  /** Adds `by` to counter `name` (`label`: e.g. the `result` of an attempt). */
  add(name: Counter | string, label = '', by = 1): void {
    if (!(by > 0)) return;
    this.#tables().exec(
      'INSERT INTO relay_counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value',
      name,
      label,
      by,
    );
  }

  /** Counts one observation of `seconds` in `histogram`. */
  observe(histogram: Histogram, seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    const bound = BUCKETS[histogram].find((le) => seconds <= le);
    this.add(`${histogram}_bucket`, bound === undefined ? '+Inf' : String(bound));
    this.add(`${histogram}_count`);
    // `add` skips 0; a sum of 0 still exists once counted.
    if (seconds > 0) this.add(`${histogram}_sum`, '', seconds);
  }

  /** Counts one message finished as `result` in the hour of `at` (for the status page). */
  hourly(result: 'delivered' | 'bounced', at: number): void {
    const hour = Math.floor(at / HOUR_MS);
    const sql = this.#tables();
    sql.exec(
      'INSERT INTO relay_hourly (hour, result, count) VALUES (?, ?, 1) ON CONFLICT (hour, result) DO UPDATE SET count = count + 1',
      hour,
      result,
    );
    sql.exec('DELETE FROM relay_hourly WHERE hour < ?', hour - HOURLY_KEEP_HOURS);
  }

  /** The counters and hourly counts (without creating the tables of a shard never counted). */
  read(): Pick<ShardMetricsSnapshot, 'counters' | 'hourly'> {
    if (!this.#exists()) return { counters: [], hourly: [] };
    const counters = this.#sql
      .exec<{ name: string; label: string; value: number }>(
        'SELECT name, label, value FROM relay_counters',
      )
      .toArray()
      .map((row) => [row.name, row.label, row.value] as const);
    const hourly = this.#sql
      .exec<{ hour: number; result: 'delivered' | 'bounced'; count: number }>(
        'SELECT hour, result, count FROM relay_hourly',
      )
      .toArray()
      .map((row) => [row.hour, row.result, row.count] as const);
    return { counters, hourly };
  }
}

// ---- rendering --------------------------------------------------------------------------------

/** A label value in the exposition format: backslash, double quote and newline escaped. */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Record<string, string>): string {
  const parts = Object.entries(pairs).map(([k, v]) => `${k}="${labelValue(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** A sample value: integers as such, other numbers with enough digits, never `NaN`. */
function sample(value: number): string {
  return Number.isFinite(value)
    ? String(Number.isInteger(value) ? value : +value.toPrecision(12))
    : '0';
}

/** The attempt results counted (an attempt's commit: the message delivered, deferred or bounced). */
export const ATTEMPT_RESULTS = ['delivered', 'deferred', 'bounced'] as const;

/** Sums the snapshots of one tenant's shards. */
function sumTenant(snapshots: readonly ShardMetricsSnapshot[]) {
  const counters = new Map<string, number>();
  const stats = { total: 0, active: 0, deferred: 0, due: 0 };
  let oldestAt: number | null = null;
  for (const snapshot of snapshots) {
    for (const [name, label, value] of snapshot.counters) {
      const key = `${name}\u0000${label}`;
      counters.set(key, (counters.get(key) ?? 0) + value);
    }
    stats.total += snapshot.stats.total;
    stats.active += snapshot.stats.active;
    stats.deferred += snapshot.stats.deferred;
    stats.due += snapshot.stats.due;
    if (snapshot.oldestAt !== null && (oldestAt === null || snapshot.oldestAt < oldestAt))
      oldestAt = snapshot.oldestAt;
  }
  return {
    get: (name: string, label = '') => counters.get(`${name}\u0000${label}`) ?? 0,
    stats,
    oldestAt,
  };
}

/** Every tenant's shard snapshots → the `/metrics` text, at `now` (epoch ms). */
export function renderMetrics(
  tenants: readonly { readonly tenant: string; readonly shards: readonly ShardMetricsSnapshot[] }[],
  now: number,
): string {
  const summed = tenants.map(({ tenant, shards }) => ({ tenant, ...sumTenant(shards) }));
  const out: string[] = [];
  const family = (
    name: string,
    type: 'counter' | 'gauge' | 'histogram',
    help: string,
    lines: (t: (typeof summed)[number]) => string[],
  ) => {
    out.push(`# HELP mailspool_${name} ${help}`, `# TYPE mailspool_${name} ${type}`);
    for (const tenant of summed) out.push(...lines(tenant));
  };
  const line = (name: string, pairs: Record<string, string>, value: number) =>
    `mailspool_${name}${labels(pairs)} ${sample(value)}`;

  family(
    'queue_messages',
    'gauge',
    'Messages in the queue, by state (due: waiting for a relayer; sending: in an attempt; deferred: waiting for a retry, a scheduled time or a release).',
    (t) =>
      (['due', 'sending', 'deferred'] as const).map((state) =>
        line(
          'queue_messages',
          { tenant: t.tenant, state },
          state === 'sending' ? t.stats.active : t.stats[state],
        ),
      ),
  );
  family(
    'queue_oldest_message_age_seconds',
    'gauge',
    'Age of the oldest message in the queue (0 when it is empty).',
    (t) => [
      line(
        'queue_oldest_message_age_seconds',
        { tenant: t.tenant },
        t.oldestAt === null ? 0 : Math.max(0, (now - t.oldestAt) / 1000),
      ),
    ],
  );
  family(
    'attempts_total',
    'counter',
    'Delivery attempts, by result (delivered: every recipient done; deferred: some will be retried; bounced: the message ended with a failed recipient).',
    (t) =>
      ATTEMPT_RESULTS.map((result) =>
        line('attempts_total', { tenant: t.tenant, result }, t.get('attempts_total', result)),
      ),
  );
  const simple: [Counter, string][] = [
    ['deliveries_total', 'Messages delivered to every recipient (DSNs the relay sent included).'],
    ['bounces_total', 'Messages that left the queue with at least one failed recipient.'],
    ['delay_warnings_total', 'Delay warnings (DSNs with Action: delayed) queued for senders.'],
    [
      'lease_expiries_total',
      'Attempts that lost their lease (it expired before their commit) and wrote nothing.',
    ],
    [
      'attempt_errors_total',
      'Attempts that ended in an unexpected error (store unavailable, corrupt meta).',
    ],
    ['failovers_total', 'Switches to the next smarthost after one could not be reached.'],
  ];
  for (const [name, help] of simple) {
    family(name, 'counter', help, (t) => [line(name, { tenant: t.tenant }, t.get(name))]);
  }
  const histogram = (name: Histogram, help: string) =>
    family(name, 'histogram', help, (t) => {
      let cumulative = 0;
      const lines = BUCKETS[name].map((le) => {
        cumulative += t.get(`${name}_bucket`, String(le));
        return line(`${name}_bucket`, { tenant: t.tenant, le: String(le) }, cumulative);
      });
      cumulative += t.get(`${name}_bucket`, '+Inf');
      lines.push(line(`${name}_bucket`, { tenant: t.tenant, le: '+Inf' }, cumulative));
      lines.push(line(`${name}_sum`, { tenant: t.tenant }, t.get(`${name}_sum`)));
      lines.push(line(`${name}_count`, { tenant: t.tenant }, t.get(`${name}_count`)));
      return lines;
    });
  histogram('submission_latency_seconds', 'From a submission request to its message being stored.');
  histogram(
    'delivery_latency_seconds',
    'From submission to the message being delivered to every recipient.',
  );
  return `${out.join('\n')}\n`;
}

/** A limiter's name (`smarthost:<host>:<port>`, `tenant:<tenant>`) and what it counted. */
export interface LimiterSnapshot {
  readonly name: string;
  readonly stats: LimiterStats;
}

const WAIT_REASONS: readonly WaitReason[] = ['slots', 'rate', 'suspended', 'probe'];

/**
 * The limiters' series (limiter.ts), each labelled with the limiter's name: relay runs that
 * waited, by reason; connection slots in use; leases that expired unreleased; suspensions of a
 * smarthost and whether it is suspended now; submissions refused by a daily quota. Limiters keep
 * these in their own storage, so they survive restarts as the shards' counters do.
 */
export function renderLimiterMetrics(limiters: readonly LimiterSnapshot[], now: number): string {
  if (limiters.length === 0) return '';
  const out: string[] = [];
  const family = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    lines: (limiter: LimiterSnapshot) => [Record<string, string>, number][],
  ) => {
    out.push(`# HELP mailspool_${name} ${help}`, `# TYPE mailspool_${name} ${type}`);
    for (const limiter of limiters) {
      for (const [pairs, value] of lines(limiter)) {
        out.push(
          `mailspool_${name}${labels({ limiter: limiter.name, ...pairs })} ${sample(value)}`,
        );
      }
    }
  };
  family(
    'limiter_waits_total',
    'counter',
    'Relay runs a limiter held back, by reason (slots: every connection in use; rate: no token left; suspended: the smarthost is suspended; probe: waiting for the probe after a suspension).',
    (l) => WAIT_REASONS.map((reason) => [{ reason }, l.stats.waits[reason] ?? 0]),
  );
  family('limiter_slots_in_use', 'gauge', 'Connection slots leased now.', (l) => [
    [{}, l.stats.slotsInUse],
  ]);
  family(
    'limiter_expired_leases_total',
    'counter',
    'Slot leases that expired without a release (their holder crashed or hung).',
    (l) => [[{}, l.stats.expiredLeases]],
  );
  family(
    'limiter_suspensions_total',
    'counter',
    'Times the smarthost was suspended after consecutive connection failures or 421 replies.',
    (l) => [[{}, l.stats.suspensions]],
  );
  family('limiter_suspended', 'gauge', '1 while the smarthost is suspended, else 0.', (l) => [
    [{}, l.stats.suspendedUntil !== null && l.stats.suspendedUntil > now ? 1 : 0],
  ]);
  family(
    'limiter_quota_refused_total',
    'counter',
    'Submissions refused with 429 RATE_LIMITED because the daily quota was spent.',
    (l) => [[{}, l.stats.quotaRefused]],
  );
  return `${out.join('\n')}\n`;
}

/** Delivered and bounced messages of the last 24 hours, in total and per hour (oldest first). */
export function lastDay(
  snapshots: readonly ShardMetricsSnapshot[],
  now: number,
): {
  delivered: number;
  bounced: number;
  perHour: { hour: number; delivered: number; bounced: number }[];
} {
  const current = Math.floor(now / HOUR_MS);
  const perHour = Array.from({ length: 24 }, (_, i) => ({
    hour: (current - 23 + i) * HOUR_MS,
    delivered: 0,
    bounced: 0,
  }));
  for (const snapshot of snapshots) {
    for (const [hour, result, count] of snapshot.hourly) {
      const slot = perHour[hour - (current - 23)];
      if (slot) slot[result] += count;
    }
  }
  return {
    delivered: perHour.reduce((sum, h) => sum + h.delivered, 0),
    bounced: perHour.reduce((sum, h) => sum + h.bounced, 0),
    perHour,
  };
}
