/**
 * DOM rendering of the Outbox and Sent lists. Internal to the page (main.ts). Every element a
 * test needs has a stable `data-testid` (README.md, "Selectors").
 */
import { FINAL_STATES, type SentEntry } from './history.js';
import type { OutboxItem } from './meta.js';

type Child = Node | string | null | undefined | false;

/** Creates an element with attributes (`data-*`, `class`, `hidden`…) and children. */
export function h(
  tag: string,
  attributes: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

/** `10:42:05` today, `Nov 29, 10:42` otherwise. */
export function formatTime(epochMs: number, now = Date.now()): string {
  const sameDay = new Date(epochMs).toDateString() === new Date(now).toDateString();
  return sameDay ? timeFormat.format(epochMs) : dateTimeFormat.format(epochMs);
}

/** `512 B`, `3.2 KB`, `1.4 MB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

const STATE_LABEL = {
  queued: 'Queued',
  sending: 'Sending…',
  retry: 'Retry scheduled',
  failed: 'Failed',
} as const;

function stateDetail(item: OutboxItem): string | null {
  switch (item.state) {
    case 'sending':
      return 'Handing over to the relay';
    case 'retry':
      return `Retry at ${item.nextAttemptAt === null ? '—' : formatTime(item.nextAttemptAt)} · attempt ${item.attempts} failed: ${item.lastError ?? 'unknown error'}`;
    case 'failed':
      return item.lastError ?? 'Refused by the relay';
    case 'queued':
      if (item.lastErrorKind === 'offline') return 'Waiting for the network';
      if (item.lastErrorKind === 'config')
        return `Waiting for valid relay settings: ${item.lastError}`;
      return 'Waiting to be sent';
  }
}

/** One Outbox row with its state and its "Retry now" / "Cancel" buttons. */
export function outboxRow(item: OutboxItem): HTMLElement {
  const recipients = [
    ...item.to,
    ...item.cc.map((c) => `cc ${c}`),
    ...item.bcc.map((b) => `bcc ${b}`),
  ];
  const later =
    item.sendAt !== null && item.undoUntil !== null && item.sendAt > item.undoUntil
      ? `sends ${formatTime(item.sendAt)}`
      : null;
  const facts = [
    `To ${recipients.join(', ')}`,
    item.attachments.length > 0 ? `attached: ${item.attachments.join(', ')}` : null,
    formatSize(item.size),
    `queued ${formatTime(item.queuedAt)}`,
    later,
  ].filter((fact): fact is string => fact !== null);
  const canRetry =
    item.state === 'retry' ||
    item.state === 'failed' ||
    (item.state === 'queued' && item.lastError !== null);
  const busy = item.state === 'sending';
  return h(
    'li',
    {
      class: `row state-${item.state}`,
      'data-testid': 'outbox-row',
      'data-id': item.id,
      'data-state': item.state,
      'data-retry-at': item.nextAttemptAt === null ? undefined : String(item.nextAttemptAt),
    },
    h(
      'div',
      { class: 'row-main' },
      h(
        'div',
        { class: 'subject', 'data-testid': 'outbox-row-subject' },
        item.subject || '(no subject)',
      ),
      h('div', { class: 'facts' }, facts.join(' · ')),
      h('div', { class: 'detail', 'data-testid': 'outbox-row-detail' }, stateDetail(item)),
    ),
    h(
      'div',
      { class: 'row-side' },
      h(
        'span',
        { class: `badge badge-${item.state}`, 'data-testid': 'outbox-row-state' },
        STATE_LABEL[item.state],
      ),
      h(
        'div',
        { class: 'actions' },
        canRetry
          ? h(
              'button',
              {
                type: 'button',
                class: 'small',
                'data-testid': 'outbox-retry',
                'data-action': 'retry',
                'data-id': item.id,
              },
              'Retry now',
            )
          : null,
        h(
          'button',
          {
            type: 'button',
            class: 'small ghost',
            'data-testid': 'outbox-cancel',
            'data-action': 'cancel',
            'data-id': item.id,
            disabled: busy,
          },
          'Cancel',
        ),
      ),
    ),
  );
}

/** The Sent badge for each state the relay reports (docs/relay-api.md, `GET /v1/messages/:id`). */
const DELIVERY_LABEL: Record<string, string> = {
  accepted: 'Sent to relay',
  queued: 'Sent to relay',
  sending: 'Sending',
  scheduled: 'Scheduled',
  deferred: 'Deferred',
  held: 'Held',
  delivered: 'Delivered',
  bounced: 'Bounced',
  canceled: 'Canceled',
  deleted: 'Deleted',
  unknown: 'Sent',
};

/** What the relay last said, as one line. */
function deliveryDetail(entry: SentEntry): string {
  const state = entry.delivery?.state ?? 'accepted';
  const accepted = `Accepted by the relay${entry.relayId ? ` as ${entry.relayId}` : ''}${entry.duplicate ? ' (already queued there)' : ''}`;
  switch (state) {
    case 'delivered':
      return 'Delivered to the recipients’ mail servers';
    case 'bounced':
      return `Bounced: ${entry.delivery?.reason ?? 'a recipient was refused'}`;
    case 'canceled':
      return 'Canceled: it will not be sent';
    case 'deleted':
      return 'Deleted by the relay’s operator';
    case 'scheduled':
      return `${accepted}; it sends ${entry.sendAt === null ? 'later' : formatTime(entry.sendAt)}`;
    case 'deferred':
      return `${accepted}; the recipient’s server asked to try again later`;
    case 'unknown':
      return `${accepted}; the relay no longer keeps its status`;
    default:
      return accepted;
  }
}

/** One Sent row: sent to relay, then delivered / bounced (with the reason) from its record. */
export function sentRow(entry: SentEntry): HTMLElement {
  const delivery = entry.delivery?.state ?? 'accepted';
  return h(
    'li',
    {
      class: 'row state-sent',
      'data-testid': 'sent-row',
      'data-id': entry.outboxId,
      'data-state': 'sent',
      'data-delivery': delivery,
      'data-final': FINAL_STATES.has(delivery) ? 'true' : 'false',
    },
    h(
      'div',
      { class: 'row-main' },
      h(
        'div',
        { class: 'subject', 'data-testid': 'sent-row-subject' },
        entry.subject || '(no subject)',
      ),
      h(
        'div',
        { class: 'facts' },
        `To ${entry.to.join(', ')} · ${entry.attempts} attempt${entry.attempts === 1 ? '' : 's'}`,
      ),
      h('div', { class: 'detail', 'data-testid': 'sent-row-detail' }, deliveryDetail(entry)),
    ),
    h(
      'div',
      { class: 'row-side' },
      h(
        'span',
        { class: `badge badge-sent badge-${delivery}`, 'data-testid': 'sent-row-state' },
        DELIVERY_LABEL[delivery] ?? 'Sent',
      ),
      h('div', { class: 'when' }, formatTime(entry.sentAt)),
    ),
  );
}
