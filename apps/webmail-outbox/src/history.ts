/**
 * The "Sent" history: what the flusher handed to the relay, kept in IndexedDB after the message
 * itself left the outbox. It is a second, small mailspool engine (its own database) whose
 * messages hold only meta: the same contract, the same change events across tabs, and in tests
 * a MemoryEngine. Entries are held (retry time in the far future) so nothing ever "flushes" them.
 */
import { isMailspoolError, type MessageMeta, type StorageEngine } from '@mailspool/core';
import { HELD_UNTIL } from './meta.js';

/** One sent message. */
export interface SentEntry {
  /** The outbox id (also the Idempotency-Key it was posted with). */
  readonly outboxId: string;
  /** The relay's message id, when its answer said so. */
  readonly relayId: string | null;
  /** True when the relay answered 200 "duplicate" (an earlier post had already been accepted). */
  readonly duplicate: boolean;
  readonly sentAt: number;
  readonly subject: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly recipients: number;
  readonly attempts: number;
  /** The `sendAt` it was posted with (epoch ms); `null` for an entry from before. */
  readonly sendAt: number | null;
  /** Until when "Undo" is offered (epoch ms); `null` for an entry from before. */
  readonly undoUntil: number | null;
  /** What the relay last said about it (its delivery record); `null` until first asked. */
  readonly delivery: DeliveryStatus | null;
}

/** The relay's word on a sent message, from `GET /v1/messages/:id` (docs/relay-api.md). */
export interface DeliveryStatus {
  /** The relay's `state`, or `canceled` after an undo, or `unknown` once the relay forgot it. */
  readonly state: string;
  /** Why it bounced (the first failed recipient and its reply), else `null`. */
  readonly reason: string | null;
  /** Questions asked so far, and when to ask next (epoch ms; `null`: never again, it is final). */
  readonly checks: number;
  readonly nextCheckAt: number | null;
}

/** States after which the relay's answer can't change. */
export const FINAL_STATES: ReadonlySet<string> = new Set([
  'delivered',
  'bounced',
  'canceled',
  'deleted',
  'unknown',
]);

/** How many entries {@link SentHistory.record} keeps. */
export const DEFAULT_HISTORY_LIMIT = 100;

/** The sent history over `engine`. */
export class SentHistory {
  readonly engine: StorageEngine;
  readonly #limit: number;

  constructor(engine: StorageEngine, limit = DEFAULT_HISTORY_LIMIT) {
    this.engine = engine;
    this.#limit = limit;
  }

  /** Adds an entry and drops the oldest beyond the limit. Rejects with the engine's codes. */
  async record(entry: SentEntry): Promise<void> {
    const session = await this.engine.connect();
    try {
      await session.storeMessage({
        meta: {
          outbox_id: entry.outboxId,
          relay_id: entry.relayId,
          duplicate: entry.duplicate,
          sent_at: entry.sentAt,
          subject: entry.subject,
          from: entry.from,
          to: [...entry.to],
          recipients: entry.recipients,
          attempts: entry.attempts,
          send_at: entry.sendAt,
          undo_until: entry.undoUntil,
          ...deliveryMeta(entry.delivery),
        },
        contents: '',
        retryAt: HELD_UNTIL,
      });
    } finally {
      await session.close();
    }
    await this.#prune();
  }

  /** Every entry, newest first. One entry per outbox id (the first one recorded wins). */
  async list(): Promise<SentEntry[]> {
    const session = await this.engine.connect();
    try {
      const entries: (SentEntry & { key: string })[] = [];
      for (const key of await session.getAllMessages()) {
        let meta: MessageMeta;
        try {
          meta = await session.getMessageMeta(key);
        } catch (error) {
          if (isMailspoolError(error, 'NOT_FOUND')) continue; // pruned meanwhile
          throw error;
        }
        entries.push({ key, ...fromMeta(meta) });
      }
      entries.sort((a, b) => a.sentAt - b.sentAt || (a.key < b.key ? -1 : 1));
      const seen = new Set<string>();
      const unique: SentEntry[] = [];
      for (const { key: _key, ...entry } of entries) {
        if (seen.has(entry.outboxId)) continue;
        seen.add(entry.outboxId);
        unique.push(entry);
      }
      return unique.reverse();
    } finally {
      await session.close();
    }
  }

  /**
   * Stores what the relay said about the entry of `outboxId` (every copy of it). Resolves to
   * whether there was one.
   */
  async update(outboxId: string, delivery: DeliveryStatus): Promise<boolean> {
    const session = await this.engine.connect();
    try {
      let found = false;
      for (const key of await session.getAllMessages()) {
        let meta: MessageMeta;
        try {
          meta = await session.getMessageMeta(key);
        } catch (error) {
          if (isMailspoolError(error, 'NOT_FOUND')) continue;
          throw error;
        }
        if (meta.outbox_id !== outboxId) continue;
        found = true;
        await session.setMessageMeta(key, { ...meta, ...deliveryMeta(delivery) });
      }
      return found;
    } finally {
      await session.close();
    }
  }

  async #prune(): Promise<void> {
    const session = await this.engine.connect();
    try {
      const ids = await session.getAllMessages();
      if (ids.length <= this.#limit) return;
      const dated: { id: string; at: number }[] = [];
      for (const id of ids) {
        const at = await session.getMessageMetaKey(id, 'sent_at').catch(() => 0);
        dated.push({ id, at: typeof at === 'number' ? at : 0 });
      }
      dated.sort((a, b) => a.at - b.at);
      for (const { id } of dated.slice(0, dated.length - this.#limit)) {
        await session.deleteMessage(id);
      }
    } finally {
      await session.close();
    }
  }
}

function deliveryMeta(delivery: DeliveryStatus | null) {
  return {
    delivery_state: delivery?.state ?? null,
    delivery_reason: delivery?.reason ?? null,
    delivery_checks: delivery?.checks ?? 0,
    delivery_next_check: delivery?.nextCheckAt ?? null,
  };
}

function fromMeta(meta: MessageMeta): SentEntry {
  const text = (key: string) => (typeof meta[key] === 'string' ? (meta[key] as string) : '');
  const count = (key: string) => (typeof meta[key] === 'number' ? (meta[key] as number) : 0);
  const to = meta.to;
  return {
    outboxId: text('outbox_id'),
    relayId: typeof meta.relay_id === 'string' ? meta.relay_id : null,
    duplicate: meta.duplicate === true,
    sentAt: count('sent_at'),
    subject: text('subject'),
    from: text('from'),
    to: Array.isArray(to) ? to : [],
    recipients: count('recipients'),
    attempts: count('attempts'),
    sendAt: typeof meta.send_at === 'number' ? meta.send_at : null,
    undoUntil: typeof meta.undo_until === 'number' ? meta.undo_until : null,
    delivery:
      typeof meta.delivery_state === 'string'
        ? {
            state: meta.delivery_state,
            reason: typeof meta.delivery_reason === 'string' ? meta.delivery_reason : null,
            checks: count('delivery_checks'),
            nextCheckAt:
              typeof meta.delivery_next_check === 'number' ? meta.delivery_next_check : null,
          }
        : null,
  };
}
