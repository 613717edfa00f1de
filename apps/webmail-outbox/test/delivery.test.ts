/**
 * Undo, "Send later" and the relay's word on sent mail, DOM-free: the flusher posts the undo
 * window's (or the picked) `sendAt`, the same on every retry; delivery checks follow the relay's
 * record with backoff until it is final; an online undo cancels at the relay.
 */
import { describe, expect, it } from 'vitest';
import { cancelAtRelay, checkDelay, checkDeliveries, UNKNOWN_AFTER } from '../src/delivery.js';
import { Flusher } from '../src/flusher.js';
import { MetaKey } from '../src/meta.js';
import { cancel, queueDraft } from '../src/outbox.js';
import { ManualTimers, RELAY_URL, RelayDouble, setup, TOKEN } from './helpers.js';

const config = { relayUrl: RELAY_URL, token: TOKEN };
const draft = (subject: string) => ({
  from: 'alice@example.com',
  to: 'bob@example.org',
  cc: '',
  bcc: '',
  subject,
  text: 'Hello.',
  attachments: [],
});

function flusherFor(env: ReturnType<typeof setup>, relay: RelayDouble) {
  return new Flusher({
    engine: env.engine,
    history: env.history,
    config: () => config,
    fetch: relay.fetch,
    clock: env.clock,
    random: () => 0.5,
    timers: new ManualTimers(env.clock),
    isOnline: () => true,
  });
}

/** A relay answering GET /v1/messages/:id with `states` in turn, and cancels with `cancel`. */
function statusRelay(
  states: unknown[],
  cancelAnswer: { status: number; body?: unknown } = { status: 200 },
) {
  const calls: string[] = [];
  const fetchFn: typeof fetch = async (input, init) => {
    const url = String(input);
    calls.push(`${init?.method ?? 'GET'} ${url}`);
    if (new Headers(init?.headers).get('authorization') !== `Bearer ${TOKEN}`) {
      return new Response('{}', { status: 401 });
    }
    if (url.endsWith('/cancel')) {
      return new Response(JSON.stringify(cancelAnswer.body ?? { state: 'canceled' }), {
        status: cancelAnswer.status,
      });
    }
    const next = states.length > 1 ? states.shift() : states[0];
    if (next === 404) return new Response('{}', { status: 404 });
    if (next === 'offline') throw new TypeError('fetch failed');
    return new Response(JSON.stringify(next), { status: 200 });
  };
  return { calls, fetchFn };
}

describe('undo and send later', () => {
  it('Send posts sendAt at the end of the undo window; "Send later" posts the picked time; a retry posts the same', async () => {
    const env = setup();
    const relay = new RelayDouble().script({ status: 503 });
    const t0 = env.clock.now();
    await queueDraft(env.engine, draft('now'), t0, { undoMs: 10_000 });
    const later = t0 + 3_600_000;
    await queueDraft(env.engine, draft('later'), t0, { undoMs: 10_000, sendAt: later });
    const flusher = flusherFor(env, relay);
    await flusher.flush();
    env.clock.advance(15 * 60_000); // past any backoff
    await flusher.flush();
    const bySubject = (subject: string) =>
      relay.requests
        .filter((r) => Buffer.from(r.body.raw, 'base64').toString().includes(`Subject: ${subject}`))
        .map((r) => (r.body as { sendAt?: number }).sendAt);
    const nowPosts = bySubject('now');
    expect(nowPosts.length).toBeGreaterThanOrEqual(1);
    expect(new Set(nowPosts)).toEqual(new Set([t0 + 10_000]));
    expect(new Set(bySubject('later'))).toEqual(new Set([later]));
    expect(relay.requests.length).toBe(3); // one 503, then both accepted
    expect(relay.accepted.size).toBe(2);
  });

  it('a picked time inside the undo window still waits for the window; undo before the flush leaves nothing to post', async () => {
    const env = setup();
    const relay = new RelayDouble();
    const t0 = env.clock.now();
    const id = await queueDraft(env.engine, draft('soon'), t0, { undoMs: 10_000, sendAt: t0 + 1 });
    const session = await env.engine.connect();
    expect((await session.getMessageMeta(id))[MetaKey.sendAt]).toBe(t0 + 10_000);
    await session.close();
    expect(await cancel(env.engine, id)).toBe('done');
    await flusherFor(env, relay).flush();
    expect(relay.requests).toEqual([]);
  });
});

describe('delivery checks', () => {
  it('follow the record with growing delays until it is final, and keep the bounce reason', async () => {
    const env = setup();
    const relay = new RelayDouble();
    const t0 = env.clock.now();
    await queueDraft(env.engine, draft('checked'), t0, { undoMs: 10_000 });
    await flusherFor(env, relay).flush();
    const { calls, fetchFn } = statusRelay([
      { state: 'scheduled' },
      'offline',
      { state: 'queued' },
      {
        state: 'bounced',
        results: {
          'bob@example.org': { status: 'failed', reply: '550 5.1.1 no such user here' },
        },
      },
    ]);
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const next = await checkDeliveries(env.history, config, fetchFn, env.clock.now());
      if (next === null) break;
      times.push(next - env.clock.now());
      env.clock.advance(next - env.clock.now());
    }
    expect(times).toEqual([checkDelay(1), checkDelay(2), checkDelay(3)]);
    expect(times).toEqual([2_000, 4_000, 8_000]);
    expect(calls).toHaveLength(4);
    const [entry] = await env.history.list();
    expect(entry!.delivery).toEqual({
      state: 'bounced',
      reason: 'bob@example.org: 550 5.1.1 no such user here',
      checks: 4,
      nextCheckAt: null,
    });
    // Final: never asked again.
    expect(await checkDeliveries(env.history, config, fetchFn, env.clock.now() + 3_600_000)).toBe(
      null,
    );
    expect(calls).toHaveLength(4);
    expect(checkDelay(30)).toBe(5 * 60_000);
  });

  it('a 404 is believed only after a few asks: a record that appears late is still followed', async () => {
    const env = setup();
    await queueDraft(env.engine, draft('late'), env.clock.now(), { undoMs: 0 });
    await flusherFor(env, new RelayDouble()).flush();
    const late = statusRelay([404, 404, { state: 'delivered' }]);
    for (let i = 0; i < 5; i++) {
      const next = await checkDeliveries(env.history, config, late.fetchFn, env.clock.now());
      if (next === null) break;
      env.clock.advance(next - env.clock.now());
    }
    expect((await env.history.list())[0]!.delivery).toMatchObject({
      state: 'delivered',
      checks: 3,
    });

    const env2 = setup();
    await queueDraft(env2.engine, draft('gone'), env2.clock.now(), { undoMs: 0 });
    await flusherFor(env2, new RelayDouble()).flush();
    const gone = statusRelay([404]);
    for (let i = 0; i < 10; i++) {
      const next = await checkDeliveries(env2.history, config, gone.fetchFn, env2.clock.now());
      if (next === null) break;
      env2.clock.advance(next - env2.clock.now());
    }
    expect((await env2.history.list())[0]!.delivery).toMatchObject({
      state: 'unknown',
      checks: UNKNOWN_AFTER,
      nextCheckAt: null,
    });
  });

  it('an online undo cancels at the relay; once sending it is too late', async () => {
    const ok = statusRelay([{ state: 'scheduled' }]);
    expect(await cancelAtRelay(config, 's1.x', ok.fetchFn)).toEqual({ kind: 'canceled' });
    expect(ok.calls).toEqual([`POST ${RELAY_URL}/v1/messages/s1.x/cancel`]);
    const late = statusRelay([], {
      status: 409,
      body: { error: { code: 'ALREADY_SENDING', state: 'sending' } },
    });
    expect(await cancelAtRelay(config, 's1.x', late.fetchFn)).toEqual({
      kind: 'too-late',
      state: 'sending',
    });
    const twice = statusRelay([], {
      status: 409,
      body: { error: { code: 'ALREADY_FINAL', state: 'canceled' } },
    });
    expect(await cancelAtRelay(config, 's1.x', twice.fetchFn)).toEqual({ kind: 'canceled' });
  });
});
