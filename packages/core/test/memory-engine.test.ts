import { describe, expect, it } from 'vitest';
import { ChangeHub } from '../src/engine.js';
import {
  type ChangeEvent,
  DEFAULT_MAX_MESSAGE_BYTES,
  ManualClock,
  MemoryEngine,
  MemoryStore,
} from '../src/index.js';

describe('MemoryEngine specifics', () => {
  it('declares its capabilities: not persistent, not shared, change events, 25 MiB', () => {
    expect(new MemoryEngine().supports).toEqual({
      persistent: false,
      shared: false,
      changeEvents: true,
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    });
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(25 * 1024 * 1024);
  });

  it('accepts a 25 MiB message by default and refuses one byte more', async () => {
    const session = await new MemoryEngine().connect();
    const big = new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES);
    big[big.length - 1] = 7;
    const id = await session.storeMessage({ meta: {}, contents: big });
    expect((await session.getMessageContents(id))[DEFAULT_MAX_MESSAGE_BYTES - 1]).toBe(7);
    await expect(
      session.setMessageContents(id, new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES + 1)),
    ).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
  });

  it('two engines over one MemoryStore share state', async () => {
    const store = new MemoryStore();
    const a = await new MemoryEngine({ store }).connect();
    const b = await new MemoryEngine({ store }).connect();
    const id = await a.storeMessage({ meta: {}, contents: 'x' });
    expect(await b.getAllMessages()).toEqual([id]);
  });

  it('a clock that returns garbage is refused rather than corrupting lock times', async () => {
    const session = await new MemoryEngine({ clock: { now: () => Number.NaN } }).connect();
    await expect(session.claimMessageId()).rejects.toBeInstanceOf(TypeError);
  });

  it('reads time only through the injected clock', async () => {
    const clock = new ManualClock(5_000);
    const session = await new MemoryEngine({ clock }).connect();
    const id = await session.storeMessage({ meta: {}, contents: 'x' });
    const lease = await session.acquireLease(id, 100);
    expect(lease?.expiresAt).toBe(5_100);
  });
});

describe('ChangeHub', () => {
  it('delivers to every listener; a throwing listener affects neither the others nor the caller', () => {
    const hub = new ChangeHub();
    const heard: ChangeEvent[] = [];
    const errors: unknown[] = [];
    const original = globalThis.reportError;
    globalThis.reportError = (error: unknown) => errors.push(error);
    try {
      hub.subscribe(() => {
        throw new Error('listener bug');
      });
      const off = hub.subscribe((event) => heard.push(event));
      hub.emit({ type: 'stored', ids: ['a'] });
      hub.emit({ type: 'deleted', ids: [] });
      off();
      hub.emit({ type: 'updated', ids: ['a'] });
      expect(heard).toEqual([{ type: 'stored', ids: ['a'] }]);
      expect(errors).toHaveLength(2);
      expect(hub.size).toBe(1);
    } finally {
      globalThis.reportError = original;
    }
  });
});

describe('ManualClock', () => {
  it('moves only forward, only when told', () => {
    const clock = new ManualClock(10);
    expect(clock.now()).toBe(10);
    expect(clock.advance(5)).toBe(15);
    clock.set(20);
    expect(clock.now()).toBe(20);
    expect(() => clock.set(19)).toThrow(TypeError);
    expect(() => clock.advance(-1)).toThrow(TypeError);
  });
});

describe('sumStats', () => {
  it('adds every count and is all zero for no queues', async () => {
    const { sumStats } = await import('../src/index.js');
    expect(sumStats([])).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
    expect(
      sumStats([
        { total: 3, active: 1, deferred: 1, due: 1 },
        { total: 5, active: 0, deferred: 2, due: 3 },
      ]),
    ).toEqual({ total: 8, active: 1, deferred: 3, due: 4 });
  });
});
