/**
 * The page: wires the compose form, the Outbox and Sent lists, the settings dialog, the flusher
 * and its scheduler, and the service worker. All logic that matters lives in DOM-free modules
 * (outbox.ts, flusher.ts, scheduler.ts, mime.ts); this file only connects them to the page.
 */
import { isMailspoolError, systemClock } from '@mailspool/core';
import { ComposeError } from './addresses.js';
import { openOutbox, SYNC_TAG } from './app.js';
import {
  type ConfigSource,
  loadConfig,
  type RelayConfig,
  readSettings,
  SETTINGS_KEY,
  saveSettings,
  shareConfig,
} from './config.js';
import { cancelAtRelay, checkDeliveries } from './delivery.js';
import { Flusher, type FlusherEvent, globalTimers } from './flusher.js';
import type { OutboxItem } from './meta.js';
import type { Draft, DraftAttachment } from './mime.js';
import { cancel, DEFAULT_UNDO_SECONDS, listOutbox, queueDraft, retryNow } from './outbox.js';
import { FlushScheduler } from './scheduler.js';
import { outboxRow, sentRow } from './view.js';

const FROM_KEY = 'mailspool-outbox.from';

function $<T extends HTMLElement = HTMLElement>(testId: string): T {
  const element = document.querySelector<T>(`[data-testid="${testId}"]`);
  if (!element) throw new Error(`missing element ${testId}`);
  return element;
}

const ui = {
  network: $('network-status'),
  relay: $('relay-status'),
  banner: $('config-banner'),
  form: $<HTMLFormElement>('compose-form'),
  from: $<HTMLInputElement>('compose-from'),
  files: $<HTMLInputElement>('compose-attachments'),
  composeError: $('compose-error'),
  notice: $('compose-notice'),
  undo: $<HTMLButtonElement>('compose-undo'),
  send: $<HTMLButtonElement>('compose-send'),
  sendAt: $<HTMLInputElement>('compose-send-at'),
  sendLater: $<HTMLButtonElement>('compose-send-later'),
  outboxList: $('outbox-list'),
  outboxCount: $('outbox-count'),
  outboxEmpty: $('outbox-empty'),
  sentList: $('sent-list'),
  sentCount: $('sent-count'),
  settingsOpen: $('settings-open'),
  settingsDialog: $<HTMLDialogElement>('settings-dialog'),
  settingsForm: $<HTMLFormElement>('settings-form'),
  settingsSource: $('settings-source'),
  settingsUrl: $<HTMLInputElement>('settings-relay-url'),
  settingsToken: $<HTMLInputElement>('settings-token'),
  settingsError: $('settings-error'),
  settingsSave: $<HTMLButtonElement>('settings-save'),
};

const { outbox, sentEngine, history } = openOutbox();
let config: RelayConfig | null = null;
let configSource: ConfigSource = 'none';
let configError: string | null = null;

const flusher = new Flusher({
  engine: outbox,
  history,
  config: () => config,
  onEvent: (event) => onFlusherEvent(event),
});
const scheduler = new FlushScheduler({
  flusher,
  engine: outbox,
  clock: systemClock,
  timers: globalTimers,
  network: window,
  visibility: document,
  onPass: (_report, error) => {
    if (error) console.error('mailspool outbox: flush failed', error);
  },
});

function onFlusherEvent(event: FlusherEvent): void {
  if (event.type === 'config') configError = event.error;
  else if (event.type === 'sent') configError = null;
  else if (event.type === 'error') console.error('mailspool outbox:', event.id, event.error);
  renderStatus();
}

// ---- status line and banner -------------------------------------------------------------------

function renderStatus(): void {
  const online = navigator.onLine;
  ui.network.textContent = online ? 'Online' : 'Offline';
  ui.network.className = `pill ${online ? 'ok' : 'warn'}`;
  ui.relay.textContent = config ? `Relay ${new URL(config.relayUrl).host}` : 'No relay configured';
  ui.relay.className = `pill ${config && !configError ? '' : 'warn'}`;
  let message: string | null = null;
  if (!config) {
    message =
      'No relay is configured: mail is kept in the outbox. Open Settings to set the relay URL and token.';
  } else if (configError) {
    message = `The relay refused the settings (${configError}). Mail stays queued until they are fixed in Settings.`;
  }
  ui.banner.hidden = message === null;
  ui.banner.textContent = message ?? '';
}

// ---- lists ------------------------------------------------------------------------------------

let rendering: Promise<void> | undefined;
let renderAgain = false;

/** Re-renders both lists; calls during a render coalesce into one more. */
function queueRender(): void {
  if (rendering) {
    renderAgain = true;
    return;
  }
  rendering = (async () => {
    do {
      renderAgain = false;
      const [items, sent] = await Promise.all([listOutbox(outbox), history.list()]);
      lastItems = items;
      renderNotice();
      ui.outboxList.replaceChildren(...items.map(outboxRow));
      ui.outboxCount.textContent = String(items.length);
      ui.outboxEmpty.hidden = items.length > 0;
      ui.sentList.replaceChildren(...sent.map(sentRow));
      ui.sentCount.textContent = String(sent.length);
      document.body.dataset.ready = 'true';
    } while (renderAgain);
  })()
    .catch((error) => console.error('mailspool outbox: render failed', error))
    .finally(() => {
      rendering = undefined;
    });
}

ui.outboxList.addEventListener('click', async (event) => {
  const button = (event.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]');
  if (!button?.dataset.id) return;
  button.disabled = true;
  const id = button.dataset.id;
  const result =
    button.dataset.action === 'retry'
      ? await retryNow(outbox, id, Date.now())
      : await cancel(outbox, id);
  if (result === 'busy') ui.notice.textContent = 'That message is being sent right now.';
  if (button.dataset.action === 'retry') void scheduler.kick();
  queueRender();
});

// ---- the compose notice and Undo -------------------------------------------------------------

/** The mail the compose notice is about, while it has one. */
let noticeFor: { id: string; undoUntil: number; offline: boolean } | null = null;
let lastItems: OutboxItem[] = [];
let noticeTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * The notice ("Queued: …") and the Undo button of the latest Send. Undo is offered until its
 * window ends; the notice goes when the window ended and its mail has left the Outbox (sent,
 * canceled, or failed, which its row then shows), so it never outlives its mail.
 */
function renderNotice(): void {
  if (noticeFor === null) {
    ui.undo.hidden = true;
    return;
  }
  const now = Date.now();
  const undoable = now < noticeFor.undoUntil;
  const item = lastItems.find((i) => i.id === noticeFor?.id);
  const waiting = item !== undefined && item.state !== 'failed';
  if (!undoable && !waiting) {
    noticeFor = null;
    ui.notice.textContent = '';
    ui.undo.hidden = true;
    return;
  }
  ui.undo.hidden = !undoable;
  ui.undo.disabled = false;
  clearTimeout(noticeTimer);
  if (undoable) noticeTimer = setTimeout(renderNotice, noticeFor.undoUntil - now + 50);
}

function undoMs(): number {
  return (config?.undoSeconds ?? DEFAULT_UNDO_SECONDS) * 1000;
}

/** The Sent entry of `outboxId` once the flusher recorded it (bounded wait). */
async function sentEntry(outboxId: string) {
  for (let i = 0; i < 50; i++) {
    const entry = (await history.list()).find((e) => e.outboxId === outboxId);
    if (entry?.relayId) return entry;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return undefined;
}

ui.undo.addEventListener('click', async () => {
  const target = noticeFor;
  if (target === null) return;
  ui.undo.disabled = true;
  // Still in this browser (offline, or not yet flushed): it never leaves it.
  const local = await cancel(outbox, target.id);
  let message: string;
  if (local === 'done') {
    message = 'Undone: the message never left this browser.';
  } else {
    // Handed to the relay, which holds it until the undo window ends: cancel it there.
    const entry = await sentEntry(target.id);
    if (!entry?.relayId || !config) {
      message = 'Could not undo: the relay has no record of it yet. Check the Sent list.';
    } else {
      const result = await cancelAtRelay(config, entry.relayId, fetch);
      if (result.kind === 'canceled') {
        await history.update(target.id, {
          state: 'canceled',
          reason: null,
          checks: entry.delivery?.checks ?? 0,
          nextCheckAt: null,
        });
        message = 'Undone: the relay will not send it.';
      } else if (result.kind === 'too-late') {
        message = 'Too late to undo: the relay is already sending it.';
      } else {
        message = `Could not undo: ${result.message}`;
      }
    }
  }
  noticeFor = null;
  ui.notice.textContent = message;
  ui.undo.hidden = true;
  queueRender();
});

// ---- delivery status of sent mail --------------------------------------------------------------

let checkTimer: ReturnType<typeof setTimeout> | undefined;
let checking = false;
let checkAgain = false;

/** Asks the relay about sent mail whose outcome is not final, each on its own backoff. */
async function checkSent(): Promise<void> {
  if (checking) {
    checkAgain = true;
    return;
  }
  checking = true;
  try {
    do {
      checkAgain = false;
      clearTimeout(checkTimer);
      if (!config) return;
      const next = await checkDeliveries(history, config, fetch, Date.now());
      if (next !== null) {
        const delay = Math.min(Math.max(next - Date.now(), 500), 5 * 60_000);
        checkTimer = setTimeout(() => void checkSent(), delay);
      }
    } while (checkAgain);
  } catch (error) {
    console.warn('mailspool outbox: delivery check failed', error);
  } finally {
    checking = false;
  }
}

// ---- compose ----------------------------------------------------------------------------------

/** The "Send later" time picked for the submit in progress (epoch ms). */
let pendingSendAt: number | undefined;
const MAX_SCHEDULE_MS = 30 * 86_400_000;

ui.sendLater.addEventListener('click', () => {
  const at = ui.sendAt.value === '' ? Number.NaN : new Date(ui.sendAt.value).getTime();
  const now = Date.now();
  if (!Number.isFinite(at) || at <= now || at > now + MAX_SCHEDULE_MS) {
    showComposeError('Pick a time in the next 30 days to send later.', 'sendAt');
    return;
  }
  pendingSendAt = at;
  ui.form.requestSubmit(ui.send);
});

async function readDraft(): Promise<Draft> {
  const data = new FormData(ui.form);
  const text = (name: string) => String(data.get(name) ?? '');
  const attachments: DraftAttachment[] = [];
  for (const file of Array.from(ui.files.files ?? [])) {
    attachments.push({
      filename: file.name,
      contentType: file.type || 'application/octet-stream',
      data: new Uint8Array(await file.arrayBuffer()),
    });
  }
  return {
    from: text('from'),
    to: text('to'),
    cc: text('cc'),
    bcc: text('bcc'),
    subject: text('subject'),
    text: text('text'),
    attachments,
  };
}

function showComposeError(message: string | null, field?: string): void {
  ui.composeError.hidden = message === null;
  ui.composeError.textContent = message ?? '';
  for (const input of ui.form.querySelectorAll('[aria-invalid]'))
    input.removeAttribute('aria-invalid');
  if (field) {
    const input = ui.form.querySelector<HTMLElement>(`[name="${field}"]`);
    input?.setAttribute('aria-invalid', 'true');
    input?.focus();
  }
}

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  ui.send.disabled = true;
  const sendAt = pendingSendAt;
  pendingSendAt = undefined;
  try {
    const draft = await readDraft();
    const now = Date.now();
    const undo = undoMs();
    const id = await queueDraft(outbox, draft, now, {
      undoMs: undo,
      ...(sendAt === undefined ? {} : { sendAt }),
    });
    localStorage.setItem(FROM_KEY, draft.from);
    showComposeError(null);
    ui.form.reset();
    ui.from.value = draft.from;
    const offline = !navigator.onLine;
    ui.notice.textContent =
      sendAt !== undefined
        ? `Queued: it will be sent ${new Date(sendAt).toLocaleString()}.`
        : offline
          ? 'Queued: it will be sent when you are back online.'
          : 'Queued: sending now.';
    noticeFor = { id, undoUntil: now + undo, offline };
    renderNotice();
    void registerSync();
  } catch (error) {
    if (error instanceof ComposeError) showComposeError(error.message, error.field);
    else if (isMailspoolError(error))
      showComposeError(`Could not queue the message (${error.code}): ${error.message}`);
    else showComposeError(`Could not queue the message: ${(error as Error).message}`);
  } finally {
    ui.send.disabled = false;
  }
});

// ---- settings ---------------------------------------------------------------------------------

function openSettings(): void {
  const fromFile = configSource === 'config.json';
  ui.settingsSource.textContent = fromFile
    ? 'These settings come from config.json next to the page; edit that file to change them.'
    : 'Saved in this browser (localStorage). A config.json next to the page takes precedence.';
  const saved = readSettings(localStorage);
  ui.settingsUrl.value = (fromFile ? config?.relayUrl : saved?.relayUrl) ?? '';
  ui.settingsToken.value = (fromFile ? config?.token : saved?.token) ?? '';
  ui.settingsUrl.disabled = fromFile;
  ui.settingsToken.disabled = fromFile;
  // Nothing here can be changed: offer Close only, not a Save that would save nothing.
  ui.settingsSave.hidden = fromFile;
  ui.settingsError.hidden = true;
  ui.settingsDialog.showModal();
}

ui.settingsOpen.addEventListener('click', openSettings);

ui.settingsForm.addEventListener('submit', (event) => {
  const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
  if (submitter?.value !== 'save' || configSource === 'config.json') return;
  try {
    applyConfig(
      saveSettings(localStorage, { relayUrl: ui.settingsUrl.value, token: ui.settingsToken.value }),
      'settings',
    );
  } catch (error) {
    event.preventDefault();
    ui.settingsError.hidden = false;
    ui.settingsError.textContent = (error as Error).message;
  }
});

function applyConfig(next: RelayConfig | null, source: ConfigSource): void {
  config = next;
  configSource = source;
  configError = null;
  void shareConfig(config).catch((error) =>
    console.warn('mailspool outbox: no Cache Storage', error),
  );
  renderStatus();
  // Mail that waited for settings is due again.
  void scheduler.wakeAndKick(['config']);
  void checkSent();
}

// Another tab saved settings.
window.addEventListener('storage', (event) => {
  if (event.key === SETTINGS_KEY && configSource !== 'config.json') {
    const next = readSettings(localStorage);
    applyConfig(next, next ? 'settings' : 'none');
  }
});

// ---- service worker and Background Sync -------------------------------------------------------

async function registerServiceWorker(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  const url = import.meta.env.DEV ? '/src/sw.ts' : new URL('./sw.js', document.baseURI).href;
  await navigator.serviceWorker.register(url, { type: 'module', scope: './' });
}

/** Asks the browser to run the service worker's flusher once it is online, even after the tab closes. */
async function registerSync(): Promise<void> {
  try {
    const registration = await navigator.serviceWorker?.ready;
    const sync = (
      registration as ServiceWorkerRegistration & {
        sync?: { register(tag: string): Promise<void> };
      }
    )?.sync;
    await sync?.register(SYNC_TAG);
  } catch (error) {
    // Not supported or denied: the tabs' flushers still send.
    console.info('mailspool outbox: no Background Sync', error);
  }
}

// ---- start --------------------------------------------------------------------------------------

window.addEventListener('online', () => {
  renderStatus();
  // Loaded offline with nothing to go on: try config.json again now.
  if (!config) void reloadConfig();
});
window.addEventListener('offline', renderStatus);
outbox.subscribe(queueRender);
sentEngine.subscribe((event) => {
  queueRender();
  // A new Sent entry: ask the relay about it (its first check is due at once).
  if (event.type === 'stored') void checkSent();
});
window.addEventListener('online', () => void checkSent());

async function reloadConfig(): Promise<void> {
  const loaded = await loadConfig(document.baseURI, localStorage);
  if (loaded.config) applyConfig(loaded.config, loaded.source);
}

async function start(): Promise<void> {
  ui.from.value = localStorage.getItem(FROM_KEY) ?? '';
  const loaded = await loadConfig(document.baseURI, localStorage);
  config = loaded.config;
  configSource = loaded.source;
  if (!ui.from.value && config?.from) ui.from.value = config.from;
  if (config) void shareConfig(config).catch(() => undefined);
  renderStatus();
  queueRender();
  scheduler.start();
  void checkSent();
  registerServiceWorker().catch((error) =>
    console.warn('mailspool outbox: no service worker', error),
  );
}

void start();
