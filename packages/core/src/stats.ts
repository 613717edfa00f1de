/** Adding up `stats()` results: of several shards, tenants or stores. */
import type { QueueStats } from './types.js';

/** The sum of several queues' stats (all zero for none). */
export function sumStats(all: readonly QueueStats[]): QueueStats {
  let total = 0;
  let active = 0;
  let deferred = 0;
  let due = 0;
  for (const stats of all) {
    total += stats.total;
    active += stats.active;
    deferred += stats.deferred;
    due += stats.due;
  }
  return { total, active, deferred, due };
}
