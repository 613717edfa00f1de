/**
 * The queue policy on the real memory engine with a ManualClock and ManualTimers: every outcome,
 * give-up by attempts and by lifetime, bounces parsed back, no bounce of a bounce, and a relayer
 * whose lease was taken over writing nothing. The relayer is scripted (a transport double).
 */
import { ErrorCode, isMailspoolError, ManualClock, MemoryEngine } from '@mailspool/core';
import { describe, expect, it } from 'vitest';
import {
  ExponentialBackoff,
  ManualTimers,
  RelayError,
  RelayErrorCode,
  type RelayEvent,
  type RelayOptions,
  RelayQueue,
} from '../src/index.js';
import {
  all,
  answer,
  dump,
  enqueue,
  messageBytes,
  parseDsn,
  type Script,
  ScriptedRelayer,
} from './support/queue-helpers.js';

const T0 = 1_700_000_000_000;
const MIN = 60_000;

function setup(script: Script, options: Partial<RelayOptions> = {}) {
  const clock = new ManualClock(T0);
  const timers = new ManualTimers(clock);
  const engine = new MemoryEngine({ clock });
  const relayer = new ScriptedRelayer(script);
  const events: RelayEvent[] = [];
  const queue = new RelayQueue({
    engine,
    relayer,
    clock,
    timers,
    // random 0.5 → no jitter: delays are exactly 300 s, 600 s, 1200 s...
    policy: new ExponentialBackoff({ random: () => 0.5 }),
    reportingMta: 'mx.example.test',
    leaseTtl: 10 * MIN,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return { clock, timers, engine, relayer, queue, events };
}

async function stats(engine: MemoryEngine) {
  const session = await engine.connect();
  try {
    return await session.stats();
  } finally {
    await session.close();
  }
}

/** A promise to resolve by hand. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('outcomes', () => {
  it('2xx for every recipient: the message is deleted', async () => {
    const { engine, relayer, queue, events } = setup(all('delivered'));
    const id = await enqueue(engine, { recipients: ['a@x.test', 'b@x.test'], timestamp: T0 });
    const report = await queue.runOnce();
    expect(report.claimed).toBe(1);
    expect(report.messages[0]).toMatchObject({
      id,
      outcome: 'completed',
      delivered: ['a@x.test', 'b@x.test'],
    });
    expect(relayer.calls).toHaveLength(1);
    expect(relayer.calls[0]!.recipients).toEqual(['a@x.test', 'b@x.test']);
    expect(relayer.calls[0]!.contents).toEqual(messageBytes());
    expect(await dump(engine)).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['delivered', 'completed']);
  });

  it('postponed: the relayer did not try, so only the retry time changes (no attempt counted)', async () => {
    const { engine, queue, events } = setup(() => ({
      recipients: [],
      postponed: { until: T0 + 5 * MIN, reason: 'smarthost suspended' },
    }));
    const id = await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    const [before] = await dump(engine);
    const report = await queue.runOnce();
    expect(report.messages[0]).toMatchObject({ id, outcome: 'postponed', retryAt: T0 + 5 * MIN });
    const [after] = await dump(engine);
    expect(after!.meta).toEqual(before!.meta);
    expect(after!.meta.attempts).toBe(0);
    const session = await engine.connect();
    const info = await session.inspect(id);
    await session.close();
    expect(info).toMatchObject({ state: 'deferred', retryAt: T0 + 5 * MIN, lockedUntil: null });
    expect(events).toEqual([
      { type: 'postponed', id, retryAt: T0 + 5 * MIN, reason: 'smarthost suspended' },
    ]);
    expect((await queue.runOnce()).claimed).toBe(0);
  });

  it('a newly stored message is due at once (first attempt never orphaned)', async () => {
    const { engine, queue } = setup(all('delivered'));
    await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    expect((await stats(engine)).due).toBe(1);
    expect((await queue.runOnce()).claimed).toBe(1);
  });

  it('4xx: attempts + 1, retry after the backoff, lease released, last_error kept', async () => {
    const { engine, queue, clock, relayer } = setup(all('deferred'));
    const id = await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    const report = await queue.runOnce();
    expect(report.messages[0]).toMatchObject({ outcome: 'deferred', retryAt: T0 + 300_000 });
    const [stored] = await dump(engine);
    expect(stored!.id).toBe(id);
    expect(stored!.meta).toMatchObject({
      attempts: 1,
      last_attempt: T0,
      last_error: '451 4.2.1 Mailbox busy',
      delivered: [],
      failed: [],
    });
    expect(stored!.meta).not.toHaveProperty('next_attempt');
    const session = await engine.connect();
    expect((await session.inspect(id)).retryAt, 'the retry time, from the engine').toBe(
      T0 + 300_000,
    );
    await session.close();
    expect(await stats(engine)).toMatchObject({ active: 0, deferred: 1, due: 0 });
    // Not before the retry time...
    clock.advance(299_999);
    expect((await queue.runOnce()).claimed).toBe(0);
    // ...then again, with the next delay doubled.
    clock.advance(1);
    const second = await queue.runOnce();
    expect(second.messages[0]).toMatchObject({
      outcome: 'deferred',
      retryAt: clock.now() + 600_000,
    });
    expect(relayer.calls).toHaveLength(2);
    expect((await dump(engine))[0]!.meta.attempts).toBe(2);
  });

  it('some recipients accepted: recorded, and never sent to again', async () => {
    const { engine, queue, clock, relayer } = setup((m) => answer(m, { 'b@x.test': 'deferred' }));
    const id = await enqueue(engine, {
      recipients: ['a@x.test', 'b@x.test', 'c@x.test'],
      timestamp: T0,
    });
    const first = await queue.runOnce();
    expect(first.messages[0]).toMatchObject({
      outcome: 'deferred',
      delivered: ['a@x.test', 'c@x.test'],
      deferred: ['b@x.test'],
    });
    expect((await dump(engine))[0]!.meta.delivered).toEqual(['a@x.test', 'c@x.test']);

    relayer.script = all('delivered');
    clock.advance(300_000);
    const second = await queue.runOnce();
    expect(second.messages[0]).toMatchObject({ id, outcome: 'completed', delivered: ['b@x.test'] });
    expect(relayer.calls.map((c) => c.recipients)).toEqual([
      ['a@x.test', 'b@x.test', 'c@x.test'],
      ['b@x.test'],
    ]);
    expect(relayer.sentTo().filter((r) => r === 'a@x.test')).toHaveLength(1);
    expect(await dump(engine)).toEqual([]);
  });

  it('5xx: a DSN to the sender from <> replaces the message in one step', async () => {
    const { engine, queue, events } = setup(all('failed'));
    const id = await enqueue(engine, {
      sender: 'alice@example.test',
      recipients: ['nobody@x.test'],
      timestamp: T0,
    });
    const report = await queue.runOnce();
    const bounceId = report.messages[0]!.bounceId!;
    expect(report.messages[0]).toMatchObject({ outcome: 'completed', failed: ['nobody@x.test'] });
    const stored = await dump(engine);
    expect(stored.map((m) => m.id)).toEqual([bounceId]);
    expect(stored[0]!.meta).toMatchObject({
      sender: '',
      recipients: ['alice@example.test'],
      attempts: 0,
      bounce: true,
      bounce_of: id,
    });
    expect(events.map((e) => e.type)).toEqual(['bounced', 'completed']);

    const dsn = await parseDsn(stored[0]!.contents!);
    expect(dsn.contentType).toMatch(/^multipart\/report;\s*report-type=delivery-status;/);
    expect(dsn.from).toBe('MAILER-DAEMON@mx.example.test');
    expect(dsn.to).toEqual(['alice@example.test']);
    expect(dsn.text).toContain('<nobody@x.test>: 550 5.1.1 No such user');
    expect(dsn.perMessage).toMatchObject({
      'reporting-mta': 'dns; mx.example.test',
      'x-mailspool-queue-id': id,
    });
    expect(dsn.perRecipient).toEqual([
      expect.objectContaining({
        'final-recipient': 'rfc822; nobody@x.test',
        action: 'failed',
        status: '5.1.1',
        'remote-mta': 'dns; peer.test',
        'diagnostic-code': 'smtp; 550 5.1.1 No such user',
      }),
    ]);
    expect(dsn.returnedHeaders).toContain('Subject: Hello');
    expect(dsn.returnedHeaders).toContain('Message-ID: <orig-1@example.test>');
    expect(dsn.returnedHeaders).not.toContain('Hello Bob.');
  });

  it('the DSN is itself delivered by the loop, and a failing DSN is dropped, not bounced', async () => {
    const { engine, queue, relayer, events } = setup(all('failed'));
    await enqueue(engine, { recipients: ['nobody@x.test'], timestamp: T0 });
    await queue.runOnce(); // original → DSN
    const second = await queue.runOnce(); // DSN → fails too
    expect(relayer.calls[1]).toMatchObject({ sender: '', recipients: ['alice@example.test'] });
    expect(second.messages[0]).toMatchObject({
      outcome: 'completed',
      failed: ['alice@example.test'],
    });
    expect(second.messages[0]!.bounceId).toBeUndefined();
    expect(await dump(engine)).toEqual([]);
    expect(events.filter((e) => e.type === 'bounce-dropped')).toHaveLength(1);
  });

  it('no bounce of a bounce: a message from <> that fails is dropped with an event', async () => {
    const { engine, queue, events } = setup(all('failed'));
    const id = await enqueue(engine, { sender: '', recipients: ['a@x.test'], timestamp: T0 });
    await queue.runOnce();
    expect(await dump(engine)).toEqual([]);
    expect(events).toContainEqual({
      type: 'bounce-dropped',
      id,
      recipients: ['a@x.test'],
      diagnostic: '550 5.1.1 No such user',
    });
    expect(events.some((e) => e.type === 'bounced')).toBe(false);
  });

  it('mixed: one delivered, one bounced now, one retried; one DSN in all', async () => {
    const { engine, queue, clock, relayer } = setup((m) =>
      answer(m, { 'bad@x.test': 'failed', 'later@x.test': 'deferred' }),
    );
    const id = await enqueue(engine, {
      recipients: ['good@x.test', 'bad@x.test', 'later@x.test'],
      timestamp: T0,
    });
    const first = await queue.runOnce();
    expect(first.messages[0]).toMatchObject({
      outcome: 'deferred',
      delivered: ['good@x.test'],
      failed: ['bad@x.test'],
      deferred: ['later@x.test'],
    });
    const bounceId = first.messages[0]!.bounceId!;
    const original = (await dump(engine)).find((m) => m.id === id)!;
    expect(original.meta).toMatchObject({
      delivered: ['good@x.test'],
      failed: ['bad@x.test'],
    });
    expect(original.meta).not.toHaveProperty('bounce_id');
    const dsn = await parseDsn((await dump(engine)).find((m) => m.id === bounceId)!.contents!);
    expect(dsn.perRecipient.map((r) => r['final-recipient'])).toEqual(['rfc822; bad@x.test']);

    relayer.script = all('delivered');
    clock.advance(300_000);
    await queue.drain();
    expect(await dump(engine)).toEqual([]);
    // good@ once, bad@ once (refused), later@ twice; the DSN once to the sender.
    expect(relayer.sentTo().sort()).toEqual(
      ['alice@example.test', 'bad@x.test', 'good@x.test', 'later@x.test', 'later@x.test'].sort(),
    );
  });

  it('a relayer that rejects: every pending recipient is deferred', async () => {
    const { engine, queue } = setup(() => {
      throw new Error('socket exploded');
    });
    await enqueue(engine, { recipients: ['a@x.test', 'b@x.test'], timestamp: T0 });
    const report = await queue.runOnce();
    expect(report.messages[0]).toMatchObject({
      outcome: 'deferred',
      deferred: ['a@x.test', 'b@x.test'],
    });
    expect((await dump(engine))[0]!.meta.last_error).toBe('4.0.0 socket exploded');
  });

  it('a relayer that rejects with INVALID_ADDRESS: every pending recipient bounces', async () => {
    const { engine, queue } = setup(() => {
      throw new RelayError(RelayErrorCode.INVALID_ADDRESS, 'bad address');
    });
    await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    const report = await queue.runOnce();
    expect(report.messages[0]).toMatchObject({ outcome: 'completed', failed: ['a@x.test'] });
    const dsn = await parseDsn((await dump(engine))[0]!.contents!);
    expect(dsn.perRecipient[0]).toMatchObject({
      status: '5.1.3',
      'diagnostic-code': 'X-Mailspool; bad address',
    });
  });

  it('a recipient the relayer leaves out is deferred, not lost', async () => {
    const { engine, queue } = setup((m) => ({
      recipients: answer(m).recipients.filter((r) => r.recipient !== 'b@x.test'),
    }));
    await enqueue(engine, { recipients: ['a@x.test', 'b@x.test'], timestamp: T0 });
    const report = await queue.runOnce();
    expect(report.messages[0]).toMatchObject({ delivered: ['a@x.test'], deferred: ['b@x.test'] });
  });
});

describe('retry policy', () => {
  it('backoff stays within [min, max] for any random value and grows to the cap', () => {
    for (const r of [0, 0.25, 0.5, 0.75, 0.999999]) {
      const policy = new ExponentialBackoff({ random: () => r });
      let previousBase = 0;
      for (let attempts = 1; attempts <= 40; attempts++) {
        const delay = policy.delay(attempts);
        expect(delay).toBeGreaterThanOrEqual(300_000);
        expect(delay).toBeLessThanOrEqual(4_000_000);
        const base = Math.min(4_000_000, 300_000 * 2 ** (attempts - 1));
        expect(base).toBeGreaterThanOrEqual(previousBase);
        previousBase = base;
      }
    }
    const exact = new ExponentialBackoff({ random: () => 0.5 });
    expect([1, 2, 3, 4, 5, 6, 30].map((n) => exact.delay(n))).toEqual([
      300_000, 600_000, 1_200_000, 2_400_000, 4_000_000, 4_000_000, 4_000_000,
    ]);
    // Jitter ±20 %: attempt 3 (base 1200 s) spans 960–1440 s.
    expect(new ExponentialBackoff({ random: () => 0 }).delay(3)).toBe(960_000);
    expect(new ExponentialBackoff({ random: () => 1 }).delay(3)).toBe(1_440_000);
    // ...but never below the minimum nor above the maximum.
    expect(new ExponentialBackoff({ random: () => 0 }).delay(1)).toBe(300_000);
    expect(new ExponentialBackoff({ random: () => 1 }).delay(10)).toBe(4_000_000);
  });

  it('rejects options out of range with TypeError', () => {
    expect(() => new ExponentialBackoff({ minDelay: 0 })).toThrow(TypeError);
    expect(() => new ExponentialBackoff({ minDelay: 10, maxDelay: 5 })).toThrow(TypeError);
    expect(() => new ExponentialBackoff({ jitter: 2 })).toThrow(TypeError);
    expect(() => new ExponentialBackoff({ maxAttempts: 0 })).toThrow(TypeError);
  });

  it('gives up after maxAttempts: the last 4xx becomes a 5.4.7 bounce', async () => {
    const { engine, queue, clock, relayer } = setup(all('deferred'), {
      policy: new ExponentialBackoff({ random: () => 0.5, maxAttempts: 3 }),
    });
    const id = await enqueue(engine, { recipients: ['slow@x.test'], timestamp: T0 });
    const outcomes: string[] = [];
    for (let round = 0; round < 10 && (await dump(engine)).some((m) => m.id === id); round++) {
      const report = await queue.runOnce();
      outcomes.push(...report.messages.map((m) => m.outcome));
      clock.advance(4_000_000);
    }
    expect(outcomes).toEqual(['deferred', 'deferred', 'completed']);
    expect(relayer.calls).toHaveLength(3);
    const [bounce] = await dump(engine);
    expect(bounce!.meta).toMatchObject({ sender: '', bounce_of: id });
    const dsn = await parseDsn(bounce!.contents!);
    expect(dsn.perRecipient[0]).toMatchObject({
      'final-recipient': 'rfc822; slow@x.test',
      action: 'failed',
      status: '5.4.7',
    });
    expect(dsn.perRecipient[0]!['diagnostic-code']).toBe(
      'X-Mailspool; gave up after 3 attempts; last error: 451 4.2.1 Mailbox busy',
    );
  });

  it('gives up when the queue lifetime is over, never scheduling past it', async () => {
    const lifetime = 60 * MIN;
    const { engine, queue, clock, relayer } = setup(all('deferred'), {
      policy: new ExponentialBackoff({ random: () => 0.5, maxLifetime: lifetime }),
    });
    const id = await enqueue(engine, { recipients: ['slow@x.test'], timestamp: T0 });
    const retries: number[] = [];
    for (let round = 0; round < 20; round++) {
      const report = await queue.runOnce();
      const message = report.messages[0];
      if (!message) break;
      if (message.outcome === 'completed') break;
      retries.push(message.retryAt!);
      clock.set(message.retryAt!);
    }
    // 300 s, 600 s, 1200 s, then capped at the deadline (T0 + 1 h) instead of +2400 s.
    expect(retries).toEqual([T0 + 300_000, T0 + 900_000, T0 + 2_100_000, T0 + lifetime]);
    expect(retries.every((at) => at <= T0 + lifetime)).toBe(true);
    expect(relayer.calls).toHaveLength(5);
    const [bounce] = await dump(engine);
    expect(bounce!.meta.bounce_of).toBe(id);
    const dsn = await parseDsn(bounce!.contents!);
    expect(dsn.perRecipient[0]!.status).toBe('5.4.7');
    expect(dsn.perRecipient[0]!['diagnostic-code']).toMatch(
      /^X-Mailspool; delivery time expired after 5 attempts/,
    );
  });
});

describe('leases', () => {
  it('a long delivery renews its lease; others can not claim the message meanwhile', async () => {
    const hold = gate();
    const { engine, queue, timers, relayer } = setup(async (m) => {
      await hold.promise;
      return answer(m);
    });
    await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    const run = queue.runOnce();
    await timers.advance(0);
    expect(relayer.calls).toHaveLength(1);
    // Three lease lifetimes pass during the delivery.
    await timers.advance(30 * MIN);
    const rival = new RelayQueue({ engine, relayer, clock: timers.clock, timers });
    expect((await rival.runOnce()).claimed).toBe(0);
    expect(await stats(engine)).toMatchObject({ active: 1 });
    hold.open();
    const report = await run;
    expect(report.messages[0]!.outcome).toBe('completed');
    expect(relayer.calls[0]!.signal.aborted).toBe(false);
    expect(await dump(engine)).toEqual([]);
  });

  it('a relayer whose lease was taken over is aborted and writes nothing', async () => {
    const { engine, queue, timers, relayer, events } = setup(
      (_m, { signal }) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
    );
    const id = await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    const run = queue.runOnce();
    await timers.advance(0);
    expect(relayer.calls).toHaveLength(1);
    const before = await dump(engine);

    // An operator unlocks it and another relayer takes it.
    const admin = await engine.connect();
    await admin.unlockMessage(id);
    const rivalLease = await admin.acquireLease(id, 10 * MIN);
    expect(rivalLease).not.toBeNull();

    await timers.advance(10 * MIN); // the next renewal finds the lease stale
    const report = await run;
    expect(report.messages[0]!.outcome).toBe('lease-lost');
    expect(relayer.calls[0]!.signal.aborted).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['lease-lost']);
    expect(await dump(engine)).toEqual(before);
    // The rival's lease is still the current one.
    await expect(admin.releaseLease(rivalLease!)).resolves.toBeUndefined();
    await admin.close();
  });

  it('a relayer that ignores the abort and answers 5xx late: no write, no DSN left', async () => {
    const hold = gate();
    const { engine, queue, timers, events } = setup(async (m) => {
      await hold.promise;
      return answer(m, { 'a@x.test': 'failed' });
    });
    const id = await enqueue(engine, { recipients: ['a@x.test'], timestamp: T0 });
    const run = queue.runOnce();
    await timers.advance(0);
    const before = await dump(engine);
    const admin = await engine.connect();
    await admin.unlockMessage(id);
    const rivalLease = await admin.acquireLease(id, 10 * MIN);
    hold.open(); // before any renewal could notice
    const report = await run;
    expect(report.messages[0]!.outcome).toBe('lease-lost');
    expect(events.map((e) => e.type)).toEqual(['lease-lost']);
    expect(await dump(engine)).toEqual(before);
    await expect(admin.releaseLease(rivalLease!)).resolves.toBeUndefined();
    await admin.close();
  });
});

describe('loop options', () => {
  it('batchSize bounds a run and concurrency bounds parallel deliveries', async () => {
    const { engine, queue, relayer, timers } = setup(
      async (m) => {
        await timers.advance(0);
        return answer(m);
      },
      { batchSize: 3, concurrency: 2 },
    );
    for (let i = 0; i < 5; i++)
      await enqueue(engine, { recipients: [`r${i}@x.test`], timestamp: T0 + i });
    const first = await queue.runOnce();
    expect(first.claimed).toBe(3);
    expect(relayer.maxActive).toBe(2);
    const reports = await queue.drain();
    expect(reports.map((r) => r.claimed)).toEqual([2, 0]);
    expect(relayer.calls).toHaveLength(5);
  });

  it('corrupt meta: an error event, the message kept and moved out of the way', async () => {
    const { engine, queue, events, clock } = setup(all('delivered'));
    const session = await engine.connect();
    const id = await session.storeMessage({ meta: { sender: 42 }, contents: 'x' });
    const report = await queue.runOnce();
    expect(report.messages[0]!.outcome).toBe('error');
    const error = events.find((e) => e.type === 'error');
    expect(
      isMailspoolError(error && 'error' in error ? error.error : null, ErrorCode.CORRUPT),
    ).toBe(true);
    expect(await session.getAllMessages()).toEqual([id]);
    expect(await session.getDeferredMessages(clock.now() + 60 * MIN)).toEqual([id]);
    await session.close();
  });

  it('rejects bad options with TypeError', () => {
    const engine = new MemoryEngine();
    const relayer = new ScriptedRelayer(all('delivered'));
    expect(() => new RelayQueue({ engine, relayer, batchSize: 0 })).toThrow(TypeError);
    expect(() => new RelayQueue({ engine, relayer, concurrency: 1.5 })).toThrow(TypeError);
    expect(() => new RelayQueue({ engine, relayer, leaseTtl: -1 })).toThrow(TypeError);
    expect(() => new RelayQueue({ engine: {} as MemoryEngine, relayer })).toThrow(TypeError);
  });
});

describe('delay warnings', () => {
  const HOUR = 60 * MIN;
  const warnings = async (engine: MemoryEngine, of: string) =>
    (await dump(engine)).filter((m) => m.meta.bounce_of === of);

  /** Runs every due attempt of the queue as the clock moves to each retry time, `rounds` times. */
  async function deferRounds(
    queue: RelayQueue,
    clock: ManualClock,
    rounds: number,
  ): Promise<number[]> {
    const attemptsAt: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const report = await queue.runOnce();
      const message = report.messages.find((m) => m.outcome === 'deferred');
      if (!message) break;
      attemptsAt.push(clock.now());
      clock.set(message.retryAt!);
    }
    return attemptsAt;
  }

  it('one DSN with Action: delayed once the message waited `after`, in the attempt that deferred it; never a second', async () => {
    const { engine, queue, clock, events, relayer } = setup(
      (m) => answer(m, { 'slow@x.test': 'deferred' }),
      {
        // 300 s doubling to 4000 s: about 12 attempts in the first 8 hours.
        policy: new ExponentialBackoff({ random: () => 0.5 }),
        delayWarning: { after: 4 * HOUR },
      },
    );
    const id = await enqueue(engine, {
      recipients: ['slow@x.test', 'fast@x.test'],
      timestamp: T0,
    });
    // Every attempt before 4 h defers without a warning.
    while (clock.now() < T0 + 4 * HOUR) {
      const report = await queue.runOnce();
      expect(report.messages[0]).toMatchObject({ outcome: 'deferred' });
      expect(report.messages[0]!.warningId).toBeUndefined();
      if (report.messages[0]!.retryAt! >= T0 + 4 * HOUR) {
        clock.set(report.messages[0]!.retryAt!);
        break;
      }
      clock.set(report.messages[0]!.retryAt!);
    }
    expect(await warnings(engine, id)).toHaveLength(0);
    // The first attempt after 4 h: the warning is stored with the attempt's own commit.
    const warnedAt = clock.now();
    const report = await queue.runOnce();
    const warningId = report.messages[0]!.warningId;
    expect(warningId).toBeDefined();
    const [original] = (await dump(engine)).filter((m) => m.id === id);
    expect(original!.meta.delay_warned).toBe(warnedAt);
    expect(events).toContainEqual({
      type: 'delay-warned',
      id,
      warningId,
      recipients: ['slow@x.test'],
    });
    const [stored] = await warnings(engine, id);
    expect(stored!.id).toBe(warningId);
    expect(stored!.meta).toMatchObject({ sender: '', recipients: ['alice@example.test'] });
    // Five more deferrals, hours apart (the warning itself is delivered meanwhile): still
    // exactly one warning was ever sent.
    clock.set(report.messages[0]!.retryAt!);
    expect(await deferRounds(queue, clock, 5)).toHaveLength(5);
    const found = relayer.calls.filter((call) => call.sender === '');
    expect(found).toHaveLength(1);
    expect(found[0]!.id).toBe(warningId);
    const dsn = await parseDsn(found[0]!.contents);
    expect(dsn.subject).toBe('Delayed Mail (still being retried)');
    expect(dsn.contentType).toMatch(/multipart\/report; report-type=delivery-status/);
    expect(dsn.to).toEqual(['alice@example.test']);
    expect(dsn.text).toMatch(/warning only/);
    // Only the recipient still being retried; the delivered one is not in it.
    expect(dsn.perRecipient).toHaveLength(1);
    expect(dsn.perRecipient[0]).toMatchObject({
      'final-recipient': 'rfc822; slow@x.test',
      action: 'delayed',
      status: '4.2.1',
      'diagnostic-code': 'smtp; 451 4.2.1 Mailbox busy',
      // The default lifetime: 5 days after the message was received.
      'will-retry-until': new Date(T0 + 5 * 24 * HOUR).toUTCString().replace(/GMT$/, '+0000'),
    });
    expect(dsn.returnedHeaders).toContain('Message-ID: <orig-1@example.test>');
  });

  it('none without delayWarning, none before the time, none for a bounce', async () => {
    for (const delayWarning of [undefined, { after: 100 * HOUR }]) {
      const { engine, queue, clock } = setup(all('deferred'), {
        ...(delayWarning ? { delayWarning } : {}),
        policy: new ExponentialBackoff({ random: () => 0.5 }),
      });
      const id = await enqueue(engine, { recipients: ['slow@x.test'], timestamp: T0 });
      // 20 deferrals span more than 12 hours.
      const at = await deferRounds(queue, clock, 20);
      expect(at.at(-1)! - T0).toBeGreaterThan(12 * HOUR);
      expect(await warnings(engine, id)).toHaveLength(0);
      expect((await dump(engine)).map((m) => m.meta.delay_warned)).toEqual([undefined]);
    }
    const { engine, queue, clock } = setup(all('deferred'), {
      delayWarning: { after: HOUR },
      policy: new ExponentialBackoff({ random: () => 0.5 }),
    });
    const bounceId = await enqueue(engine, {
      sender: '',
      recipients: ['alice@example.test'],
      timestamp: T0,
    });
    await deferRounds(queue, clock, 10);
    expect(clock.now() - T0).toBeGreaterThan(HOUR);
    expect((await dump(engine)).map((m) => m.id)).toEqual([bounceId]);
  });

  it('counts from `since` when given (a scheduled send)', async () => {
    const { engine, queue, clock } = setup(all('deferred'), {
      delayWarning: { after: HOUR, since: (_envelope, meta) => meta.send_at as number },
      policy: new ExponentialBackoff({ random: () => 0.5 }),
    });
    const id = await enqueue(
      engine,
      { recipients: ['slow@x.test'], timestamp: T0 },
      messageBytes(),
      { send_at: T0 + 3 * HOUR },
    );
    clock.set(T0 + 3 * HOUR);
    // Three hours after submission, but the first attempt after its scheduled time: no warning.
    expect((await queue.runOnce()).messages[0]!.warningId).toBeUndefined();
    // An hour after it: the next attempt warns.
    clock.set(T0 + 4 * HOUR);
    const report = await queue.runOnce();
    expect(report.messages[0]!.warningId).toBeDefined();
    expect(await warnings(engine, id)).toHaveLength(1);
  });

  it('rejects a bad delayWarning with TypeError', () => {
    const engine = new MemoryEngine();
    const relayer = new ScriptedRelayer(all('delivered'));
    expect(() => new RelayQueue({ engine, relayer, delayWarning: { after: 0 } })).toThrow(
      TypeError,
    );
    expect(() => new RelayQueue({ engine, relayer, delayWarning: { after: Number.NaN } })).toThrow(
      TypeError,
    );
  });
});
