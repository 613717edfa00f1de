/**
 * Limits shared by every shard and isolate: `RelayLimiter` is a Durable Object, one per limited
 * thing (`smarthost:<host>:<port>`, `tenant:<tenant>`), so every shard that delivers through the
 * same smarthost, or for the same tenant, asks the same object. It holds:
 *
 * - **concurrency slots** (`SMARTHOST_MAX_CONNECTIONS`): a shard leases up to as many as it will
 *   open connections for one relay run, and releases them when the run's connections are closed.
 *   A lease expires (`leaseMs`, renewed while the run lasts), so the slots of a shard that
 *   crashed mid-run come back on their own;
 * - a **token bucket** per rate (`SMARTHOST_RATE_PER_MINUTE`, a tenant's `perHour`): one token
 *   per message sent, refilled continuously, full at the start (a burst of one window's worth);
 *   tokens a run leased but did not use are given back;
 * - a **daily quota** (a tenant's `perDay`): submissions counted per UTC day, refused at the
 *   API (`429 RATE_LIMITED`) once spent;
 * - the smarthost's **suspension** (suspension.ts).
 *
 * Every method takes the caller's time (`now`, epoch ms), like the queue shards do: the state is
 * a function of the calls and their times only (no alarms), so tests drive it with any clock,
 * and callers' clocks agree on Workers. Each method is one synchronous step over state kept in
 * the object's SQLite storage, so calls never interleave.
 *
 * Counters for metrics (grants, waits by reason, lease expiries, suspensions…) are kept with the
 * state and read with {@link RelayLimiter.stats}.
 */
import { DurableObject } from 'cloudflare:workers';
import type { RelayConfig, RelayEnv } from './config.js';
import { ApiError } from './http/errors.js';
import { type Smarthost, smarthostsOf } from './smarthosts.js';
import {
  afterFailure,
  afterSuccess,
  lifted,
  MAX_SUSPEND_MS,
  NOT_SUSPENDED,
  phaseOf,
  SUSPEND_THRESHOLD,
  type SuspensionPolicy,
  type SuspensionState,
} from './suspension.js';

/** A rate: `per` tokens every `windowMs`, at most `per` saved up. */
export interface Rate {
  readonly per: number;
  readonly windowMs: number;
}

/** What a relay run asks for; the limits come with each call (they are configuration). */
export interface AcquireRequest {
  /** Who asks (a shard's name), for logs. */
  readonly holder: string;
  /** Connections the run would open at once (0: the thing limits no connections). */
  readonly slots: number;
  /** Messages the run would send. */
  readonly tokens: number;
  /** `null`: no limit on slots. */
  readonly maxSlots: number | null;
  /** `null`: no rate. */
  readonly rate: Rate | null;
  /** `null`: never suspended. */
  readonly suspension: SuspensionPolicy | null;
  /** How long the lease lasts unless renewed. */
  readonly leaseMs: number;
  /**
   * The priority rank of the caller's most urgent due mail (0 high, 1 normal, 2 bulk; default
   * 1): a freed slot goes to the most urgent caller waiting, then to the one waiting longest.
   */
  readonly rank?: number;
  readonly now: number;
}

/** Why nothing was granted. */
export type WaitReason = 'slots' | 'rate' | 'suspended' | 'probe';

export type Grant =
  | {
      readonly granted: true;
      /** Renew and release with this. */
      readonly lease: string;
      readonly slots: number;
      readonly tokens: number;
      readonly expiresAt: number;
      /** The run is the probe of a suspended smarthost: send one message, report how it went. */
      readonly probe: boolean;
    }
  | {
      readonly granted: false;
      readonly reason: WaitReason;
      /** When to ask again. */
      readonly retryAt: number;
    };

/** What a limiter counted since it was created, and where it stands (for a metrics page). */
export interface LimiterStats {
  readonly grants: number;
  readonly slotsGranted: number;
  readonly tokensGranted: number;
  readonly tokensReturned: number;
  /** Refused requests, by reason: each one is a relay run that waited. */
  readonly waits: Readonly<Record<WaitReason, number>>;
  /** Leases that expired without a release (their holder crashed or hung). */
  readonly expiredLeases: number;
  /** Slots held now (by leases not expired at the last call). */
  readonly slotsInUse: number;
  /** Tokens in the bucket at the last call (`null`: no rate seen). */
  readonly tokens: number | null;
  readonly failures: number;
  readonly suspendedUntil: number | null;
  readonly suspensions: number;
  readonly resumptions: number;
  readonly quotaUsed: number;
  readonly quotaDay: string | null;
  readonly quotaRefused: number;
}

interface Lease {
  readonly holder: string;
  readonly slots: number;
  readonly tokens: number;
  expiresAt: number;
  readonly probe: boolean;
}

/** Everything a limiter stores (JSON). */
interface State {
  leases: Record<string, Lease>;
  bucket: { tokens: number; at: number } | null;
  suspension: SuspensionState;
  quota: { day: string; used: number } | null;
  /** Callers refused a slot, by holder: their rank, since when they wait, when they last asked. */
  waiters: Record<string, { rank: number; since: number; at: number }>;
  counters: {
    grants: number;
    slotsGranted: number;
    tokensGranted: number;
    tokensReturned: number;
    waits: Record<WaitReason, number>;
    expiredLeases: number;
    quotaRefused: number;
  };
}

function emptyState(): State {
  return {
    leases: {},
    bucket: null,
    suspension: NOT_SUSPENDED,
    quota: null,
    waiters: {},
    counters: {
      grants: 0,
      slotsGranted: 0,
      tokensGranted: 0,
      tokensReturned: 0,
      waits: { slots: 0, rate: 0, suspended: 0, probe: 0 },
      expiredLeases: 0,
      quotaRefused: 0,
    },
  };
}

/** How soon a run that found no free slot asks again: slots free as runs end. */
export const SLOT_RETRY_MS = 100;
/** A waiter that has not asked again for this long gave up (its shard moved on or crashed). */
const WAITER_TTL_MS = 2_000;

function checkTime(now: unknown): number {
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('now must be a time');
  return now;
}

function count(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0)
    throw new TypeError(`${name} must be an integer >= 0`);
  return value as number;
}

function checkRate(rate: unknown): Rate | null {
  if (rate === null) return null;
  const { per, windowMs } = (rate ?? {}) as Partial<Rate>;
  if (!Number.isSafeInteger(per) || per! < 1 || !(Number(windowMs) > 0))
    throw new TypeError('rate must be { per >= 1, windowMs > 0 }');
  return { per: per!, windowMs: windowMs! };
}

/** The limiter's logic over its state: every method is one step at the caller's `now`. */
export class Limits {
  constructor(readonly state: State = emptyState()) {}

  #expire(now: number): void {
    for (const [id, lease] of Object.entries(this.state.leases)) {
      if (lease.expiresAt <= now) {
        delete this.state.leases[id];
        this.state.counters.expiredLeases++;
      }
    }
  }

  #inUse(): number {
    let slots = 0;
    for (const lease of Object.values(this.state.leases)) slots += lease.slots;
    return slots;
  }

  /** Refills the bucket for `rate` up to `now` and answers what it holds. */
  #refill(rate: Rate, now: number): { tokens: number; at: number } {
    const bucket = this.state.bucket ?? { tokens: rate.per, at: now };
    const elapsed = Math.max(0, now - bucket.at);
    const tokens = Math.min(rate.per, bucket.tokens + (elapsed * rate.per) / rate.windowMs);
    this.state.bucket = { tokens, at: Math.max(bucket.at, now) };
    return this.state.bucket;
  }

  /**
   * Slots to leave for callers that wait before `holder` at `rank`: one each for every more
   * urgent waiter and every as urgent one waiting longer, among those still asking.
   */
  #ahead(holder: string, rank: number, now: number): number {
    const mine = this.state.waiters[holder];
    let ahead = 0;
    for (const [other, waiter] of Object.entries(this.state.waiters)) {
      if (waiter.at + WAITER_TTL_MS < now) {
        delete this.state.waiters[other];
        continue;
      }
      if (other === holder) continue;
      if (waiter.rank < rank || (waiter.rank === rank && waiter.since < (mine?.since ?? now)))
        ahead++;
    }
    return ahead;
  }

  #wait(reason: WaitReason, retryAt: number): Grant {
    this.state.counters.waits[reason]++;
    return { granted: false, reason, retryAt };
  }

  acquire(request: AcquireRequest): Grant {
    const now = checkTime(request.now);
    const wantSlots = count(request.slots, 'slots');
    const wantTokens = count(request.tokens, 'tokens');
    const leaseMs = count(request.leaseMs, 'leaseMs');
    const rate = checkRate(request.rate);
    this.#expire(now);

    let probe = false;
    if (request.suspension !== null) {
      const phase = phaseOf(this.state.suspension, now);
      if (phase.phase === 'suspended') return this.#wait('suspended', phase.until);
      if (phase.phase === 'probe') {
        const running = Object.values(this.state.leases).find((lease) => lease.probe);
        if (running) return this.#wait('probe', Math.min(running.expiresAt, now + SLOT_RETRY_MS));
        probe = true;
      }
    }
    let slots = wantSlots;
    let tokens = probe ? Math.min(1, wantTokens) : wantTokens;
    const holder = String(request.holder);
    if (wantSlots > 0 && request.maxSlots !== null) {
      const rank = request.rank === undefined ? 1 : count(request.rank, 'rank');
      const free = Math.max(0, request.maxSlots - this.#inUse());
      slots = Math.min(slots, free - this.#ahead(holder, rank, now));
      if (slots <= 0) {
        const waiting = this.state.waiters[holder];
        this.state.waiters[holder] = { rank, since: waiting?.since ?? now, at: now };
        return this.#wait('slots', now + SLOT_RETRY_MS);
      }
    }
    if (rate !== null && tokens > 0) {
      const bucket = this.#refill(rate, now);
      tokens = Math.min(tokens, Math.floor(bucket.tokens));
      if (tokens === 0) {
        const perMs = rate.per / rate.windowMs;
        return this.#wait('rate', now + Math.max(1, Math.ceil((1 - bucket.tokens) / perMs)));
      }
      bucket.tokens -= tokens;
    }
    if (wantSlots > 0) slots = Math.min(slots, tokens);
    delete this.state.waiters[holder];
    const id = crypto.randomUUID();
    const expiresAt = now + leaseMs;
    this.state.leases[id] = { holder: String(request.holder), slots, tokens, expiresAt, probe };
    const c = this.state.counters;
    c.grants++;
    c.slotsGranted += slots;
    c.tokensGranted += tokens;
    return { granted: true, lease: id, slots, tokens, expiresAt, probe };
  }

  /** Extends a lease to `now + leaseMs`; false when it expired (its slots may be in use again). */
  renew(lease: string, leaseMs: number, now: number): boolean {
    checkTime(now);
    this.#expire(now);
    const held = this.state.leases[lease];
    if (held === undefined) return false;
    held.expiresAt = now + count(leaseMs, 'leaseMs');
    return true;
  }

  /**
   * Ends a lease: its slots are free, the tokens it did not use go back to the bucket (`rate`,
   * the same as when acquired), and `succeeded` deliveries count as successes for the
   * suspension. An expired lease gives nothing back.
   */
  release(
    lease: string,
    outcome: { readonly unusedTokens: number; readonly succeeded: number },
    rate: Rate | null,
    now: number,
  ): void {
    checkTime(now);
    const held = this.state.leases[lease];
    delete this.state.leases[lease];
    if (count(outcome.succeeded, 'succeeded') > 0) {
      this.state.suspension = afterSuccess(this.state.suspension);
    }
    const checked = checkRate(rate);
    if (held === undefined || checked === null || this.state.bucket === null) return;
    const unused = Math.min(count(outcome.unusedTokens, 'unusedTokens'), held.tokens);
    const bucket = this.#refill(checked, now);
    bucket.tokens = Math.min(checked.per, bucket.tokens + unused);
    this.state.counters.tokensReturned += unused;
  }

  /**
   * A destination failure (connection failed, `421`): answers when the smarthost is suspended
   * until (`null`: not suspended, or only the probe may send).
   */
  failed(policy: SuspensionPolicy, now: number): number | null {
    checkTime(now);
    this.state.suspension = afterFailure(this.state.suspension, now, policy);
    const phase = phaseOf(this.state.suspension, now);
    return phase.phase === 'suspended' ? phase.until : null;
  }

  /** Lifts the suspension (an operator's flush); answers whether there was one. */
  lift(): boolean {
    const was = this.state.suspension.suspendedUntil !== null;
    this.state.suspension = lifted(this.state.suspension);
    return was;
  }

  /**
   * Counts one submission against a daily quota of `limit` per UTC day: `{ ok: true, day }`,
   * or `{ ok: false, retryAt }` (the next UTC midnight) when the day's quota is spent.
   */
  spend(limit: number, now: number): { ok: true; day: string } | { ok: false; retryAt: number } {
    checkTime(now);
    count(limit, 'limit');
    const day = new Date(now).toISOString().slice(0, 10);
    if (this.state.quota?.day !== day) this.state.quota = { day, used: 0 };
    if (this.state.quota.used >= limit) {
      this.state.counters.quotaRefused++;
      const midnight = Date.UTC(
        new Date(now).getUTCFullYear(),
        new Date(now).getUTCMonth(),
        new Date(now).getUTCDate() + 1,
      );
      return { ok: false, retryAt: midnight };
    }
    this.state.quota.used++;
    return { ok: true, day };
  }

  /** Gives back one submission of `day` (it was not queued after all: a duplicate, a failure). */
  refund(day: string): void {
    if (this.state.quota?.day === day && this.state.quota.used > 0) this.state.quota.used--;
  }

  stats(): LimiterStats {
    const { counters, suspension, quota, bucket } = this.state;
    return {
      grants: counters.grants,
      slotsGranted: counters.slotsGranted,
      tokensGranted: counters.tokensGranted,
      tokensReturned: counters.tokensReturned,
      waits: { ...counters.waits },
      expiredLeases: counters.expiredLeases,
      slotsInUse: this.#inUse(),
      tokens: bucket === null ? null : bucket.tokens,
      failures: suspension.failures,
      suspendedUntil: suspension.suspendedUntil,
      suspensions: suspension.suspensions,
      resumptions: suspension.resumptions,
      quotaUsed: quota?.used ?? 0,
      quotaDay: quota?.day ?? null,
      quotaRefused: counters.quotaRefused,
    };
  }
}

/** The limiter Durable Object: {@link Limits} over state kept in its SQLite storage. */
export class RelayLimiter extends DurableObject<RelayEnv> {
  readonly #limits: Limits;

  constructor(ctx: DurableObjectState, env: RelayEnv) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS limiter_state (key TEXT PRIMARY KEY, value TEXT)');
    const row = sql
      .exec<{ value: string }>("SELECT value FROM limiter_state WHERE key = 'state'")
      .toArray()[0];
    this.#limits = new Limits(
      row ? { ...emptyState(), ...(JSON.parse(row.value) as State) } : undefined,
    );
  }

  /** Runs one step and stores the state it left. */
  #step<T>(step: (limits: Limits) => T): T {
    const result = step(this.#limits);
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO limiter_state (key, value) VALUES ('state', ?)",
      JSON.stringify(this.#limits.state),
    );
    return result;
  }

  acquire(request: AcquireRequest): Grant {
    return this.#step((l) => l.acquire(request));
  }

  renew(lease: string, leaseMs: number, now: number): boolean {
    return this.#step((l) => l.renew(lease, leaseMs, now));
  }

  release(
    lease: string,
    outcome: { unusedTokens: number; succeeded: number },
    rate: Rate | null,
    now: number,
  ): void {
    this.#step((l) => l.release(lease, outcome, rate, now));
  }

  failed(policy: SuspensionPolicy, now: number): number | null {
    return this.#step((l) => l.failed(policy, now));
  }

  lift(): boolean {
    return this.#step((l) => l.lift());
  }

  spend(limit: number, now: number): { ok: true; day: string } | { ok: false; retryAt: number } {
    return this.#step((l) => l.spend(limit, now));
  }

  refund(day: string): void {
    this.#step((l) => l.refund(day));
  }

  stats(): LimiterStats {
    return this.#limits.stats();
  }
}

// ---- the callers' side ---------------------------------------------------------------------

/** The limiter of `name` (`smarthost:<host>:<port>` or `tenant:<tenant>`). */
export function limiterStub(env: RelayEnv, name: string): DurableObjectStub<RelayLimiter> {
  const namespace = env.LIMITER as unknown as DurableObjectNamespace<RelayLimiter>;
  return namespace.get(namespace.idFromName(name));
}

/**
 * The limiter of the smarthosts `tenant` sends through: named after the first of its list (its
 * own `TENANT_SMARTHOSTS`, else `SMARTHOSTS`), which takes the connections while it is up; a
 * failover to the next one stays within the same slots.
 */
export function smarthostLimiterName(config: RelayConfig, tenant: string): string {
  return listLimiterName(smarthostsOf(config, tenant));
}

/** Every smarthost limiter's name: the default list's, and each tenant list's. */
export function smarthostLimiterNames(config: RelayConfig): string[] {
  const lists = [config.smarthosts, ...config.tenantSmarthosts.values()];
  return [...new Set(lists.map(listLimiterName))];
}

function listLimiterName(list: readonly Smarthost[]): string {
  const [first] = list;
  return `smarthost:${first!.host}:${first!.port}`;
}

export function tenantLimiterName(tenant: string): string {
  return `tenant:${tenant}`;
}

/** The smarthost's suspension policy, or `null` when `SUSPEND_SECONDS` is 0. */
export function suspensionPolicy(config: RelayConfig): SuspensionPolicy | null {
  const baseMs = config.limits.suspendMs;
  return baseMs === 0
    ? null
    : { baseMs, maxMs: Math.max(baseMs, MAX_SUSPEND_MS), threshold: SUSPEND_THRESHOLD };
}

/** A tenant's limits (`TENANT_LIMITS`); `null`: none. */
export interface TenantLimit {
  readonly perHour: number | null;
  readonly perDay: number | null;
}

/**
 * `TENANT_LIMITS`: a JSON object of tenant id → `{ "perHour"?: n, "perDay"?: n }` (positive
 * integers); a tenant not named has no limit. Throws a plain Error naming the problem.
 */
export function parseTenantLimits(
  raw: string | undefined,
  tenants: ReadonlySet<string>,
): ReadonlyMap<string, TenantLimit> {
  const limits = new Map<string, TenantLimit>();
  if (raw === undefined || raw.trim() === '') return limits;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('TENANT_LIMITS must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('TENANT_LIMITS must be a JSON object of tenant id to { perHour, perDay }');
  for (const [tenant, value] of Object.entries(parsed)) {
    if (!tenants.has(tenant))
      throw new Error(`TENANT_LIMITS names ${tenant}, not in TENANT_TOKENS`);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error(`TENANT_LIMITS.${tenant} must be { perHour?, perDay? }`);
    const entry = value as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (key !== 'perHour' && key !== 'perDay')
        throw new Error(`TENANT_LIMITS.${tenant} has an unknown key ${JSON.stringify(key)}`);
    }
    const limit = (key: 'perHour' | 'perDay'): number | null => {
      const n = entry[key];
      if (n === undefined || n === null) return null;
      if (!Number.isSafeInteger(n) || (n as number) < 1)
        throw new Error(`TENANT_LIMITS.${tenant}.${key} must be an integer >= 1`);
      return n as number;
    };
    limits.set(tenant, { perHour: limit('perHour'), perDay: limit('perDay') });
  }
  return limits;
}

/**
 * Counts one submission of `tenant` against its daily quota (`TENANT_LIMITS` `perDay`), or
 * throws `429 RATE_LIMITED` with `Retry-After` (seconds to the next UTC midnight) when the day's
 * quota is spent. Resolves to a function that gives the submission back (call it when nothing
 * was queued after all), a no-op for a tenant with no daily quota.
 */
export async function spendDailyQuota(
  env: RelayEnv,
  config: RelayConfig,
  tenant: string,
  now: number,
): Promise<() => Promise<void>> {
  const perDay = config.limits.tenants.get(tenant)?.perDay ?? null;
  if (perDay === null) return async () => {};
  const limiter = limiterStub(env, tenantLimiterName(tenant));
  const spent = await limiter.spend(perDay, now);
  if (!spent.ok) {
    const seconds = Math.max(1, Math.ceil((spent.retryAt - now) / 1000));
    throw new ApiError(
      'RATE_LIMITED',
      `this tenant's daily quota of ${perDay} messages is spent; it renews at ${new Date(spent.retryAt).toISOString()}`,
      { 'retry-after': String(seconds) },
    );
  }
  return () => limiter.refund(spent.day);
}
