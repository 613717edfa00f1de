/**
 * What a tenant sees of the relay's errors: the smarthost's address is taken out (the relay's
 * internal network is the operator's business; the admin API keeps the full text).
 */
import type { RelayConfig } from './config.js';

/**
 * `text` with every configured smarthost's host and `host:port` (the default list and every
 * tenant's) and any IP address replaced by "the smarthost".
 */
export function redactSmarthost(
  text: string,
  config: Pick<RelayConfig, 'smarthosts' | 'tenantSmarthosts'>,
): string {
  let out = text;
  for (const { host, port } of [
    ...config.smarthosts,
    ...[...config.tenantSmarthosts.values()].flat(),
  ]) {
    out = out.split(`${host}:${port}`).join('the smarthost').split(host).join('the smarthost');
  }
  return out
    .replace(/\[?(?:\d{1,3}\.){3}\d{1,3}\]?(?::\d+)?/g, 'the smarthost')
    .replace(/\[(?:IPv6:)?[0-9a-f:.]*:[0-9a-f:.]*\]|[0-9a-f]*::[0-9a-f:]*/gi, 'the smarthost');
}

/** A message's view as its tenant sees it: `lastError` and every recorded reply redacted. */
export function tenantView<
  T extends {
    lastError: string | null;
    results?: Readonly<Record<string, { readonly reply: string | null }>>;
  },
>(view: T, config: Pick<RelayConfig, 'smarthosts' | 'tenantSmarthosts'>): T {
  const redact = (text: string | null) => (text === null ? null : redactSmarthost(text, config));
  const next: T = { ...view, lastError: redact(view.lastError) };
  if (view.results !== undefined) {
    const results: Record<string, unknown> = {};
    for (const [rcpt, result] of Object.entries(view.results)) {
      results[rcpt] = { ...result, reply: redact(result.reply) };
    }
    (next as { results?: unknown }).results = results;
  }
  return next;
}
