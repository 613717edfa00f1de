/**
 * Names the page and its service worker must agree on, and how both open the outbox. Internal.
 */
import { IndexedDbEngine } from '@mailspool/indexeddb';
import { SentHistory } from './history.js';

/** The IndexedDB database of queued mail (one mailspool engine). */
export const OUTBOX_DB = 'mailspool-outbox';
/** The IndexedDB database of the Sent history (a second, small mailspool engine). */
export const SENT_DB = 'mailspool-outbox-sent';
/** The Background Sync tag the page registers on Send and the service worker flushes on. */
export const SYNC_TAG = 'mailspool-flush';

/** The outbox engine, the history engine and the history over it. */
export interface OpenOutbox {
  readonly outbox: IndexedDbEngine;
  readonly sentEngine: IndexedDbEngine;
  readonly history: SentHistory;
}

/** Opens (lazily: nothing happens until the first session) the outbox and its history. */
export function openOutbox(): OpenOutbox {
  const outbox = new IndexedDbEngine({ name: OUTBOX_DB });
  const sentEngine = new IndexedDbEngine({ name: SENT_DB });
  return { outbox, sentEngine, history: new SentHistory(sentEngine) };
}
