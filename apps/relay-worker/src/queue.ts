/**
 * Queue operations shared by the submission API, the admin API and the status page, over any
 * session of the contract: describing a message, listing by state, flush, hold and release.
 */
import {
  fromMeta,
  isMailspoolError,
  type MessageId,
  type MessageMeta,
  type StorageSession,
} from '@mailspool/core';
import { RelayMetaKey, readRelayState } from '@mailspool/relay';

/** A held message waits until released: its retry time is the end of time (`postsuper -h`). */
export const HELD_UNTIL = 8.64e15;
/** Meta key marking a held message. */
export const HELD_KEY = 'held';

export type MessageState = 'queued' | 'deferred' | 'sending' | 'held';

export interface MessageView {
  readonly id: MessageId;
  readonly state: MessageState;
  readonly from: string;
  readonly attempts: number;
  readonly receivedAt: number;
  readonly nextAttemptAt: number | null;
  readonly recipients: Record<string, 'pending' | 'delivered' | 'failed'>;
  readonly lastError: string | null;
  readonly lastAttemptAt: number | null;
  readonly bounce: boolean;
}

/**
 * A message's view, or `undefined` when it is gone. `active` and `deferred` are the session's
 * active and deferred lists (fetched once by the caller for many messages).
 */
export async function describeMessage(
  session: StorageSession,
  id: MessageId,
  active: ReadonlySet<MessageId>,
  deferred: ReadonlySet<MessageId>,
  now: number,
): Promise<MessageView | undefined> {
  let meta: MessageMeta;
  try {
    meta = await session.getMessageMeta(id);
  } catch (error) {
    if (isMailspoolError(error, 'NOT_FOUND')) return undefined;
    throw error;
  }
  if (meta.sender === undefined) return undefined; // claimed, not yet written: not a message yet
  const envelope = fromMeta(meta);
  const relay = readRelayState(meta);
  const recipients: MessageView['recipients'] = {};
  for (const rcpt of envelope.recipients) {
    recipients[rcpt] = relay.delivered.includes(rcpt)
      ? 'delivered'
      : relay.failed.includes(rcpt)
        ? 'failed'
        : 'pending';
  }
  const held = meta[HELD_KEY] === true;
  // `getDeferredMessages` also lists retries that are due already; "deferred" here means waiting.
  const waiting = deferred.has(id) && (relay.nextAttempt === undefined || relay.nextAttempt > now);
  const state: MessageState = active.has(id)
    ? 'sending'
    : held
      ? 'held'
      : waiting
        ? 'deferred'
        : 'queued';
  return {
    id,
    state,
    from: envelope.sender,
    attempts: envelope.attempts,
    receivedAt: envelope.timestamp,
    nextAttemptAt: held ? null : (relay.nextAttempt ?? null),
    recipients,
    lastError: relay.lastError ?? null,
    lastAttemptAt: relay.lastAttempt ?? null,
    bounce: meta.bounce === true,
  };
}

/** Ids and views of a queue, by state; at most `limit` described (the rest only counted). */
export async function listMessages(
  session: StorageSession,
  filter: 'all' | MessageState,
  limit: number,
  now: number,
): Promise<{ total: number; messages: MessageView[] }> {
  const [all, activeIds, deferredIds] = await Promise.all([
    session.getAllMessages(),
    session.getActiveMessages(),
    session.getDeferredMessages(),
  ]);
  const active = new Set(activeIds);
  const deferred = new Set(deferredIds);
  const candidates =
    filter === 'sending'
      ? activeIds
      : filter === 'deferred' || filter === 'held'
        ? deferredIds
        : all;
  const messages: MessageView[] = [];
  let total = 0;
  for (const id of candidates) {
    const view = await describeMessage(session, id, active, deferred, now);
    if (!view || (filter !== 'all' && view.state !== filter)) continue;
    total++;
    if (messages.length < limit) messages.push(view);
  }
  return { total, messages };
}

/** Makes every deferred, not held message due now (`postqueue -f`); resolves to how many. */
export async function flush(session: StorageSession, now: number): Promise<number> {
  let flushed = 0;
  for (const id of await session.getDeferredMessages()) {
    try {
      if ((await session.getMessageMetaKey(id, HELD_KEY)) === true) continue;
      await session.setMessageRetry(id, now);
      await session.setMessageMetaKey(id, RelayMetaKey.NEXT_ATTEMPT, now);
      flushed++;
    } catch (error) {
      if (!isMailspoolError(error, 'NOT_FOUND')) throw error; // delivered meanwhile: fine
    }
  }
  return flushed;
}

/** Holds a message: it is not delivered until released (a delivery already running may finish). */
export async function hold(session: StorageSession, id: MessageId): Promise<void> {
  await session.setMessageMetaKey(id, HELD_KEY, true);
  await session.setMessageRetry(id, HELD_UNTIL);
}

/** Releases a held message; it is due at once. */
export async function release(session: StorageSession, id: MessageId, now: number): Promise<void> {
  await session.setMessageMetaKey(id, HELD_KEY, undefined);
  await session.setMessageRetry(id, now);
  await session.setMessageMetaKey(id, RelayMetaKey.NEXT_ATTEMPT, now);
}
