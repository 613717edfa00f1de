/**
 * Structured logs: one JSON object per line and per event, so that `wrangler tail`, Logpush or
 * any log pipeline can filter by tenant, message id, result or SMTP reply code without parsing
 * prose. Every line has `event` and `at` (ISO time); the rest depends on the event (see
 * docs/relay-api.md, "Logs"). Recipient addresses are never logged, only counted.
 */
import type { RecipientOutcome, RelayEvent } from '@mailspool/relay';

/** Writes one log line: `{ "at": "…", ...fields }`. */
export function logEvent(fields: {
  readonly event: string;
  readonly [key: string]: unknown;
}): void {
  console.log(JSON.stringify({ at: new Date().toISOString(), ...fields }));
}

/** The SMTP reply of the first of `recipients` in `outcomes` (code and enhanced status). */
function replyOf(
  outcomes: readonly RecipientOutcome[] | undefined,
  recipients: readonly string[],
): { code: number | null; status: string | null } {
  const first = outcomes?.find((o) => recipients.includes(o.recipient));
  return { code: first?.diagnostic.code ?? null, status: first?.diagnostic.status ?? null };
}

/**
 * The log line of one relay event of `tenant`'s message: `result` is the event's type, `code` and
 * `status` the SMTP reply that decided it (`null` when there was none: a connection failure, a
 * retry policy giving up, a lost lease), from `outcomes`, the attempt's outcomes.
 */
export function logRelayEvent(
  tenant: string,
  event: RelayEvent,
  outcomes: readonly RecipientOutcome[] | undefined,
): void {
  logEvent({
    event: 'relay',
    tenant,
    id: event.id,
    result: event.type,
    ...details(event, outcomes),
  });
}

/** What a relay event's log line says besides tenant, id and result. */
function details(
  event: RelayEvent,
  outcomes: readonly RecipientOutcome[] | undefined,
): Record<string, unknown> {
  switch (event.type) {
    case 'delivered':
      return { ...replyOf(outcomes, event.recipients), recipients: event.recipients.length };
    case 'deferred':
      return {
        ...replyOf(outcomes, event.recipients),
        recipients: event.recipients.length,
        retryAt: new Date(event.retryAt).toISOString(),
        reply: event.diagnostic,
      };
    case 'bounced':
      return {
        ...replyOf(outcomes, event.recipients),
        recipients: event.recipients.length,
        bounceId: event.bounceId,
      };
    case 'bounce-dropped':
      return {
        ...replyOf(outcomes, event.recipients),
        recipients: event.recipients.length,
        reply: event.diagnostic,
      };
    case 'delay-warned':
      return { code: null, recipients: event.recipients.length, warningId: event.warningId };
    case 'error':
      return { code: null, error: String(event.error) };
    default:
      return { code: null };
  }
}
