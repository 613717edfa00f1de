import { describe, expect, it } from 'vitest';
import { assertMessageId, isMessageId, MAX_ID_LENGTH, newMessageId } from '../src/index.js';

describe('message ids', () => {
  it('newMessageId makes 22 base64url characters of randomness, after an optional prefix', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newMessageId()));
    expect(ids.size).toBe(2000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(isMessageId(id)).toBe(true);
    }
    expect(newMessageId('s3.')).toMatch(/^s3\.[A-Za-z0-9_-]{22}$/);
  });

  it('uses every character of the alphabet (the bits are really random)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) for (const ch of newMessageId().slice(0, 21)) seen.add(ch);
    expect(seen.size).toBe(64);
  });

  it('accepts 1–128 characters of [A-Za-z0-9._~-] and nothing else', () => {
    expect(MAX_ID_LENGTH).toBe(128);
    for (const good of ['a', 'A.b_c~d-e', '0'.repeat(128)]) expect(isMessageId(good)).toBe(true);
    for (const bad of ['', '0'.repeat(129), 'a b', 'a/b', 'é', 'a\n', 12, null, undefined, {}]) {
      expect(isMessageId(bad)).toBe(false);
      expect(() => assertMessageId(bad)).toThrow(TypeError);
    }
  });

  it('a prefix with characters ids may not hold is refused', () => {
    expect(() => newMessageId('bad prefix ')).toThrow(TypeError);
  });
});
