/**
 * Queue operations shared by the submission API, the admin API and the status page, over any
 * session of the contract: describing a message, listing by state, flush, hold and release.
 */
import {
  fromMeta,
  isMailspoolError,
  type Lease,
  type MessageId,
  type MessageInfo,
  type MessageMeta,
  type StorageSession,
} from '@mailspool/core';
import { readRelayState } from '@mailspool/relay';

/** A held message waits until released: its retry time is the end of time (`postsuper -h`). */
export const HELD_UNTIL = 8.64e15;
/** Meta key marking a held message. */
export const HELD_KEY = 'held';

export type MessageState = 'scheduled' | 'queued' | 'deferred' | 'sending' | 'held';

/** Meta key of a scheduled send: when it was asked to go out (epoch ms). */
export const SEND_AT_KEY = 'send_at';

/** True for a scheduled send whose time has not come (and that was never attempted). */
function isScheduled(meta: MessageMeta, now: number): boolean {
  const sendAt = meta[SEND_AT_KEY];
  return meta.attempts === 0 && typeof sendAt === 'number' && sendAt > now;
}

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
  /** The `sendAt` of a scheduled send; `null` when it was sent for now. */
  readonly sendAt: number | null;
}

/**
 * A message's view, or `undefined` when it is gone (or only claimed, not written yet). One
 * `inspect`: the engine's own state, retry time and lock, and the meta, without contents.
 */
export async function describeMessage(
  session: StorageSession,
  id: MessageId,
  now: number,
): Promise<MessageView | undefined> {
  let info: MessageInfo;
  try {
    info = await session.inspect(id);
  } catch (error) {
    if (isMailspoolError(error, 'NOT_FOUND')) return undefined;
    throw error;
  }
  const { meta } = info;
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
  const state: MessageState =
    info.state === 'active'
      ? 'sending'
      : held
        ? 'held'
        : isScheduled(meta, now)
          ? 'scheduled'
          : info.state === 'deferred'
            ? 'deferred'
            : 'queued';
  return {
    id,
    state,
    from: envelope.sender,
    attempts: envelope.attempts,
    receivedAt: envelope.timestamp,
    nextAttemptAt: held ? null : info.retryAt,
    recipients,
    lastError: relay.lastError ?? null,
    lastAttemptAt: relay.lastAttempt ?? null,
    bounce: meta.bounce === true,
    sendAt: typeof meta[SEND_AT_KEY] === 'number' ? (meta[SEND_AT_KEY] as number) : null,
  };
}

/** Ids and views of a queue, by state; at most `limit` described (the rest only counted). */
export async function listMessages(
  session: StorageSession,
  filter: 'all' | MessageState,
  limit: number,
  now: number,
): Promise<{ total: number; messages: MessageView[] }> {
  // The engine's lists narrow the ids to describe; each description is one `inspect`.
  const candidates =
    filter === 'sending'
      ? await session.getActiveMessages()
      : filter === 'deferred' || filter === 'held' || filter === 'scheduled'
        ? await session.getDeferredMessages()
        : await session.getAllMessages();
  const messages: MessageView[] = [];
  let total = 0;
  for (const id of candidates) {
    const view = await describeMessage(session, id, now);
    if (!view || (filter !== 'all' && view.state !== filter)) continue;
    total++;
    if (messages.length < limit) messages.push(view);
  }
  return { total, messages };
}

/**
 * How long an operator action holds its message's lease: the action's own next step (one
 * commit) is all it covers, so this only matters if the Worker dies mid-action.
 */
const ACTION_LEASE_MS = 30_000;

/** The message is in an SMTP attempt right now: the operator action was not applied. */
export class MessageSending extends Error {
  override readonly name = 'MessageSending';
  constructor(readonly id: MessageId) {
    super(
      `${id} is being delivered right now; nothing was changed (try again when the attempt ends)`,
    );
  }
}

/**
 * Runs an operator action on `id` under a lease of its own, so that it can never interleave
 * with a delivery attempt: an attempt holds the message's lease for its whole SMTP exchange,
 * so either the action takes the lease first (and the relayer cannot claim the message until
 * the action's commit releases it) or the action is refused with {@link MessageSending} and
 * changes nothing. Rejects `NOT_FOUND` for a message that is gone.
 */
async function underLease<T>(
  session: StorageSession,
  id: MessageId,
  action: (lease: Lease) => Promise<T>,
): Promise<T> {
  const lease = await session.acquireLease(id, ACTION_LEASE_MS);
  if (lease === null) throw new MessageSending(id);
  try {
    return await action(lease);
  } catch (error) {
    await session.releaseLease(lease).catch(() => {});
    throw error;
  }
}

/**
 * Makes every deferred, not held message due now (`postqueue -f`); resolves to how many it made
 * due. A message in an attempt right now is not counted (the attempt decides what comes next),
 * and a scheduled send keeps its time: a flush retries, it does not send early.
 */
export async function flush(session: StorageSession, now: number): Promise<number> {
  let flushed = 0;
  for (const id of await session.getDeferredMessages()) {
    try {
      const made = await underLease(session, id, async (lease) => {
        const meta = await session.getMessageMeta(id);
        if (meta[HELD_KEY] === true || isScheduled(meta, now)) {
          await session.releaseLease(lease);
          return false;
        }
        await session.commitAttempt(lease, { retryAt: now });
        return true;
      });
      if (made) flushed++;
    } catch (error) {
      // Delivered meanwhile, or in an attempt right now: nothing to flush.
      if (!isMailspoolError(error, 'NOT_FOUND') && !(error instanceof MessageSending)) throw error;
    }
  }
  return flushed;
}

/**
 * Holds a message: it is not delivered until released (`postsuper -h`). One fenced step: meta
 * and retry time change together, and never under a running attempt ({@link MessageSending}).
 */
export async function hold(session: StorageSession, id: MessageId): Promise<void> {
  await underLease(session, id, async (lease) => {
    const meta = await session.getMessageMeta(id);
    await session.commitAttempt(lease, {
      meta: { ...meta, [HELD_KEY]: true },
      retryAt: HELD_UNTIL,
    });
  });
}

/**
 * Releases a held message: due at once, or at its time for a scheduled send that has not come.
 * One fenced step, like {@link hold}.
 */
export async function release(session: StorageSession, id: MessageId, now: number): Promise<void> {
  await underLease(session, id, async (lease) => {
    const { [HELD_KEY]: _held, ...rest } = await session.getMessageMeta(id);
    const at = isScheduled(rest, now) ? (rest[SEND_AT_KEY] as number) : now;
    await session.commitAttempt(lease, { meta: rest, retryAt: at });
  });
}
