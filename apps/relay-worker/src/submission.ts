/** Validation of a submitted message (`POST /v1/messages`): every field, every address, every size. */
import type { Priority } from '@mailspool/core';
import { addressKey, addressProblem } from '@mailspool/relay/address';
import { ApiError } from './http/errors.js';

const PRIORITIES: readonly Priority[] = ['high', 'normal', 'bulk'];

export interface Submission {
  readonly from: string;
  readonly to: readonly string[];
  readonly contents: Uint8Array;
  /** When to send (epoch ms), for scheduled send; `undefined`: now. */
  readonly sendAt?: number;
  /**
   * The `sendAt` as asked, also when it had passed (then `sendAt` is unset): part of the
   * fingerprint, so a client retrying with the same value after that time (a page's undo window
   * that ended while offline) is the same request.
   */
  readonly requestedSendAt?: number;
  /**
   * Which due mail goes first (`claimDue` takes every due `high` message before any `normal`
   * one, and those before `bulk`); `normal` when the request names none.
   */
  readonly priority: Priority;
}

/** The submission's `priority`: `high`, `normal` (also when absent) or `bulk`. */
function parsePriority(value: unknown): Priority {
  if (value === undefined || value === null) return 'normal';
  if (typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value)) {
    return value as Priority;
  }
  throw new ApiError('INVALID_REQUEST', '"priority" must be "high", "normal" or "bulk"');
}

/**
 * `sendAt` as epoch ms: an RFC 3339 date-time with its offset, or epoch milliseconds. A time in
 * the past means now; at most `maxScheduleDays` ahead of `now`.
 */
function parseSendAt(value: unknown, now: number, maxScheduleDays: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  let at: number;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) at = value;
  else if (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i.test(value)
  ) {
    at = Date.parse(value);
    if (Number.isNaN(at))
      throw new ApiError('INVALID_REQUEST', '"sendAt" is not a valid date-time');
  } else {
    throw new ApiError(
      'INVALID_REQUEST',
      '"sendAt" must be an RFC 3339 date-time with an offset, or epoch milliseconds',
    );
  }
  if (at > now + maxScheduleDays * 86_400_000) {
    throw new ApiError('INVALID_REQUEST', `"sendAt" is more than ${maxScheduleDays} days ahead`);
  }
  return at;
}

/** `Idempotency-Key` syntax: the same as a message id, so it can be stored and logged safely. */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._~-]{1,128}$/;

/** The request's `Idempotency-Key`, validated; `undefined` when absent. */
export function idempotencyKeyOf(request: Request): string | undefined {
  const key = request.headers.get('idempotency-key');
  if (key === null) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ApiError(
      'INVALID_REQUEST',
      'Idempotency-Key must be 1-128 characters of [A-Za-z0-9._~-]',
    );
  }
  return key;
}

/** Checks the parsed JSON body and decodes the message; throws `ApiError`s with stable codes. */
export function parseSubmission(
  body: unknown,
  maxRecipients: number,
  schedule: { readonly now: number; readonly maxScheduleDays: number } = {
    now: Date.now(),
    maxScheduleDays: 30,
  },
): Submission {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('INVALID_REQUEST', 'the body must be a JSON object { from, to, raw }');
  }
  const { from, to, raw, sendAt: rawSendAt, priority } = body as Record<string, unknown>;
  if (typeof from !== 'string')
    throw new ApiError('INVALID_REQUEST', '"from" must be a string ("" for the null reverse-path)');
  if (!Array.isArray(to) || to.length === 0)
    throw new ApiError('INVALID_REQUEST', '"to" must be a non-empty array of addresses');
  if (to.length > maxRecipients) {
    throw new ApiError(
      'TOO_MANY_RECIPIENTS',
      `${to.length} recipients; the limit is ${maxRecipients}`,
    );
  }
  if (typeof raw !== 'string' || raw.length === 0)
    throw new ApiError('INVALID_REQUEST', '"raw" must be the message as base64');

  const senderProblem = addressProblem(from, 'sender');
  if (senderProblem) throw new ApiError('INVALID_ADDRESS', `"from" ${senderProblem}`);
  const seen = new Set<string>();
  for (const [index, address] of to.entries()) {
    const problem = addressProblem(address, 'recipient');
    if (problem) throw new ApiError('INVALID_ADDRESS', `"to"[${index}] ${problem}`);
    const key = addressKey(address as string);
    if (seen.has(key)) {
      throw new ApiError('INVALID_REQUEST', `"to"[${index}] repeats an earlier address`);
    }
    seen.add(key);
  }

  const asked = parseSendAt(rawSendAt, schedule.now, schedule.maxScheduleDays);
  return {
    priority: parsePriority(priority),
    from,
    to: to as string[],
    contents: decodeBase64(raw),
    ...(asked === undefined ? {} : { requestedSendAt: asked }),
    ...(asked === undefined || asked <= schedule.now ? {} : { sendAt: asked }),
  };
}

function decodeBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new ApiError('INVALID_REQUEST', '"raw" is not valid base64');
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * A fingerprint of the request, kept with its Idempotency-Key so that the same key with a
 * different request is refused (409) rather than silently answered with the first message.
 * SHA-256 over the canonical JSON of the envelope (`["<from>",["<to>",…]]`, with the `sendAt` of
 * a scheduled send as a third element, and a `priority` other than `normal` as a fourth, after
 * the `sendAt` or `null`: a request without either keeps the fingerprint it always had. JSON text
 * never holds a raw newline, so the newline after it ends it unambiguously), a newline, then the
 * bytes.
 * Addresses may contain commas, so no joined list could stand in for the array.
 */
export async function fingerprint(submission: Submission): Promise<string> {
  const sendAt = submission.requestedSendAt ?? submission.sendAt;
  const envelope: unknown[] = [submission.from, submission.to];
  if (sendAt !== undefined || submission.priority !== 'normal') envelope.push(sendAt ?? null);
  if (submission.priority !== 'normal') envelope.push(submission.priority);
  const head = new TextEncoder().encode(`${JSON.stringify(envelope)}\n`);
  const all = new Uint8Array(head.byteLength + submission.contents.byteLength);
  all.set(head);
  all.set(submission.contents, head.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
