import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  decodeError,
  type EncodedError,
  ErrorCode,
  encodeError,
  isEncodedError,
  isMailspoolError,
  MailspoolError,
} from '../src/index.js';

describe('MailspoolError', () => {
  it('carries a stable code, a fixed name and the cause', () => {
    const cause = new Error('disk full');
    const error = new MailspoolError(ErrorCode.QUOTA_EXCEEDED, 'no space', { cause });
    expect(error.name).toBe('MailspoolError');
    expect(error.code).toBe('QUOTA_EXCEEDED');
    expect(error.cause).toBe(cause);
    expect(error).toBeInstanceOf(Error);
    expectTypeOf(error.code).toEqualTypeOf<ErrorCode>();
  });

  it("the code table is exactly the contract's codes", () => {
    expect(Object.values(ErrorCode).sort()).toEqual([
      'CORRUPT',
      'NOT_FOUND',
      'QUOTA_EXCEEDED',
      'SESSION_CLOSED',
      'STALE_LEASE',
      'TOO_LARGE',
      'UNAVAILABLE',
    ]);
  });

  it('isMailspoolError judges by name and code, so plain objects from RPC count and look-alikes do not', () => {
    expect(isMailspoolError(new MailspoolError('NOT_FOUND', 'x'))).toBe(true);
    expect(isMailspoolError(new MailspoolError('NOT_FOUND', 'x'), 'NOT_FOUND')).toBe(true);
    expect(isMailspoolError(new MailspoolError('NOT_FOUND', 'x'), 'CORRUPT')).toBe(false);
    expect(
      isMailspoolError({ name: 'MailspoolError', code: 'STALE_LEASE', message: '' }, 'STALE_LEASE'),
    ).toBe(true);
    expect(isMailspoolError({ name: 'MailspoolError', code: 'NOPE' })).toBe(false);
    expect(isMailspoolError(Object.assign(new Error('x'), { code: 'NOT_FOUND' }))).toBe(false);
    expect(isMailspoolError(null)).toBe(false);
    expect(isMailspoolError('NOT_FOUND')).toBe(false);
  });
});

describe('encodeError / decodeError', () => {
  it('round-trip every code through structured clone and JSON', () => {
    for (const code of Object.values(ErrorCode)) {
      const encoded = encodeError(new MailspoolError(code, `m-${code}`));
      for (const copy of [
        structuredClone(encoded),
        JSON.parse(JSON.stringify(encoded)) as EncodedError,
      ]) {
        expect(isEncodedError(copy)).toBe(true);
        const decoded = decodeError(copy);
        expect(isMailspoolError(decoded, code)).toBe(true);
        expect(decoded.message).toBe(`m-${code}`);
      }
    }
  });

  it('keeps TypeErrors as TypeErrors', () => {
    const decoded = decodeError(encodeError(new TypeError('bad id')));
    expect(decoded).toBeInstanceOf(TypeError);
    expect(decoded.message).toBe('bad id');
  });

  it('turns anything unexpected into UNAVAILABLE with the remote message kept', () => {
    const decoded = decodeError(encodeError(new RangeError('boom')));
    expect(isMailspoolError(decoded, 'UNAVAILABLE')).toBe(true);
    expect(decoded.message).toContain('boom');
    expect(isMailspoolError(decodeError(encodeError('a string')), 'UNAVAILABLE')).toBe(true);
    expect(
      isMailspoolError(
        decodeError({ mailspool: 1, code: 'WHAT' as never, message: 'm' }),
        'UNAVAILABLE',
      ),
    ).toBe(true);
  });

  it('isEncodedError rejects other shapes', () => {
    expect(isEncodedError({ code: 'NOT_FOUND', message: 'x' })).toBe(false);
    expect(isEncodedError(null)).toBe(false);
    expect(isEncodedError({ mailspool: 1, code: 1, message: 'x' })).toBe(false);
  });
});
