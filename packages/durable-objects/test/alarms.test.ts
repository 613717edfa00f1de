/**
 * Alarms: one per shard at its next due time or lock expiry, re-armed after every change and on
 * start, calling the due hook, which is retried with backoff when it throws. Time moves by
 * skewing the shard's clock (HookedShard.testSkew) and running the alarm with
 * runDurableObjectAlarm, never by sleeping; every message is due an hour or more ahead so no
 * alarm fires on its own mid-test.
 */

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { ManualClock } from '@mailspool/core';
import { describe, expect, it, vi } from 'vitest';
import { DurableObjectEngine, MAX_ALARM_DELAY_MS } from '../src/index.js';
import type { Env, HookedShard } from './worker.js';

const { HOOKED, QUEUE, RELAYING } = env as unknown as Env;
const HOUR = 3_600_000;

function setup() {
  const name = `alarm-${crypto.randomUUID()}`;
  // The engine's clock starts at wall time: alarms are scheduled in the shard's wall time.
  const clock = new ManualClock(Date.now());
  const engine = new DurableObjectEngine({ namespace: HOOKED, shards: 1, name, clock });
  const stub = HOOKED.get(HOOKED.idFromName(`${name}:0`));
  return { clock, engine, stub, t0: clock.now() };
}

describe('alarms', () => {
  it('the alarm sits at the earliest due time and the hook hears exactly the due ids when it fires', async () => {
    const { engine, stub, t0 } = setup();
    const s = await engine.connect();
    const later = await s.storeMessage({ meta: {}, contents: 'b', retryAt: t0 + 2 * HOUR });
    const first = await s.storeMessage({ meta: {}, contents: 'a', retryAt: t0 + HOUR });
    expect(await stub.testAlarm()).toBe(t0 + HOUR);

    await stub.testSkew(HOUR + 60_000); // the shard is now past the first due time only
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const calls = await stub.testHookCalls();
    expect(calls).toMatchObject([{ attempt: 1, due: 1, ids: [first], failed: false }]);
    // Nobody claimed it: the hook is called again after a delay (HookedShard: 1 h for the first
    // untouched wake-up), or at the next due time if that comes first, never in a loop at once.
    expect(await stub.testAlarm()).toBe(t0 + 2 * HOUR);

    await stub.testSkew(3 * HOUR);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const second = (await stub.testHookCalls())[1]!;
    expect(second).toMatchObject({ due: 2, ids: [first, later] });
    // Still untouched, and nothing else comes due: again after the second, longer delay.
    expect(await stub.testAlarm()).toBe(second.at + 2 * HOUR);
  });

  it('due mail the hook leaves untouched is offered again with growing delays, never dropped', async () => {
    const { engine, stub, t0 } = setup();
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x', retryAt: t0 + HOUR });
    await stub.testSkew(HOUR);
    const delays: number[] = [];
    for (let n = 0; n < 3; n++) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const call = (await stub.testHookCalls())[n]!;
      expect(call).toMatchObject({ due: 1, ids: [id], failed: false });
      delays.push((await stub.testAlarm())! - call.at);
    }
    // HookedShard's retryDelay: 1 s, 2 s, 4 s… scaled to hours.
    expect(delays).toEqual([HOUR, 2 * HOUR, 4 * HOUR]);
    // Progress resets the delay: the hook claims, and the alarm follows the lock's expiry.
    await stub.testClaimPerWake(1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await s.stats()).active).toBe(1);
    expect(await stub.testAlarm()).toBe((await stub.testHookCalls())[3]!.at + HOUR);
  });

  it('a shard started without a name (as an alarm after a restart starts it) still knows it', async () => {
    const { engine, stub, t0 } = setup();
    const s = await engine.connect();
    await s.storeMessage({ meta: {}, contents: 'x', retryAt: t0 + HOUR });
    const named = await stub.testShardName();
    expect(named).toMatch(/^alarm-.*:0$/);
    // The next instance gets no name from the runtime, as one started for an alarm after a
    // restart gets none (the local runtime names every instance, so the test takes it away).
    await stub.testStartNameless();
    await evictDurableObject(stub);
    const nameless = stub;
    expect(await nameless.testShardName()).toBe(named);
    await nameless.testSkew(HOUR);
    expect(await runDurableObjectAlarm(nameless)).toBe(true);
    expect(await nameless.testHookCalls()).toMatchObject([{ name: named, due: 1 }]);
  });

  it("a shard's local engine relays only its own due mail and stores new mail on itself", async () => {
    const name = `local-${crypto.randomUUID()}`;
    const clock = new ManualClock(Date.now());
    const engine = new DurableObjectEngine({ namespace: HOOKED, shards: 2, name, clock });
    const t0 = clock.now();
    const s = await engine.connect();
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        s.storeMessage({ meta: { n }, contents: 'x', retryAt: t0 + HOUR }),
      ),
    );
    const onShard = (index: number) => ids.filter((id) => id.startsWith(`s${index}.`));
    expect(onShard(0).length).toBeGreaterThan(0);
    expect(onShard(1).length).toBeGreaterThan(0);
    const shard0 = HOOKED.get(HOOKED.idFromName(`${name}:0`));
    await shard0.testDrainPerWake(100);
    await shard0.testSkew(HOUR);
    expect(await runDurableObjectAlarm(shard0)).toBe(true);
    const left = await s.getAllMessages();
    // Shard 0's due mail is gone, a new message (the "bounce") stands on shard 0 for each, and
    // shard 1's mail is untouched.
    for (const id of onShard(0)) expect(left).not.toContain(id);
    for (const id of onShard(1)) expect(left).toContain(id);
    const added = left.filter((id) => !ids.includes(id));
    expect(added).toHaveLength(onShard(0).length);
    for (const id of added) expect(id.startsWith('s0.')).toBe(true);
  });

  it('left to the runtime, the alarm of a message due now fires by itself and calls the hook', async () => {
    const { engine, stub } = setup();
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'now' });
    // Polls the hook's log (no fixed sleep); the runtime runs the alarm as soon as it is set.
    await vi.waitFor(
      async () => expect(await stub.testHookCalls()).toMatchObject([{ ids: [id], due: 1 }]),
      { timeout: 10_000, interval: 50 },
    );
  });

  it('a lock keeps the alarm at its expiry; releasing re-arms at the due time; deleting clears it', async () => {
    const { clock, engine, stub, t0 } = setup();
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x', retryAt: t0 + HOUR });
    clock.set(t0 + HOUR);
    const [lease] = await s.claimDue({ limit: 1, ttl: 2 * HOUR });
    expect(lease?.id).toBe(id);
    expect(await stub.testAlarm()).toBe(t0 + 3 * HOUR);
    await s.setMessageRetry(id, t0 + 5 * HOUR, { lease: lease! });
    await s.releaseLease(lease!);
    expect(await stub.testAlarm()).toBe(t0 + 5 * HOUR);
    await s.deleteMessages([lease!]);
    expect(await s.getAllMessages()).toEqual([id]); // the released lease is stale: nothing deleted
    await s.deleteMessage(id);
    expect(await stub.testAlarm()).toBeNull();
  });

  it('a throwing hook is retried with exponential backoff until it succeeds', async () => {
    const { engine, stub, t0 } = setup();
    const s = await engine.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x', retryAt: t0 + HOUR });
    await stub.testFailNext(2);
    await stub.testSkew(HOUR);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    let calls = await stub.testHookCalls();
    expect(calls).toMatchObject([{ attempt: 1, failed: true, ids: [id] }]);
    // HookedShard scales the default 1 s, 2 s, 4 s… backoff to hours.
    expect(await stub.testAlarm()).toBe(calls[0]!.at + HOUR);
    // A change during the backoff does not pull the retry forward.
    await s.setMessageMetaKey(id, 'touched', true);
    expect(await stub.testAlarm()).toBe(calls[0]!.at + HOUR);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    calls = await stub.testHookCalls();
    expect(calls[1]).toMatchObject({ attempt: 2, failed: true });
    expect(await stub.testAlarm()).toBe(calls[1]!.at + 2 * HOUR);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    calls = await stub.testHookCalls();
    expect(calls[2]).toMatchObject({ attempt: 3, failed: false, ids: [id] });
    expect(calls).toHaveLength(3);
    // Told, but nobody claimed: offered again after the first untouched-mail delay (1 h here).
    expect(await stub.testAlarm()).toBe(calls[2]!.at + HOUR);
    // After a success the backoff is gone: the next message wakes the shard at its due time,
    // not after the last retry delay (which would be calls[2].at + 4 h).
    await s.deleteMessage(id); // the relayer sent it
    await s.storeMessage({ meta: {}, contents: 'y', retryAt: t0 + 2 * HOUR });
    expect(await stub.testAlarm()).toBe(t0 + 2 * HOUR);
  });

  it('while the hook makes progress and mail is still due, the shard wakes again; then it rests', async () => {
    const { engine, stub, t0 } = setup();
    const s = await engine.connect();
    const ids = await s.storeMessages(
      Array.from({ length: 3 }, (_, n) => ({ meta: { n }, contents: 'x', retryAt: t0 + HOUR })),
    );
    await stub.testClaimPerWake(1);
    await stub.testSkew(HOUR);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // The later wake-ups are the runtime's own: each claim re-arms the alarm at once.
    await vi.waitFor(async () => expect((await s.stats()).active).toBe(3), {
      timeout: 10_000,
      interval: 50,
    });
    const calls = await stub.testHookCalls();
    expect(calls.map((c) => c.due)).toEqual([3, 2, 1]);
    // Each wake-up lists what is still due, oldest (here: lowest id) first.
    const order = [...ids].sort();
    expect(calls.map((c) => c.ids)).toEqual([order, order.slice(1), order.slice(2)]);
    // Nothing is due any more: the alarm rests at the first lock expiry.
    await vi.waitFor(async () => expect(await stub.testAlarm()).toBe(calls[0]!.at + HOUR), {
      timeout: 10_000,
      interval: 50,
    });
  });

  // Regression: a retry time beyond 2189 (a message parked "forever") made setAlarm throw.
  it('a wake-up beyond the alarm horizon is set at the horizon instead of failing', async () => {
    const { engine, stub } = setup();
    const s = await engine.connect();
    const before = Date.now();
    await s.storeMessage({ meta: {}, contents: 'parked', retryAt: 8.64e15 });
    const alarm = await stub.testAlarm();
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeGreaterThanOrEqual(before + MAX_ALARM_DELAY_MS);
    expect(alarm!).toBeLessThanOrEqual(Date.now() + MAX_ALARM_DELAY_MS);
  });

  it('a lost alarm is set again when the object starts', async () => {
    const { engine, stub, t0 } = setup();
    const s = await engine.connect();
    await s.storeMessage({ meta: {}, contents: 'x', retryAt: t0 + HOUR });
    await runInDurableObject(stub, (_instance: HookedShard, state) => state.storage.deleteAlarm());
    expect(await stub.testAlarm()).toBeNull();
    await evictDurableObject(stub);
    // Any call starts the object again; its constructor re-arms before serving the call.
    expect(await stub.testAlarm()).toBe(t0 + HOUR);
  });

  it('a shard without a hook keeps no alarm', async () => {
    const name = `nohook-${crypto.randomUUID()}`;
    const engine = new DurableObjectEngine({ namespace: QUEUE, shards: 1, name });
    const s = await engine.connect();
    await s.storeMessage({ meta: {}, contents: 'x', retryAt: Date.now() + HOUR });
    const stub = QUEUE.get(QUEUE.idFromName(`${name}:0`));
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBeNull();
  });

  // Regression: the handler armed last from what it saw before awaiting its outbox deliveries,
  // so a message stored meanwhile lost the wake-up its commit had set (7 days away instead of
  // now), and waited for an unrelated change (a flaky relay Worker test showed it).
  it('a message stored while the alarm delivers its outbox keeps its wake-up', async () => {
    const name = `relaying-${crypto.randomUUID()}`;
    const engine = new DurableObjectEngine({ namespace: RELAYING, shards: 1, name });
    const stub = RELAYING.get(RELAYING.idFromName(`${name}:0`));
    const s = await engine.connect();
    const waiting = await s.storeMessage({
      meta: {},
      contents: 'later',
      retryAt: Date.now() + HOUR,
    });
    await s.close();
    await stub.testStoreDuringOutbox();
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    const [arrived] = (await stub.testMessages()).filter((id) => id !== waiting);
    expect(arrived).toBeDefined();
    // Due now: its wake-up is now (or the runtime already ran it, and the hook heard it).
    const alarm = await stub.testAlarm();
    const heard = (await stub.testHeard()).flat();
    expect(heard.includes(arrived!) || (alarm !== null && alarm <= Date.now())).toBe(true);
  });
});
