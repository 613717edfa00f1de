/** Message id syntax and generation. */
import type { MessageId } from './types.js';

/** Longest id the contract allows. */
export const MAX_ID_LENGTH = 128;

const ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

/** True when `value` is a well-formed {@link MessageId}. */
export function isMessageId(value: unknown): value is MessageId {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** Throws a `TypeError` unless `value` is a well-formed {@link MessageId}. */
export function assertMessageId(value: unknown, what = 'id'): asserts value is MessageId {
  if (!isMessageId(value)) {
    throw new TypeError(
      `${what} must be 1-128 characters of [A-Za-z0-9._~-], got ${describe(value)}`,
    );
  }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * A new random id: 128 random bits as 22 base64url characters, after `prefix` when given (an
 * engine's routing prefix, such as a shard number; it must itself be id characters).
 */
export function newMessageId(prefix = ''): MessageId {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let id = prefix;
  // 16 bytes = 128 bits; 6 bits per character, the last character carries the 2 leftover bits.
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      id += BASE64URL[(value >> bits) & 63];
    }
  }
  if (bits > 0) id += BASE64URL[(value << (6 - bits)) & 63];
  assertMessageId(id);
  return id;
}

/** A short, safe description of a value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `${value.constructor.name}(${value.byteLength})`;
  if (typeof value === 'object')
    return value.constructor?.name ? `a ${value.constructor.name}` : 'an object';
  return String(value);
}
