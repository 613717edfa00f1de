/**
 * Webhook events: per tenant, a URL and a secret from the `TENANT_WEBHOOKS` secret (JSON
 * `{ "<tenant>": { "url": "https://…", "secret": "…" } }`). Each event is queued in the shard's
 * outbox in the same transaction as the outcome it reports (see `RelayShard`), and POSTed from
 * there at least once, with backoff, in order per message, signed with HMAC-SHA256 over the
 * exact body bytes (docs/relay-api.md, "Webhook events").
 */
import type { EventType, MessageStatus } from './records.js';
import { tenantEntries } from './settings.js';

export interface WebhookTarget {
  readonly url: string;
  readonly secret: string;
}

/** An event as it is POSTed (the body is this, as JSON). */
export interface WebhookEvent {
  /** Unique per event: `evt_` and a UUID. A receiver dedupes retries by it. */
  readonly id: string;
  readonly type: EventType;
  /** When the outcome was committed (RFC 3339). */
  readonly createdAt: string;
  /** The message as `GET /v1/messages/:id` showed it at that moment. */
  readonly message: MessageStatus;
}

/** Header names of a delivery. */
export const SIGNATURE_HEADER = 'mailspool-signature';
export const EVENT_ID_HEADER = 'mailspool-event-id';
export const EVENT_TYPE_HEADER = 'mailspool-event-type';

/** How long a receiver may take to answer one delivery. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

/** Parses `TENANT_WEBHOOKS`; throws a plain Error naming the bad entry. */
export function parseTenantWebhooks(
  raw: string | undefined,
  tenants: ReadonlySet<string>,
): ReadonlyMap<string, WebhookTarget> {
  const hooks = new Map<string, WebhookTarget>();
  for (const [tenant, entry] of tenantEntries(
    'TENANT_WEBHOOKS',
    raw,
    'tenant id → { url, secret }',
    tenants,
  )) {
    const { url, secret } = (entry ?? {}) as { url?: unknown; secret?: unknown };
    let parsedUrl: URL;
    try {
      parsedUrl = new URL(String(url));
    } catch {
      throw new Error(`TENANT_WEBHOOKS: the url of ${tenant} is not a URL`);
    }
    // Events carry mail metadata: plain HTTP only to this machine (development and tests).
    const allowed =
      parsedUrl.protocol === 'https:' ||
      (parsedUrl.protocol === 'http:' && isLoopback(parsedUrl.hostname));
    if (typeof url !== 'string' || !allowed || parsedUrl.username || parsedUrl.password) {
      throw new Error(
        `TENANT_WEBHOOKS: the url of ${tenant} must be https:// (http:// only to 127.0.0.1 or localhost), without credentials`,
      );
    }
    if (typeof secret !== 'string' || secret.length < 16) {
      throw new Error(`TENANT_WEBHOOKS: the secret of ${tenant} must be at least 16 characters`);
    }
    hooks.set(tenant, { url: parsedUrl.href, secret });
  }
  return hooks;
}

/** `sha256=<hex>`: HMAC-SHA256 of `body` (its UTF-8 bytes) with `secret`. */
export async function sign(secret: string, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(body)));
  return `sha256=${Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The body of a new event (its id is made here, once: retries send the same bytes). */
export function eventBody(type: EventType, message: MessageStatus, now: number): string {
  const event: WebhookEvent = {
    id: `evt_${crypto.randomUUID()}`,
    type,
    createdAt: new Date(now).toISOString(),
    message,
  };
  return JSON.stringify(event);
}

/**
 * POSTs one event; resolves when the receiver answered 2xx, rejects otherwise (no answer within
 * {@link WEBHOOK_TIMEOUT_MS}, a redirect, any other status), so the outbox retries it.
 */
export async function deliverEvent(target: WebhookTarget, body: string): Promise<void> {
  const { id, type } = JSON.parse(body) as WebhookEvent;
  const response = await fetch(target.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'mailspool-relay',
      [EVENT_ID_HEADER]: id,
      [EVENT_TYPE_HEADER]: type,
      [SIGNATURE_HEADER]: await sign(target.secret, body),
    },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  });
  await response.body?.cancel();
  if (response.status < 200 || response.status > 299) {
    throw new Error(`the webhook receiver answered ${response.status}`);
  }
}
