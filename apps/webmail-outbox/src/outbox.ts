/**
 * What the page does with the outbox engine besides flushing: queue a draft, list the Outbox,
 * "retry now", "cancel", wake messages that wait for the network or for settings, and find when
 * the next message falls due. DOM-free, so the service worker and the tests use it too.
 *
 * "retry now" and "cancel" take the message's lease first (`acquireLease`): while a flusher is
 * posting a message they refuse (`'busy'`) instead of racing the post.
 */
import {
  isMailspoolError,
  type Lease,
  type MessageId,
  type MessageInfo,
  type MessageMeta,
  type StorageEngine,
  type StorageSession,
  toMeta,
} from '@mailspool/core';
import {
  type ErrorKind,
  HELD_UNTIL,
  MetaKey,
  type OutboxItem,
  statusOf,
  toOutboxItem,
  withMeta,
} from './meta.js';
import { type BuiltMessage, buildMessage, type Draft, displayList } from './mime.js';

/** How long "retry now"/"cancel"/wake hold a message while they rewrite it. */
const EDIT_LEASE_MS = 10_000;

async function withSession<T>(
  engine: StorageEngine,
  body: (s: StorageSession) => Promise<T>,
): Promise<T> {
  const session = await engine.connect();
  try {
    return await body(session);
  } finally {
    await session.close();
  }
}

/** The meta of a built message: core's envelope keys plus the UI keys (see meta.ts). */
export function outboxMeta(
  built: BuiltMessage,
  draft: Draft,
  now: number,
  timing: QueueTiming = {},
): Record<string, string | number | boolean | null | readonly string[]> {
  const undoUntil = now + (timing.undoMs ?? DEFAULT_UNDO_SECONDS * 1000);
  return {
    ...toMeta({ sender: built.sender, recipients: built.recipients, timestamp: now, attempts: 0 }),
    [MetaKey.subject]: draft.subject,
    [MetaKey.from]: displayList([built.from])[0]!,
    [MetaKey.to]: displayList(built.to),
    [MetaKey.cc]: displayList(built.cc),
    [MetaKey.bcc]: displayList(built.bcc),
    [MetaKey.attachments]: (draft.attachments ?? []).map((a) => a.filename),
    [MetaKey.size]: built.raw.byteLength,
    [MetaKey.queuedAt]: now,
    [MetaKey.status]: 'queued',
    [MetaKey.undoUntil]: undoUntil,
    [MetaKey.sendAt]: Math.max(timing.sendAt ?? undoUntil, undoUntil),
  };
}

/** The undo window after Send when the configuration sets none (`undoSeconds` in config.json). */
export const DEFAULT_UNDO_SECONDS = 10;

/** When a queued message goes out (see {@link queueDraft}). */
export interface QueueTiming {
  /** "Send later": when the relay is to send it (epoch ms). Default: at the end of the undo window. */
  readonly sendAt?: number;
  /** How long "Undo" is offered after Send (default {@link DEFAULT_UNDO_SECONDS}). */
  readonly undoMs?: number;
}

/**
 * Builds the message of `draft` and stores it, due at once. Resolves to the new id as soon as
 * IndexedDB committed, online or offline. Throws `ComposeError` for a bad draft (nothing stored)
 * and rejects with the engine's `TOO_LARGE`, `QUOTA_EXCEEDED` or `UNAVAILABLE`.
 *
 * Undo: the message is handed to the relay at once but with `sendAt` at the end of the undo
 * window (or the "Send later" time), so the relay holds it that long: "Undo" then cancels it
 * there (`POST /v1/messages/:id/cancel`). Offline it never left the browser, and "Undo" simply
 * deletes it here.
 */
export async function queueDraft(
  engine: StorageEngine,
  draft: Draft,
  now: number,
  timing: QueueTiming = {},
): Promise<MessageId> {
  const built = buildMessage(draft, { date: now });
  return withSession(engine, (session) =>
    session.storeMessage({ meta: outboxMeta(built, draft, now, timing), contents: built.raw }),
  );
}

/** Every message in the outbox as an Outbox row, newest first. */
export async function listOutbox(engine: StorageEngine): Promise<OutboxItem[]> {
  return withSession(engine, async (session) => {
    const items: OutboxItem[] = [];
    for (const id of await session.getAllMessages()) {
      const info = await infoOrNull(session, id);
      if (info) items.push(toOutboxItem(info));
    }
    return items.sort((a, b) => b.queuedAt - a.queuedAt || (a.id < b.id ? 1 : -1));
  });
}

async function infoOrNull(session: StorageSession, id: MessageId): Promise<MessageInfo | null> {
  try {
    return await session.inspect(id);
  } catch (error) {
    // Deleted between listing and reading: a flusher just sent it.
    if (isMailspoolError(error, 'NOT_FOUND')) return null;
    throw error;
  }
}

/** What "retry now" and "cancel" did. */
export type EditResult = 'done' | 'busy' | 'gone';

/**
 * Makes a message due now (reviving a failed one): status `queued`, last error cleared, attempts
 * kept. `'busy'` while a flusher holds it, `'gone'` when it was sent or cancelled meanwhile.
 */
export async function retryNow(
  engine: StorageEngine,
  id: MessageId,
  now: number,
): Promise<EditResult> {
  return edit(engine, id, async (session, lease, meta) => {
    // Retry time first: if we stop half-way the message is due early, never stuck.
    await session.setMessageRetry(id, now, { lease });
    await session.setMessageMeta(
      id,
      withMeta(meta, {
        [MetaKey.status]: 'queued',
        [MetaKey.queuedAt]: now,
        [MetaKey.lastError]: undefined,
        [MetaKey.lastErrorKind]: undefined,
        [MetaKey.failedAt]: undefined,
      }),
      { lease },
    );
    await session.releaseLease(lease);
  });
}

/** Deletes a message that no flusher holds. `'busy'` while it is being posted. */
export async function cancel(engine: StorageEngine, id: MessageId): Promise<EditResult> {
  return edit(engine, id, async (session, lease) => {
    await session.deleteMessage(id, { lease });
  });
}

async function edit(
  engine: StorageEngine,
  id: MessageId,
  body: (session: StorageSession, lease: Lease, meta: MessageMeta) => Promise<void>,
): Promise<EditResult> {
  return withSession(engine, async (session) => {
    try {
      const lease = await session.acquireLease(id, EDIT_LEASE_MS);
      if (!lease) return 'busy';
      const meta = await session.getMessageMeta(id);
      await body(session, lease, meta);
      return 'done';
    } catch (error) {
      if (isMailspoolError(error, 'NOT_FOUND')) return 'gone';
      // Someone locked it between our lease and our write (an administrator's unlock + claim).
      if (isMailspoolError(error, 'STALE_LEASE')) return 'busy';
      throw error;
    }
  });
}

/**
 * Makes due now every message that waits (status `queued` or `retry`, next attempt in the future)
 * for one of `kinds` of error: `['offline']` when the network comes back, `['config']` after the
 * settings changed. Resolves to how many were woken; busy ones are skipped.
 */
export async function wake(
  engine: StorageEngine,
  kinds: readonly ErrorKind[],
  now: number,
): Promise<number> {
  const ids = await withSession(engine, async (session) => {
    const waiting: MessageId[] = [];
    for (const id of await session.getAllMessages()) {
      const info = await infoOrNull(session, id);
      if (!info || statusOf(info.meta) === 'failed') continue;
      if (info.retryAt === null || info.retryAt <= now) continue;
      const kind = info.meta[MetaKey.lastErrorKind];
      if (kinds.includes(kind as ErrorKind)) waiting.push(id);
    }
    return waiting;
  });
  let woken = 0;
  for (const id of ids) {
    const result = await edit(engine, id, async (session, lease) => {
      await session.setMessageRetry(id, now, { lease });
      await session.releaseLease(lease);
    });
    if (result === 'done') woken++;
  }
  return woken;
}

/**
 * When the next flush is needed: the engine's `nextDueAt()` (the earliest due time, or the end
 * of a lease when a flusher holds a message, to pick it up if its holder vanished), from its
 * indexes, without reading any message. `null` when nothing waits; held (failed) messages wait
 * for "retry now", never for a timer.
 */
export async function nextDueAt(engine: StorageEngine): Promise<number | null> {
  return withSession(engine, async (session) => {
    const at = await session.nextDueAt();
    return at === null || at >= HELD_UNTIL ? null : at;
  });
}
