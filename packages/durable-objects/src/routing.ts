/**
 * Internal (used by engine.ts): how a message id names its shard. An id is `s<index>.` followed
 * by core's random id, so any client routes it with no lookup, and a message stays on the shard
 * that stored it when more shards are added later.
 */
import { newMessageId } from '@mailspool/core';

/** Most shards one engine may address (ids stay short, and fan-out stays sane). */
export const MAX_SHARDS = 1024;

const PREFIX = /^s(0|[1-9][0-9]{0,3})\./;

/** A new id on shard `index`. */
export function shardedId(index: number): string {
  return newMessageId(`s${index}.`);
}

/** The shard index an id names, or `undefined` for an id this engine never made. */
export function shardOf(id: string): number | undefined {
  const match = PREFIX.exec(id);
  return match ? Number(match[1]) : undefined;
}

/** The Durable Object name of shard `index` of the queue called `prefix`. */
export function shardName(prefix: string, index: number): string {
  return `${prefix}:${index}`;
}

/** The index in a shard name (`<prefix>:<index>`), or `undefined` when it is not one. */
export function shardIndexOfName(name: string | undefined): number | undefined {
  const match = name === undefined ? null : /:(0|[1-9][0-9]{0,3})$/.exec(name);
  const index = match ? Number(match[1]) : undefined;
  return index !== undefined && index < MAX_SHARDS ? index : undefined;
}
