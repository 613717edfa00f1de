/**
 * Internal: argument validation and normalisation, done once in `BaseSession` so that engines
 * never re-validate. Wrong types and malformed values are `TypeError`s; sizes are `TOO_LARGE`.
 */
import { ErrorCode, MailspoolError } from './errors.js';
import { assertMessageId, describe } from './ids.js';
import type { Lease, MessageMeta, MetaValue } from './types.js';

/** Largest meta, measured as its JSON text in UTF-16 units; meta is small by nature. */
export const MAX_META_CHARS = 64 * 1024;

const encoder = new TextEncoder();

/** Throws unless `value` is a valid {@link MetaValue}; returns an unshared copy. */
export function normalizeMetaValue(value: unknown, key: string): MetaValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new TypeError(`meta ${JSON.stringify(key)} must be a finite number`);
    return value;
  }
  if (Array.isArray(value)) {
    const copy: string[] = [];
    for (const item of value) {
      if (typeof item !== 'string') {
        throw new TypeError(
          `meta ${JSON.stringify(key)} may hold only strings in an array, found ${describe(item)}`,
        );
      }
      copy.push(item);
    }
    return copy;
  }
  throw new TypeError(
    `meta ${JSON.stringify(key)} must be a string, finite number, boolean, null or string array, got ${describe(value)}`,
  );
}

/** Throws unless `meta` is a plain object of {@link MetaValue}s; returns an unshared copy. */
export function normalizeMeta(meta: unknown): MessageMeta {
  return normalizeMetaWithJson(meta).meta;
}

/**
 * {@link normalizeMeta}, also returning the copy's JSON: the size check makes it anyway, and an
 * engine that stores meta as JSON (the Durable Objects shard) then need not make it again.
 */
export function normalizeMetaWithJson(meta: unknown): { meta: MessageMeta; json: string } {
  if (
    typeof meta !== 'object' ||
    meta === null ||
    Array.isArray(meta) ||
    meta instanceof Uint8Array
  ) {
    throw new TypeError(`meta must be a plain object, got ${describe(meta)}`);
  }
  const proto = Object.getPrototypeOf(meta);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`meta must be a plain object, got ${describe(meta)}`);
  }
  const entries: [string, MetaValue][] = [];
  for (const [key, value] of Object.entries(meta))
    entries.push([key, normalizeMetaValue(value, key)]);
  const copy = Object.fromEntries(entries) as MessageMeta;
  return { meta: copy, json: sizedMetaJson(copy) };
}

/** Throws `TOO_LARGE` when the meta's JSON exceeds {@link MAX_META_CHARS}. */
export function assertMetaSize(meta: MessageMeta): void {
  sizedMetaJson(meta);
}

/** The meta's JSON, or `TOO_LARGE` when it exceeds {@link MAX_META_CHARS}. */
function sizedMetaJson(meta: MessageMeta): string {
  const json = JSON.stringify(meta);
  if (json.length > MAX_META_CHARS) {
    throw new MailspoolError(
      ErrorCode.TOO_LARGE,
      `meta is ${json.length} characters as JSON; the limit is ${MAX_META_CHARS}`,
    );
  }
  return json;
}

/** Throws unless `key` is a string meta key. */
export function assertMetaKey(key: unknown): asserts key is string {
  if (typeof key !== 'string')
    throw new TypeError(`meta key must be a string, got ${describe(key)}`);
}

/** Converts contents to bytes (strings as UTF-8) and enforces the size limit with `TOO_LARGE`. */
export function normalizeContents(contents: unknown, maxBytes: number): Uint8Array {
  let bytes: Uint8Array;
  if (typeof contents === 'string') {
    // A UTF-8 string is at most 3 bytes per UTF-16 unit: refuse huge strings before encoding them.
    if (contents.length > maxBytes) throw tooLarge(contents.length, maxBytes);
    bytes = encoder.encode(contents);
  } else if (contents instanceof Uint8Array) {
    bytes = contents;
  } else {
    throw new TypeError(`contents must be a Uint8Array or a string, got ${describe(contents)}`);
  }
  if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength, maxBytes);
  return bytes;
}

function tooLarge(size: number, maxBytes: number): MailspoolError {
  return new MailspoolError(
    ErrorCode.TOO_LARGE,
    `contents are at least ${size} bytes; the limit is ${maxBytes}`,
  );
}

/** Throws unless `value` is a finite number (a time in epoch ms). */
export function assertTime(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(
      `${what} must be a finite number of epoch milliseconds, got ${describe(value)}`,
    );
  }
}

/** Throws unless `value` is a duration in ms greater than zero. */
export function assertTtl(value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`ttl must be a finite number of milliseconds > 0, got ${describe(value)}`);
  }
}

/** Throws unless `value` is an integer ≥ 0. */
export function assertLimit(value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`limit must be an integer >= 0, got ${describe(value)}`);
  }
}

/** Throws unless `value` is a {@link Lease}; returns a plain copy (no extra properties travel on). */
export function normalizeLease(value: unknown): Lease {
  if (typeof value !== 'object' || value === null)
    throw new TypeError(`lease must be an object, got ${describe(value)}`);
  const { id, token, expiresAt } = value as Record<string, unknown>;
  assertMessageId(id, 'lease.id');
  if (typeof token !== 'number' || !Number.isSafeInteger(token) || token < 1) {
    throw new TypeError(`lease.token must be an integer >= 1, got ${describe(token)}`);
  }
  assertTime(expiresAt, 'lease.expiresAt');
  return { id, token, expiresAt };
}

/** The lease of `{ lease }` options, checked against the id it must belong to. */
export function fenceOf(id: string, options: unknown): Lease | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  const { lease } = options as { lease?: unknown };
  if (lease === undefined) return undefined;
  const normalized = normalizeLease(lease);
  if (normalized.id !== id) throw new TypeError(`lease is for ${normalized.id}, not ${id}`);
  return normalized;
}

/** A copy of stored meta that the caller may mutate without touching the store. */
export function cloneMeta(meta: MessageMeta): MessageMeta {
  const copy: Record<string, MetaValue> = {};
  for (const [key, value] of Object.entries(meta)) {
    Object.defineProperty(copy, key, {
      value: Array.isArray(value) ? [...value] : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
