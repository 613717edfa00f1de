/**
 * What a shard's relay run asks of the limiters (limiter.ts) before it claims any mail, and tells
 * them afterwards. Before a run: a lease of connection slots and message tokens from the
 * smarthost's limiter, and of tokens from the tenant's when `TENANT_LIMITS` gives it a `perHour`.
 * The run then claims only as many messages as it got tokens and opens only as many connections
 * as it got slots, so nothing is claimed (no attempt counted, no lease taken) while a limit or a
 * suspension says wait. During the run each destination failure is reported at once; once the
 * smarthost is suspended the run's remaining messages are postponed to the suspension's end, not
 * attempted. After the run, when its connections are closed (QUIT included), the leases are
 * released with the unused tokens and the successes.
 */
import type { Clock } from '@mailspool/core';
import {
  type DeliverOptions,
  type DeliveryResult,
  type OutgoingMessage,
  type Relayer,
  systemTimers,
  type Timers,
} from '@mailspool/relay';
import type { RelayConfig, RelayEnv } from './config.js';
import {
  type Grant,
  limiterStub,
  type Rate,
  type RelayLimiter,
  smarthostLimiterName,
  smarthostLimiterNames,
  suspensionPolicy,
  tenantLimiterName,
  type WaitReason,
} from './limiter.js';
import type { SuspensionPolicy } from './suspension.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** A run's lease of the limits it needs. */
export interface RunGrant {
  /** Messages the run may claim. */
  readonly batch: number;
  /** Connections it may have open at once. */
  readonly concurrency: number;
  /** `inner`, reporting destination failures and postponing once the smarthost is suspended. */
  relayer(inner: Relayer): Relayer;
  /** Ends the run's leases: call once its connections are closed. */
  release(claimed: number): Promise<void>;
}

export type RunPermit =
  | { readonly ok: true; readonly grant: RunGrant }
  | { readonly ok: false; readonly reason: WaitReason; readonly retryAt: number };

/**
 * True when a result says the destination itself failed, not the message: no recipient got an
 * answer of its own because the connection could not be opened or broke (RFC 3463 4.4.1, 4.4.2
 * with no reply code), or the server answered `421` or "too many connections".
 */
export function isDestinationFailure(result: DeliveryResult): boolean {
  const outcomes = result.recipients;
  if (outcomes.length === 0) return false;
  return outcomes.every(
    ({ status, diagnostic }) =>
      status === 'deferred' &&
      (diagnostic.code === 421 ||
        /too many connections/i.test(diagnostic.text) ||
        (diagnostic.code === undefined &&
          (diagnostic.status === '4.4.1' || diagnostic.status === '4.4.2'))),
  );
}

/** The limits of one tenant's deliveries through the configured smarthost. */
export class DeliveryLimits {
  readonly #smarthost: DurableObjectStub<RelayLimiter> | undefined;
  readonly #tenant: DurableObjectStub<RelayLimiter> | undefined;
  readonly #maxSlots: number | null;
  readonly #smarthostRate: Rate | null;
  readonly #tenantRate: Rate | null;
  readonly #suspension: SuspensionPolicy | null;

  constructor(
    env: RelayEnv,
    config: RelayConfig,
    tenant: string,
    readonly holder: string,
    readonly leaseMs: number,
    readonly clock: Clock,
    /** The priority rank of the shard's most urgent due mail (0 high … 2 bulk). */
    readonly urgency: () => Promise<number> = async () => 1,
    readonly timers: Timers = systemTimers,
  ) {
    const { maxConnections, perMinute } = config.limits;
    this.#maxSlots = maxConnections;
    this.#smarthostRate = perMinute === null ? null : { per: perMinute, windowMs: MINUTE };
    this.#suspension = suspensionPolicy(config);
    const perHour = config.limits.tenants.get(tenant)?.perHour ?? null;
    this.#tenantRate = perHour === null ? null : { per: perHour, windowMs: HOUR };
    // No object is asked for a limit that is not configured.
    this.#smarthost = smarthostLimited(config)
      ? limiterStub(env, smarthostLimiterName(config, tenant))
      : undefined;
    this.#tenant =
      this.#tenantRate !== null ? limiterStub(env, tenantLimiterName(tenant)) : undefined;
  }

  /** False when no limit applies: runs need not ask. */
  get active(): boolean {
    return this.#smarthost !== undefined || this.#tenant !== undefined;
  }

  /** Asks for a run of up to `batch` messages over up to `concurrency` connections. */
  async acquire(batch: number, concurrency: number): Promise<RunPermit> {
    const rank = this.#maxSlots === null ? 1 : await this.urgency();
    const now = this.clock.now();
    const ask = (rate: Rate | null, slots: number, suspension: SuspensionPolicy | null) => ({
      holder: this.holder,
      slots,
      tokens: batch,
      maxSlots: slots > 0 ? this.#maxSlots : null,
      rate,
      suspension,
      leaseMs: this.leaseMs,
      rank,
      now,
    });
    const smarthost = this.#smarthost
      ? await this.#smarthost.acquire(ask(this.#smarthostRate, concurrency, this.#suspension))
      : undefined;
    if (smarthost && !smarthost.granted) return { ok: false, ...waitOf(smarthost) };
    const tenant = this.#tenant
      ? await this.#tenant.acquire({
          ...ask(this.#tenantRate, 0, null),
          tokens: smarthost?.tokens ?? batch,
        })
      : undefined;
    if (tenant && !tenant.granted) {
      if (smarthost?.granted)
        await this.#smarthost!.release(
          smarthost.lease,
          { unusedTokens: smarthost.tokens, succeeded: 0 },
          this.#smarthostRate,
          this.clock.now(),
        );
      return { ok: false, ...waitOf(tenant) };
    }
    const tokens = Math.min(
      smarthost?.granted ? smarthost.tokens : batch,
      tenant?.granted ? tenant.tokens : batch,
    );
    const slots = smarthost?.granted && smarthost.slots > 0 ? smarthost.slots : concurrency;
    return {
      ok: true,
      grant: this.#grant(
        smarthost?.granted ? smarthost : undefined,
        tenant?.granted ? tenant : undefined,
        tokens,
        Math.min(slots, tokens),
      ),
    };
  }

  #grant(
    smarthost: Extract<Grant, { granted: true }> | undefined,
    tenant: Extract<Grant, { granted: true }> | undefined,
    batch: number,
    concurrency: number,
  ): RunGrant {
    const limits = this;
    let succeeded = 0;
    /** Set once a report said the smarthost is suspended: the run sends nothing more. */
    let suspendedUntil: number | undefined;
    // Renewed while the run lasts (a slow SMTP exchange), so only a crash lets a lease expire.
    let renewal: unknown;
    const renew = () => {
      renewal = limits.timers.setTimeout(() => {
        const now = limits.clock.now();
        if (smarthost)
          void limits.#smarthost!.renew(smarthost.lease, limits.leaseMs, now).catch(() => {});
        if (tenant) void limits.#tenant!.renew(tenant.lease, limits.leaseMs, now).catch(() => {});
        renew();
      }, limits.leaseMs / 3);
    };
    renew();
    return {
      batch,
      concurrency,
      relayer(inner: Relayer): Relayer {
        return {
          async deliver(
            message: OutgoingMessage,
            options: DeliverOptions,
          ): Promise<DeliveryResult> {
            if (suspendedUntil !== undefined) {
              return {
                recipients: [],
                postponed: { until: suspendedUntil, reason: 'the smarthost is suspended' },
              };
            }
            const result = await inner.deliver(message, options);
            if (smarthost && limits.#suspension && isDestinationFailure(result)) {
              const until = await limits.#smarthost!.failed(limits.#suspension, limits.clock.now());
              if (until !== null) suspendedUntil = until;
            } else if (!isDestinationFailure(result)) {
              succeeded++;
            }
            return result;
          },
        };
      },
      async release(claimed: number): Promise<void> {
        limits.timers.clearTimeout(renewal);
        const now = limits.clock.now();
        const unused = Math.max(0, batch - claimed);
        const giveBack = (
          held: Extract<Grant, { granted: true }> | undefined,
          limiter: DurableObjectStub<RelayLimiter> | undefined,
          rate: Rate | null,
        ) =>
          held &&
          limiter!.release(
            held.lease,
            { unusedTokens: held.tokens - batch + unused, succeeded },
            rate,
            now,
          );
        await Promise.all([
          giveBack(smarthost, limits.#smarthost, limits.#smarthostRate),
          giveBack(tenant, limits.#tenant, limits.#tenantRate),
        ]);
      },
    };
  }
}

function waitOf(grant: Extract<Grant, { granted: false }>) {
  return { reason: grant.reason, retryAt: grant.retryAt };
}

/** Lifts every smarthost's suspension (`POST /admin/flush`); answers whether there was one. */
export async function liftSuspension(env: RelayEnv, config: RelayConfig): Promise<boolean> {
  if (suspensionPolicy(config) === null) return false;
  const lifted = await Promise.all(
    smarthostLimiterNames(config).map((name) => limiterStub(env, name).lift()),
  );
  return lifted.includes(true);
}

/**
 * The names of the limiters this configuration uses: the smarthost limiters when any smarthost
 * limit or suspension is on, and one per tenant with limits. Only those are asked for metrics,
 * so that a scrape never creates a limiter nobody uses.
 */
export function configuredLimiters(config: RelayConfig): string[] {
  return [
    ...(smarthostLimited(config) ? smarthostLimiterNames(config) : []),
    ...[...config.limits.tenants.keys()].map(tenantLimiterName),
  ];
}

/** Whether any smarthost limit or suspension is on (else no smarthost limiter is asked). */
function smarthostLimited(config: RelayConfig): boolean {
  const { maxConnections, perMinute } = config.limits;
  return maxConnections !== null || perMinute !== null || suspensionPolicy(config) !== null;
}
