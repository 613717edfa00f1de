/**
 * Test doubles for the flusher's unit tests: a scripted in-process relay that follows
 * docs/relay-api.md for `POST /v1/messages` (auth, JSON, Idempotency-Key de-duplication, 409 on
 * key reuse with another body), and timers driven by a ManualClock.
 */
import { type Clock, ManualClock, MemoryEngine, MemoryStore } from '@mailspool/core';
import type { Timers } from '../src/flusher.js';
import { SentHistory } from '../src/history.js';
import { queueDraft } from '../src/outbox.js';

export const TOKEN = 'tenant-token-1';
export const RELAY_URL = 'http://relay.test';

/** What the relay double does with one request, instead of its normal behaviour. */
export type Step =
  /** Behave like the real Worker (202, or 200 duplicate). */
  | 'normal'
  /** Throw like fetch does without a connection; nothing reaches the relay. */
  | 'network-error'
  /** Accept the message (as 'normal'), then lose the response: fetch throws. */
  | 'lost-response'
  /** Answer with this status and body. */
  | { status: number; body?: unknown; headers?: Record<string, string> };

/** One request the double received. */
export interface Received {
  readonly key: string | null;
  readonly authorization: string | null;
  readonly body: { from: string; to: string[]; raw: string };
}

/** The scripted relay. */
export class RelayDouble {
  /** Every request, in order (network errors included: they never reached it, but were tried). */
  readonly requests: Received[] = [];
  /** Messages queued at the relay, by Idempotency-Key (what would reach the SMTP server). */
  readonly accepted = new Map<string, Received['body']>();
  readonly #steps: Step[] = [];
  /** When set, each request waits for this promise before answering (to hold posts in flight). */
  gate: Promise<void> | null = null;
  #inFlight = new Map<string, number>();
  /** The most posts of one key that were ever in flight at once. */
  maxConcurrentPerKey = 0;

  /** Queues steps for the next requests; afterwards requests are 'normal'. */
  script(...steps: Step[]): this {
    this.#steps.push(...steps);
    return this;
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const url = String(input);
    const headers = new Headers(init?.headers);
    const key = headers.get('idempotency-key');
    const body = JSON.parse(String(init?.body)) as Received['body'];
    const received: Received = { key, authorization: headers.get('authorization'), body };
    this.requests.push(received);
    const step = this.#steps.shift() ?? 'normal';
    const inFlightKey = key ?? '';
    const now = (this.#inFlight.get(inFlightKey) ?? 0) + 1;
    this.#inFlight.set(inFlightKey, now);
    this.maxConcurrentPerKey = Math.max(this.maxConcurrentPerKey, now);
    try {
      if (this.gate) await this.gate;
      if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError');
      if (step === 'network-error') throw new TypeError('fetch failed');
      if (url !== `${RELAY_URL}/v1/messages` || init?.method !== 'POST') {
        return json(404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
      }
      if (typeof step === 'object') return json(step.status, step.body ?? null, step.headers);
      if (received.authorization !== `Bearer ${TOKEN}`) {
        return json(401, { error: { code: 'UNAUTHORIZED', message: 'bad token' } });
      }
      const response = this.#accept(received);
      if (step === 'lost-response') throw new TypeError('network connection lost');
      return response;
    } finally {
      this.#inFlight.set(inFlightKey, (this.#inFlight.get(inFlightKey) ?? 1) - 1);
    }
  };

  #accept(received: Received): Response {
    const key = received.key;
    if (key === null) return json(400, { error: { code: 'INVALID_REQUEST', message: 'no key' } });
    const before = this.accepted.get(key);
    if (before) {
      if (JSON.stringify(before) !== JSON.stringify(received.body)) {
        return json(409, { error: { code: 'IDEMPOTENCY_CONFLICT', message: 'key reused' } });
      }
      return json(200, { id: `relay-${key}`, duplicate: true });
    }
    this.accepted.set(key, received.body);
    return json(202, { id: `relay-${key}`, duplicate: false });
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** Timers that fire only when told to, at the ManualClock's time. */
export class ManualTimers implements Timers {
  readonly #clock: ManualClock;
  #next = 1;
  readonly pending = new Map<number, { at: number; callback: () => void }>();

  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.pending.set(id, { at: this.#clock.now() + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** The earliest pending timer's time, or null. */
  get nextAt(): number | null {
    let next: number | null = null;
    for (const { at } of this.pending.values()) if (next === null || at < next) next = at;
    return next;
  }

  /** Runs every timer due at the clock's current time (bounded, in time order). */
  fireDue(): number {
    let fired = 0;
    for (let i = 0; i < 1000; i++) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= this.#clock.now())
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      due[1].callback();
      fired++;
    }
    return fired;
  }
}

/** A fresh outbox (MemoryEngine), history and clock. */
export function setup(start = 1_700_000_000_000): {
  clock: ManualClock;
  store: MemoryStore;
  engine: MemoryEngine;
  history: SentHistory;
} {
  const clock = new ManualClock(start);
  const store = new MemoryStore();
  const engine = new MemoryEngine({ clock, store });
  const history = new SentHistory(new MemoryEngine({ clock }));
  return { clock, store, engine, history };
}

/** Queues a simple mail and returns its id. */
export function queue(engine: MemoryEngine, clock: Clock, subject = 'Hello'): Promise<string> {
  return queueDraft(
    engine,
    { from: 'alice@example.com', to: 'bob@example.org', subject, text: `Body of ${subject}` },
    clock.now(),
  );
}

/** Lets pending promise callbacks run (the double and the engine resolve on microtasks). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
