import { describe, expect, it } from 'vitest';
import { Flusher } from '../src/flusher.js';
import { MetaKey } from '../src/meta.js';
import { listOutbox } from '../src/outbox.js';
import { FlushScheduler } from '../src/scheduler.js';
import { ManualTimers, queue, RELAY_URL, RelayDouble, setup, TOKEN } from './helpers.js';

/** Waits (bounded) until `check` holds, letting promise chains and setImmediate callbacks run. */
async function until(check: () => boolean | Promise<boolean>, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not reached');
}

function harness(options: { online?: () => boolean } = {}) {
  const env = setup();
  const relay = new RelayDouble();
  const timers = new ManualTimers(env.clock);
  const network = new EventTarget();
  const visibility = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  const flusher = new Flusher({
    engine: env.engine,
    history: env.history,
    config: () => ({ relayUrl: RELAY_URL, token: TOKEN }),
    fetch: relay.fetch,
    clock: env.clock,
    random: () => 0,
    timers,
    isOnline: options.online ?? (() => true),
  });
  const passes: unknown[] = [];
  const scheduler = new FlushScheduler({
    flusher,
    engine: env.engine,
    clock: env.clock,
    timers,
    network,
    visibility,
    onPass: (report, error) => passes.push(error ?? report),
  });
  return { ...env, relay, timers, network, visibility, scheduler, passes };
}

describe('FlushScheduler', () => {
  it('flushes new mail as soon as the engine reports it stored', async () => {
    const h = harness();
    h.scheduler.start();
    await until(() => h.passes.length > 0);
    const id = await queue(h.engine, h.clock);
    await until(() => h.relay.accepted.has(id));
    await until(async () => (await listOutbox(h.engine)).length === 0);
    expect(h.relay.requests).toHaveLength(1);
    h.scheduler.stop();
  });

  it('sets one timer for the next stored retry time, and sends when it fires', async () => {
    const h = harness();
    h.relay.script({ status: 503 });
    const id = await queue(h.engine, h.clock);
    h.scheduler.start();
    await until(() => h.relay.requests.length === 1);
    await until(() => h.scheduler.nextRunAt !== null);
    const item = (await listOutbox(h.engine))[0]!;
    expect(item.state).toBe('retry');
    // random() = 0: the delay is exactly half the first cap (5 s).
    expect(item.nextAttemptAt).toBe(h.clock.now() + 2_500);
    expect(h.scheduler.nextRunAt).toBe(item.nextAttemptAt);
    expect(h.timers.pending.size).toBe(1);

    h.clock.set(item.nextAttemptAt!);
    h.timers.fireDue();
    await until(() => h.relay.accepted.has(id));
    await until(() => h.scheduler.nextRunAt === null);
    expect(h.relay.requests).toHaveLength(2);
    h.scheduler.stop();
    expect(h.timers.pending.size).toBe(0);
  });

  it('"online" wakes mail that waited for the network and sends it at once', async () => {
    let online = false;
    const h = harness({ online: () => online });
    const id = await queue(h.engine, h.clock);
    h.scheduler.start();
    await until(() => h.passes.length >= 1);
    // Offline: the pass claimed nothing, posted nothing, and the mail is plainly queued.
    expect(h.relay.requests).toHaveLength(0);
    expect((await listOutbox(h.engine))[0]).toMatchObject({ state: 'queued', attempts: 0 });

    const start = h.clock.now();
    online = true;
    h.network.dispatchEvent(new Event('online'));
    await until(() => h.relay.accepted.has(id));
    expect(h.clock.now()).toBe(start); // at once: no timer had to run
    h.scheduler.stop();
  });

  it('flushes when the page becomes visible again, not when it is hidden', async () => {
    const h = harness();
    h.scheduler.start();
    await until(() => h.passes.length === 1);
    // Stored while the scheduler was stopped (a tab asleep): no change event reaches it.
    h.scheduler.stop();
    const id = await queue(h.engine, h.clock);
    h.scheduler.start();
    await until(() => h.relay.accepted.has(id));
    const passes = h.passes.length;
    h.visibility.visibilityState = 'hidden';
    h.visibility.dispatchEvent(new Event('visibilitychange'));
    h.visibility.visibilityState = 'visible';
    h.visibility.dispatchEvent(new Event('visibilitychange'));
    await until(() => h.passes.length === passes + 1);
    expect(h.passes.length).toBe(passes + 1);
    expect((await h.history.list()).map((e) => e.outboxId)).toEqual([id]);
    expect(MetaKey.status).toBe('status');
    h.scheduler.stop();
  });
});
