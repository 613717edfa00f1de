/**
 * The limiter Durable Object on its own, inside workerd: every call takes the caller's time, so
 * these tests move through minutes and hours by passing later times, never by sleeping. Each test
 * uses a limiter of its own name.
 */
import { env } from 'cloudflare:test';
import { ManualClock } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import { type RelayEnv, readConfig } from '../../src/config.js';
import type { AcquireRequest, RelayLimiter } from '../../src/limiter.js';
import { DeliveryLimits } from '../../src/run-limits.js';
import { MAX_SUSPEND_MS, SUSPEND_THRESHOLD } from '../../src/suspension.js';

const namespace = (env as unknown as { LIMITER: DurableObjectNamespace<RelayLimiter> }).LIMITER;
const T0 = Date.UTC(2030, 0, 1, 12);
const MINUTE = 60_000;
const policy = { baseMs: MINUTE, maxMs: MAX_SUSPEND_MS, threshold: SUSPEND_THRESHOLD };

function limiter() {
  return namespace.get(namespace.idFromName(`test:${crypto.randomUUID()}`));
}

function ask(holder: string, now: number, more: Partial<AcquireRequest> = {}): AcquireRequest {
  return {
    holder,
    slots: 2,
    tokens: 10,
    maxSlots: 2,
    rate: null,
    suspension: policy,
    leaseMs: MINUTE,
    now,
    ...more,
  };
}

describe('the limiter', () => {
  it('a holder that never releases loses its slots when its lease expires; a renewed lease keeps them', async () => {
    const stub = limiter();
    const a = await stub.acquire(ask('a', T0));
    expect(a).toMatchObject({ granted: true, slots: 2, tokens: 10, expiresAt: T0 + MINUTE });
    // Every slot is held: b waits, and is told to ask again soon.
    expect(await stub.acquire(ask('b', T0 + 1_000))).toMatchObject({
      granted: false,
      reason: 'slots',
    });
    // a crashed: it never releases nor renews. Just before its lease ends the slots are still
    // its; at the end they are free.
    expect(await stub.acquire(ask('b', T0 + MINUTE - 1))).toMatchObject({ granted: false });
    const b = await stub.acquire(ask('b', T0 + MINUTE));
    expect(b).toMatchObject({ granted: true, slots: 2 });
    expect(await stub.stats()).toMatchObject({ expiredLeases: 1, slotsInUse: 2 });
    // b renews: its slots outlive its first lease.
    if (!b.granted) throw new Error('unreachable');
    expect(await stub.renew(b.lease, MINUTE, T0 + MINUTE + 30_000)).toBe(true);
    expect(await stub.acquire(ask('c', T0 + 2 * MINUTE + 1))).toMatchObject({ granted: false });
    await stub.release(b.lease, { unusedTokens: 0, succeeded: 1 }, null, T0 + 2 * MINUTE + 2);
    expect(await stub.acquire(ask('c', T0 + 2 * MINUTE + 3))).toMatchObject({
      granted: true,
      slots: 2,
    });
    // A lease that expired can't be renewed.
    expect(await stub.renew(b.lease, MINUTE, T0 + 10 * MINUTE)).toBe(false);
  });

  it('slots are shared: two holders never hold more than maxSlots together', async () => {
    const stub = limiter();
    const a = await stub.acquire(ask('a', T0, { slots: 1 }));
    const b = await stub.acquire(ask('b', T0, { slots: 4 }));
    expect(a).toMatchObject({ granted: true, slots: 1 });
    expect(b).toMatchObject({ granted: true, slots: 1 });
    expect(await stub.acquire(ask('c', T0))).toMatchObject({ granted: false, reason: 'slots' });
    expect((await stub.stats()).slotsInUse).toBe(2);
  });

  it('a freed slot goes to the waiter with the most urgent mail, then to the longest waiting', async () => {
    const stub = limiter();
    const held = await stub.acquire(ask('a', T0, { slots: 2 }));
    if (!held.granted) throw new Error('expected a grant');
    // bulk asked first, then high: both wait.
    expect(await stub.acquire(ask('bulk', T0 + 1, { rank: 2 }))).toMatchObject({ granted: false });
    expect(await stub.acquire(ask('high', T0 + 2, { rank: 0 }))).toMatchObject({ granted: false });
    await stub.release(held.lease, { unusedTokens: 0, succeeded: 2 }, null, T0 + 3);
    // Two slots free: bulk gets one (the other is left for high, which is more urgent)…
    expect(await stub.acquire(ask('bulk', T0 + 4, { rank: 2 }))).toMatchObject({
      granted: true,
      slots: 1,
    });
    expect(await stub.acquire(ask('high', T0 + 5, { rank: 0 }))).toMatchObject({
      granted: true,
      slots: 1,
    });
  });

  it('a rate is a token bucket: a burst of one window, then one token per 1/rate; unused tokens come back', async () => {
    const stub = limiter();
    const rate = { per: 2, windowMs: MINUTE };
    const first = await stub.acquire(ask('a', T0, { rate, slots: 0, maxSlots: null }));
    expect(first).toMatchObject({ granted: true, tokens: 2 });
    expect(await stub.acquire(ask('a', T0 + 1, { rate, slots: 0, maxSlots: null }))).toEqual({
      granted: false,
      reason: 'rate',
      retryAt: T0 + 30_000,
    });
    const later = await stub.acquire(ask('a', T0 + 30_000, { rate, slots: 0, maxSlots: null }));
    expect(later).toMatchObject({ granted: true, tokens: 1 });
    if (!later.granted) throw new Error('unreachable');
    // The run sent nothing: its token goes back.
    await stub.release(later.lease, { unusedTokens: 1, succeeded: 0 }, rate, T0 + 30_001);
    expect(
      await stub.acquire(ask('a', T0 + 30_002, { rate, slots: 0, maxSlots: null })),
    ).toMatchObject({ granted: true, tokens: 1 });
    expect(await stub.stats()).toMatchObject({ tokensReturned: 1, waits: { rate: 1 } });
  });

  it('consecutive destination failures suspend; the probe after the suspension resumes, or doubles it up to an hour', async () => {
    const stub = limiter();
    for (let n = 1; n < SUSPEND_THRESHOLD; n++) expect(await stub.failed(policy, T0)).toBeNull();
    expect(await stub.failed(policy, T0)).toBe(T0 + MINUTE);
    expect(await stub.acquire(ask('a', T0 + MINUTE - 1))).toEqual({
      granted: false,
      reason: 'suspended',
      retryAt: T0 + MINUTE,
    });
    // The suspension is over: one probe, one message, one connection; the others wait for it.
    let now = T0 + MINUTE;
    let probe = await stub.acquire(ask('a', now));
    expect(probe).toMatchObject({ granted: true, probe: true, slots: 1, tokens: 1 });
    expect(await stub.acquire(ask('b', now))).toMatchObject({ granted: false, reason: 'probe' });
    // Each failed probe doubles the suspension, up to an hour.
    const lengths: number[] = [];
    for (let n = 0; n < 8; n++) {
      const until = await stub.failed(policy, now);
      expect(until).not.toBeNull();
      lengths.push(until! - now);
      if (probe.granted)
        await stub.release(probe.lease, { unusedTokens: 0, succeeded: 0 }, null, now);
      now = until!;
      probe = await stub.acquire(ask('a', now));
      expect(probe).toMatchObject({ granted: true, probe: true });
    }
    expect(lengths).toEqual([2, 4, 8, 16, 32, 60, 60, 60].map((m) => m * MINUTE));
    // The probe succeeds: everything resumes, and the next suspension starts again at the base.
    if (!probe.granted) throw new Error('unreachable');
    await stub.release(probe.lease, { unusedTokens: 0, succeeded: 1 }, null, now + 1);
    expect(await stub.acquire(ask('b', now + 2))).toMatchObject({
      granted: true,
      probe: false,
      slots: 2,
    });
    expect(await stub.stats()).toMatchObject({
      suspendedUntil: null,
      failures: 0,
      suspensions: 9,
      resumptions: 1,
    });
  });

  it('a success between failures resets the count; a lift ends a suspension at once', async () => {
    const stub = limiter();
    await stub.failed(policy, T0);
    await stub.failed(policy, T0);
    const grant = await stub.acquire(ask('a', T0));
    if (!grant.granted) throw new Error('expected a grant');
    await stub.release(grant.lease, { unusedTokens: 0, succeeded: 1 }, null, T0);
    expect(await stub.failed(policy, T0)).toBeNull();
    await stub.failed(policy, T0);
    expect(await stub.failed(policy, T0)).toBe(T0 + MINUTE);
    expect(await stub.lift()).toBe(true);
    expect(await stub.acquire(ask('a', T0 + 1))).toMatchObject({ granted: true, probe: false });
    expect(await stub.lift()).toBe(false);
  });

  it('a daily quota counts submissions per UTC day and refuses until midnight once spent', async () => {
    const stub = limiter();
    const noon = T0;
    const first = await stub.spend(2, noon);
    expect(first).toEqual({ ok: true, day: '2030-01-01' });
    expect(await stub.spend(2, noon + 1)).toMatchObject({ ok: true });
    const midnight = Date.UTC(2030, 0, 2);
    expect(await stub.spend(2, noon + 2)).toEqual({ ok: false, retryAt: midnight });
    // One of them was not queued after all: it is given back.
    await stub.refund('2030-01-01');
    expect(await stub.spend(2, noon + 3)).toMatchObject({ ok: true });
    expect(await stub.spend(2, midnight)).toEqual({ ok: true, day: '2030-01-02' });
    expect(await stub.stats()).toMatchObject({ quotaUsed: 1, quotaRefused: 1 });
  });

  it("a tenant's perHour paces its runs: a run gets only the tokens left, and waits for the next", async () => {
    const config = readConfig({
      ...(env as unknown as RelayEnv),
      TENANT_LIMITS: JSON.stringify({ limited: { perHour: 3 } }),
      SMARTHOST_MAX_CONNECTIONS: 'unlimited',
      SUSPEND_SECONDS: '0',
    });
    const clock = new ManualClock(T0);
    const limits = new DeliveryLimits(env as never, config, 'limited', 'shard', MINUTE, clock);
    const first = await limits.acquire(10, 4);
    expect(first).toMatchObject({ ok: true, grant: { batch: 3, concurrency: 3 } });
    if (!first.ok) throw new Error('unreachable');
    await first.grant.release(3);
    clock.advance(1);
    // 3 an hour: the next message may go 20 minutes after the burst.
    const next = await limits.acquire(10, 4);
    expect(next).toMatchObject({ ok: false, reason: 'rate' });
    if (next.ok) throw new Error('unreachable');
    expect(next.retryAt).toBe(T0 + 20 * MINUTE);
    clock.advance(20 * MINUTE);
    const paced = await limits.acquire(10, 4);
    expect(paced).toMatchObject({ ok: true, grant: { batch: 1 } });
    if (paced.ok) await paced.grant.release(1);
  });

  it('the configuration names: defaults, `unlimited`, and a clear error for every bad value', () => {
    const base = { ...(env as unknown as RelayEnv) };
    const defaults = readConfig({
      ...base,
      SMARTHOST_MAX_CONNECTIONS: undefined,
      SMARTHOST_RATE_PER_MINUTE: undefined,
      TENANT_LIMITS: undefined,
      SUSPEND_SECONDS: undefined,
    }).limits;
    expect(defaults).toMatchObject({ maxConnections: 4, perMinute: null, suspendMs: 60_000 });
    expect(defaults.tenants.size).toBe(0);
    const set = readConfig({
      ...base,
      SMARTHOST_MAX_CONNECTIONS: 'unlimited',
      SMARTHOST_RATE_PER_MINUTE: '600',
      SUSPEND_SECONDS: '0',
      TENANT_LIMITS: JSON.stringify({ limited: { perHour: 100 }, capped: { perDay: 5 } }),
    }).limits;
    expect(set).toMatchObject({ maxConnections: null, perMinute: 600, suspendMs: 0 });
    expect(set.tenants.get('limited')).toEqual({ perHour: 100, perDay: null });
    expect(set.tenants.get('capped')).toEqual({ perHour: null, perDay: 5 });
    const bad: [Partial<RelayEnv>, RegExp][] = [
      [{ SMARTHOST_MAX_CONNECTIONS: '0' }, /SMARTHOST_MAX_CONNECTIONS must be an integer/],
      [{ SMARTHOST_MAX_CONNECTIONS: 'lots' }, /SMARTHOST_MAX_CONNECTIONS/],
      [{ SMARTHOST_RATE_PER_MINUTE: '1.5' }, /SMARTHOST_RATE_PER_MINUTE/],
      [{ SUSPEND_SECONDS: '3601' }, /SUSPEND_SECONDS must be an integer from 0 to 3600/],
      [{ TENANT_LIMITS: '{' }, /TENANT_LIMITS must be JSON/],
      [{ TENANT_LIMITS: '[]' }, /TENANT_LIMITS must be a JSON object/],
      [{ TENANT_LIMITS: '{"ghost":{"perDay":1}}' }, /names ghost, not in TENANT_TOKENS/],
      [{ TENANT_LIMITS: '{"limited":{"perMonth":1}}' }, /unknown key "perMonth"/],
      [
        { TENANT_LIMITS: '{"limited":{"perDay":0}}' },
        /TENANT_LIMITS.limited.perDay must be an integer >= 1/,
      ],
    ];
    for (const [change, message] of bad) {
      expect(() => readConfig({ ...base, ...change }), JSON.stringify(change)).toThrow(message);
    }
  });
});
