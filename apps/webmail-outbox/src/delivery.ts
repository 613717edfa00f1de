/**
 * After the relay accepted a message: what became of it, and taking it back. DOM-free (the page
 * wires it up in main.ts; tests drive it with a fake fetch and clock).
 *
 * - {@link checkDeliveries} asks the relay (`GET /v1/messages/:id`, its delivery record) about
 *   every Sent entry whose outcome is not final yet, each on its own backoff (2 s doubling up to
 *   5 min), and stores the answer in the Sent history, so every tab shows it.
 * - {@link cancelAtRelay} is the online half of "Undo": `POST /v1/messages/:id/cancel`.
 */
import type { RelayConfig } from './config.js';
import { type DeliveryStatus, FINAL_STATES, type SentEntry, type SentHistory } from './history.js';

/** First delay before asking again, and the longest. */
export const CHECK_FIRST_MS = 2_000;
export const CHECK_MAX_MS = 5 * 60_000;

/** Answers of 404 after which the relay is taken to have forgotten the message. */
export const UNKNOWN_AFTER = 5;

/** The delay before the `checks + 1`-th question. */
export function checkDelay(checks: number): number {
  return Math.min(CHECK_FIRST_MS * 2 ** Math.max(0, checks - 1), CHECK_MAX_MS);
}

function messageUrl(config: RelayConfig, relayId: string, suffix = ''): string {
  return `${config.relayUrl}/v1/messages/${encodeURIComponent(relayId)}${suffix}`;
}

interface RelayStatus {
  readonly state?: unknown;
  readonly results?: Record<string, { status?: unknown; reply?: unknown }>;
}

/** "bob@example.org: 550 5.1.1 no such user" for the first failed recipient, else `null`. */
function bounceReason(body: RelayStatus): string | null {
  for (const [rcpt, result] of Object.entries(body.results ?? {})) {
    if (result?.status === 'failed') {
      return `${rcpt}: ${typeof result.reply === 'string' ? result.reply : 'failed'}`;
    }
  }
  return null;
}

/** Asks about one entry; resolves to its new status (never rejects). */
export async function checkOne(
  entry: SentEntry,
  config: RelayConfig,
  fetchFn: typeof fetch,
  now: number,
): Promise<DeliveryStatus> {
  const checks = (entry.delivery?.checks ?? 0) + 1;
  const previous = entry.delivery?.state ?? 'accepted';
  const later = (state: string, reason: string | null = null): DeliveryStatus => ({
    state,
    reason,
    checks,
    nextCheckAt: FINAL_STATES.has(state) ? null : now + checkDelay(checks),
  });
  try {
    const response = await fetchFn(messageUrl(config, entry.relayId!), {
      headers: { authorization: `Bearer ${config.token}` },
    });
    // The relay keeps a record from acceptance on, so a 404 means it forgot it (after its
    // RETENTION_DAYS) or a wrong relay/tenant: believed only after a few asks.
    if (response.status === 404) return later(checks >= UNKNOWN_AFTER ? 'unknown' : previous);
    if (!response.ok) return later(previous);
    const body = (await response.json()) as RelayStatus;
    const state = typeof body.state === 'string' ? body.state : previous;
    return later(state, state === 'bounced' ? bounceReason(body) : null);
  } catch {
    return later(previous); // offline or the relay is down: ask again later
  }
}

/**
 * Asks the relay about every due, not final Sent entry; resolves to when the next one is due
 * (epoch ms), `null` when none waits.
 */
export async function checkDeliveries(
  history: SentHistory,
  config: RelayConfig,
  fetchFn: typeof fetch,
  now: number,
): Promise<number | null> {
  let next: number | null = null;
  for (const entry of await history.list()) {
    if (entry.relayId === null) continue;
    if (entry.delivery !== null && FINAL_STATES.has(entry.delivery.state)) continue;
    const dueAt = entry.delivery?.nextCheckAt ?? entry.sentAt;
    let status = entry.delivery;
    if (dueAt <= now) {
      status = await checkOne(entry, config, fetchFn, now);
      await history.update(entry.outboxId, status);
    }
    const at = status?.nextCheckAt ?? null;
    if (at !== null && (next === null || at < next)) next = at;
  }
  return next;
}

/** What an online undo did. */
export type CancelResult =
  | { readonly kind: 'canceled' }
  /** The SMTP transaction had started (409 ALREADY_SENDING): it can't be taken back. */
  | { readonly kind: 'too-late'; readonly state: string }
  | { readonly kind: 'error'; readonly message: string };

/** `POST /v1/messages/:id/cancel` for a message the relay accepted. */
export async function cancelAtRelay(
  config: RelayConfig,
  relayId: string,
  fetchFn: typeof fetch,
): Promise<CancelResult> {
  try {
    const response = await fetchFn(messageUrl(config, relayId, '/cancel'), {
      method: 'POST',
      headers: { authorization: `Bearer ${config.token}` },
    });
    if (response.ok) return { kind: 'canceled' };
    const body = (await response.json().catch(() => ({}))) as {
      error?: { code?: string; state?: string; message?: string };
    };
    if (response.status === 409) {
      const state = body.error?.state ?? 'sending';
      return state === 'canceled' ? { kind: 'canceled' } : { kind: 'too-late', state };
    }
    return { kind: 'error', message: body.error?.message ?? `HTTP ${response.status}` };
  } catch (error) {
    return { kind: 'error', message: (error as Error).message };
  }
}
