import { describe, expect, it } from 'vitest';
import {
  assertCurrent,
  claimedRecord,
  compareDue,
  dueAt,
  isActive,
  isComplete,
  isCurrent,
  isDeferred,
  isDue,
  isWaiting,
  lockRecord,
  renewRecord,
  storedRecord,
  unlockRecord,
  writableRecord,
} from '../src/engine.js';
import { isMailspoolError } from '../src/index.js';

const T = 1_000_000;

describe('record rules', () => {
  it('a claimed record is incomplete and never due', () => {
    const r = claimedRecord('a', T);
    expect(isComplete(r)).toBe(false);
    expect(isDue(r, T + 10_000)).toBe(false);
    expect(dueAt(r)).toBe(T);
  });

  it('a stored record is due from its creation, or from its retry time', () => {
    const r = storedRecord('a', T, {}, 3, null);
    expect(isDue(r, T - 1)).toBe(false);
    expect(isDue(r, T)).toBe(true);
    const later = storedRecord('b', T, {}, 3, T + 50);
    expect(isDue(later, T + 49)).toBe(false);
    expect(isDue(later, T + 50)).toBe(true);
    expect(isWaiting(later, T + 49)).toBe(true);
    expect(isWaiting(later, T + 50)).toBe(false);
    expect(isDeferred(later, T, T + 49)).toBe(false);
    expect(isDeferred(later, T, T + 50)).toBe(true);
  });

  it('locks expire exactly at now + ttl and bump the token', () => {
    const r = storedRecord('a', T, {}, 3, null);
    const locked = lockRecord(r, 100, T)!;
    expect(locked.lease).toEqual({ id: 'a', token: 1, expiresAt: T + 100 });
    expect(isActive(locked.record, T + 99)).toBe(true);
    expect(isActive(locked.record, T + 100)).toBe(false);
    expect(lockRecord(locked.record, 100, T + 99)).toBeNull();
    expect(lockRecord(locked.record, 100, T + 100)!.lease.token).toBe(2);
  });

  it('a lease stays current after expiry until someone relocks, releases or unlocks', () => {
    const { record, lease } = lockRecord(storedRecord('a', T, {}, 3, null), 100, T)!;
    expect(isCurrent(record, lease)).toBe(true);
    const renewed = renewRecord(record, lease, 500, T + 1000);
    expect(renewed.lease).toEqual({ id: 'a', token: 1, expiresAt: T + 1500 });
    expect(isCurrent(unlockRecord(record), lease)).toBe(false);
    const relocked = lockRecord(record, 100, T + 100)!.record;
    expect(isCurrent(relocked, lease)).toBe(false);
    expect(isCurrent(undefined, lease)).toBe(false);
  });

  it('writableRecord: NOT_FOUND without a lease, STALE_LEASE with a stale one', () => {
    const { record, lease } = lockRecord(storedRecord('a', T, {}, 3, null), 100, T)!;
    expect(writableRecord(record, 'a', lease)).toBe(record);
    expect(writableRecord(record, 'a', undefined)).toBe(record);
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return isMailspoolError(error) ? error.code : 'other';
      }
      return 'none';
    };
    expect(codeOf(() => writableRecord(undefined, 'a', undefined))).toBe('NOT_FOUND');
    expect(codeOf(() => writableRecord(undefined, 'a', lease))).toBe('STALE_LEASE');
    expect(codeOf(() => assertCurrent(unlockRecord(record), lease))).toBe('STALE_LEASE');
  });

  it('compareDue orders by due time, then id', () => {
    const a = storedRecord('b', T, {}, 1, null);
    const b = storedRecord('a', T, {}, 1, null);
    const c = storedRecord('c', T - 5, {}, 1, T - 10);
    expect([a, b, c].sort(compareDue).map((r) => r.id)).toEqual(['c', 'a', 'b']);
  });
});
