/**
 * The relay Worker's HTTP surface (docs/relay-api.md): submission (tenant tokens), admin (admin
 * token) and the status page. Handlers throw `ApiError`s; `handle` turns every failure into a
 * JSON error with a stable code, so no request ends in an unhandled exception.
 */
import {
  isMailspoolError,
  type MessageId,
  type StorageSession,
  sumStats,
  toMeta,
} from '@mailspool/core';
import { shardOf } from '@mailspool/durable-objects';
import { type RelayConfig, type RelayEnv, readConfig } from './config.js';
import type { EndResult, RelayShard } from './delivery.js';
import { authenticateAdmin, authenticateTenant } from './http/auth.js';
import { readJson } from './http/body.js';
import { corsHeaders, preflight, withHeaders } from './http/cors.js';
import { ApiError, errorResponse, json } from './http/errors.js';
import { type LimiterStats, limiterStub, spendDailyQuota } from './limiter.js';
import {
  type LimiterSnapshot,
  lastDay,
  renderLimiterMetrics,
  renderMetrics,
  type ShardMetricsSnapshot,
} from './metrics.js';
import {
  describeMessage,
  flush,
  hold,
  listMessages,
  MessageSending,
  type MessageState,
  release,
  SEND_AT_KEY,
} from './queue.js';
import { asRecord, type MessageStatus, queuedStatus, recordStatus } from './records.js';
import { tenantView } from './redact.js';
import { configuredLimiters, liftSuspension } from './run-limits.js';
import { senderAllowed, senderRule } from './senders.js';
import { renderStatus } from './status-page.js';
import { fingerprint, idempotencyKeyOf, parseSubmission } from './submission.js';
import { tenantEngine, tenantShardName } from './tenants.js';

const LIST_LIMIT = 200;
const STATES = new Set(['all', 'scheduled', 'queued', 'deferred', 'sending', 'held']);

interface Context {
  readonly request: Request;
  readonly env: RelayEnv;
  readonly config: RelayConfig;
  readonly url: URL;
  /** Work that may finish after the response (`ExecutionContext.waitUntil`). */
  readonly waitUntil: (promise: Promise<unknown>) => void;
}

/** Handles one request; never throws. */
export async function handle(
  request: Request,
  env: RelayEnv,
  execution?: Pick<ExecutionContext, 'waitUntil'>,
): Promise<Response> {
  const url = new URL(request.url);
  let config: RelayConfig;
  try {
    config = readConfig(env);
  } catch (error) {
    console.error('mailspool: bad configuration', error);
    return errorResponse(new ApiError('UNAVAILABLE', 'the relay is misconfigured; see its logs'));
  }
  const isApi = url.pathname.startsWith('/v1/');
  if (isApi && request.method === 'OPTIONS') return preflight(request, config.allowedOrigins);
  const headers = { ...(isApi ? corsHeaders(request, config.allowedOrigins) : {}), ...SECURITY };
  try {
    const waitUntil = (promise: Promise<unknown>) =>
      execution ? execution.waitUntil(promise) : void promise;
    return withHeaders(await route({ request, env, config, url, waitUntil }), headers);
  } catch (error) {
    return withHeaders(errorResponse(toApiError(error)), headers);
  }
}

/**
 * Sent with every response: nothing here may be framed, sniffed into another type or load
 * anything but the status page's own inline style.
 */
const SECURITY: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isMailspoolError(error, 'NOT_FOUND')) return new ApiError('NOT_FOUND', 'no such message');
  if (isMailspoolError(error, 'TOO_LARGE')) return new ApiError('TOO_LARGE', error.message);
  if (isMailspoolError(error, 'UNAVAILABLE') || isMailspoolError(error, 'QUOTA_EXCEEDED')) {
    return new ApiError('UNAVAILABLE', 'the queue is unavailable; retry later', {
      'retry-after': '5',
    });
  }
  console.error('mailspool: unexpected error', error);
  return new ApiError('INTERNAL', 'unexpected error; see the relay logs');
}

async function route(ctx: Context): Promise<Response> {
  const { request, url } = ctx;
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const parts = path.split('/').slice(1);
  const method = request.method;

  if (path === '/')
    return json({ service: 'mailspool relay', api: '/v1/messages', status: '/status' });
  if (path === '/v1/messages') {
    if (method !== 'POST') throw notAllowed('POST');
    return submit(ctx);
  }
  if (parts[0] === 'v1' && parts[1] === 'messages' && parts.length === 4 && parts[3] === 'cancel') {
    if (method !== 'POST') throw notAllowed('POST');
    const tenant = await authenticateTenant(request, ctx.config.tenants);
    return cancelOrThrow(ctx, tenant, parts[2]!);
  }
  if (parts[0] === 'v1' && parts[1] === 'messages' && parts.length === 3) {
    if (method !== 'GET') throw notAllowed('GET');
    const tenant = await authenticateTenant(request, ctx.config.tenants);
    return withSession(ctx, tenant, async (session) =>
      json(tenantView(await statusOrThrow(ctx, tenant, session, parts[2]!), ctx.config)),
    );
  }
  if (path === '/metrics') {
    if (method !== 'GET') throw notAllowed('GET');
    // Bearer for most scrapers, Basic (any user, the token as password) for Prometheus' basic_auth.
    await authenticateAdmin(request, ctx.config.adminToken, true);
    return metrics(ctx);
  }
  if (path === '/status') {
    if (method !== 'GET') throw notAllowed('GET');
    await authenticateAdmin(request, ctx.config.adminToken, true);
    return statusPage(ctx);
  }
  if (parts[0] === 'admin') {
    await authenticateAdmin(request, ctx.config.adminToken);
    return admin(ctx, parts.slice(1), method);
  }
  throw new ApiError('NOT_FOUND', `no route for ${method} ${path}`);
}

function notAllowed(allowed: string): ApiError {
  return new ApiError('METHOD_NOT_ALLOWED', `use ${allowed}`, { allow: allowed });
}

async function withSession<T>(
  ctx: Context,
  tenant: string,
  body: (session: StorageSession) => Promise<T>,
): Promise<T> {
  const session = await tenantEngine(ctx.env, ctx.config, tenant).connect();
  try {
    return await body(session);
  } finally {
    await session.close();
  }
}

async function submit(ctx: Context): Promise<Response> {
  const { request, config } = ctx;
  const tenant = await authenticateTenant(request, config.tenants);
  const key = idempotencyKeyOf(request);
  const now = Date.now();
  const submission = parseSubmission(
    await readJson(request, config.maxBodyBytes),
    config.maxRecipients,
    {
      now,
      maxScheduleDays: config.maxScheduleDays,
    },
  );
  if (!senderAllowed(senderRule(config.senders, tenant), submission.from)) {
    throw new ApiError(
      'SENDER_NOT_ALLOWED',
      submission.from === ''
        ? 'this tenant may not use the null sender ""'
        : `this tenant may not send from ${submission.from} (see TENANT_SENDERS)`,
    );
  }
  const envelopeMeta = toMeta({
    sender: submission.from,
    recipients: submission.to,
    timestamp: now,
    attempts: 0,
    client: {
      protocol: 'HTTPS',
      ip: request.headers.get('cf-connecting-ip') ?? '',
      authInfo: tenant,
    },
  });
  // A scheduled send waits in the queue as a retry time: the shard's alarm wakes it then.
  const { sendAt } = submission;
  const meta = sendAt === undefined ? envelopeMeta : { ...envelopeMeta, [SEND_AT_KEY]: sendAt };
  const schedule = {
    ...(sendAt === undefined ? {} : { retryAt: sendAt }),
    priority: submission.priority,
  };
  // Counted before it is stored, and given back if it was not: two requests racing for the
  // last of the day's quota never both get in.
  const refund = await spendDailyQuota(ctx.env, config, tenant, now);
  let queued = false;
  const session = await tenantEngine(ctx.env, config, tenant).connect();
  try {
    if (key === undefined) {
      const id = await session.storeMessage({ meta, contents: submission.contents, ...schedule });
      queued = true;
      noteSubmission(ctx, tenant, id, now);
      return json({ id, duplicate: false }, 202);
    }
    const print = await fingerprint(submission);
    const stored = await session.storeMessageOnce(key, print, {
      meta,
      contents: submission.contents,
      ...schedule,
    });
    queued = !stored.duplicate;
    if (stored.duplicate && stored.fingerprint !== print) {
      throw new ApiError(
        'IDEMPOTENCY_CONFLICT',
        'this Idempotency-Key was used with a different request',
      );
    }
    noteSubmission(ctx, tenant, stored.id, now);
    return json({ id: stored.id, duplicate: stored.duplicate }, stored.duplicate ? 200 : 202);
  } finally {
    if (!queued) await refund().catch(() => {});
    await session.close();
  }
}

/**
 * Counts a submission's latency (its request's start to its stored message, `Date.now()` having
 * moved with the I/O in between) in the shard that holds it, after the response: a metric must
 * neither slow down nor fail a submission that succeeded.
 */
function noteSubmission(ctx: Context, tenant: string, id: string, started: number): void {
  const seconds = (Date.now() - started) / 1000;
  const stub = shardStub(ctx, tenant, id);
  if (stub === undefined) return;
  ctx.waitUntil(
    stub.noteSubmission(seconds).catch((error: unknown) => {
      console.error('mailspool: could not count a submission', error);
    }),
  );
}

/** What a message id looks like; anything else is no message (never handed to the engine). */
const MESSAGE_ID = /^[A-Za-z0-9._~-]{1,128}$/;

async function describeOrThrow(session: StorageSession, id: string) {
  const view = await describeOrUndefined(session, id);
  if (!view) throw new ApiError('NOT_FOUND', 'no such message');
  return view;
}

async function describeOrUndefined(session: StorageSession, id: string) {
  if (!MESSAGE_ID.test(id)) return undefined;
  const view = await describeMessage(session, id as MessageId, Date.now());
  return view;
}

/** The shard that holds `id` of `tenant`, or `undefined` for an id no shard of it can hold. */
function shardStub(
  ctx: Context,
  tenant: string,
  id: string,
): DurableObjectStub<RelayShard> | undefined {
  const index = MESSAGE_ID.test(id) ? shardOf(id) : undefined;
  if (index === undefined || index >= ctx.config.shards) return undefined;
  const namespace = ctx.env.QUEUE_SHARD as unknown as DurableObjectNamespace<RelayShard>;
  return namespace.get(namespace.idFromName(tenantShardName(tenant, index)));
}

/** The stored delivery record of `id`, if any. */
async function recordOf(stub: DurableObjectStub<RelayShard>, id: string) {
  const text = await stub.deliveryRecord(id);
  if (text === null) return undefined;
  const { data, expiresAt } = JSON.parse(text) as { data: unknown; expiresAt: number | null };
  const record = asRecord(data);
  return record === undefined ? undefined : { record, expiresAt };
}

/**
 * `GET /v1/messages/:id`: the live view while the message is queued (with the SMTP replies
 * recorded so far), its delivery record once it left the queue (for RETENTION_DAYS). The queue
 * is read first: its record is written in the same transaction that removes it, so a message
 * is never missed between the two reads.
 */
async function statusOrThrow(
  ctx: Context,
  tenant: string,
  session: StorageSession,
  id: string,
): Promise<MessageStatus> {
  const stub = shardStub(ctx, tenant, id);
  if (stub === undefined) throw new ApiError('NOT_FOUND', 'no such message');
  const live = await describeOrUndefined(session, id);
  const stored = await recordOf(stub, id);
  if (stored !== undefined && stored.record.state !== null) {
    return recordStatus(
      id as MessageId,
      stored.record,
      stored.record.state,
      null,
      stored.expiresAt,
    );
  }
  if (live === undefined) throw new ApiError('NOT_FOUND', 'no such message');
  return queuedStatus(live, stored?.record);
}

/**
 * Undo / cancel: takes the message out of the queue if no SMTP transaction for it has started
 * (one fenced step in its shard, `RelayShard.endMessage`), else `409 ALREADY_SENDING` and
 * nothing changes; a message that already left the queue is `409 ALREADY_FINAL` with its state.
 * A cancel that races a claim is settled by the lease: either the cancel holds it (the relayer
 * can't start) or the relayer does (the cancel is refused). Never "canceled" and delivered.
 */
async function cancelOrThrow(ctx: Context, tenant: string, id: string): Promise<Response> {
  const stub = shardStub(ctx, tenant, id);
  if (stub === undefined) throw new ApiError('NOT_FOUND', 'no such message');
  const result = await stub.endMessage(id, 'canceled');
  if (result === 'ended') return json({ id, state: 'canceled' });
  return endFailed(stub, id, result, 'ALREADY_SENDING');
}

/** The error of an `endMessage` that did not end the message. */
async function endFailed(
  stub: DurableObjectStub<RelayShard>,
  id: string,
  result: Exclude<EndResult, 'ended'>,
  sending: 'ALREADY_SENDING' | 'MESSAGE_SENDING',
): Promise<never> {
  if (result === 'sending') {
    throw new ApiError(
      sending,
      sending === 'ALREADY_SENDING'
        ? 'the message is being delivered now; it can no longer be canceled'
        : `${id} is being delivered right now; nothing was changed (try again when the attempt ends)`,
      {},
      { state: 'sending' },
    );
  }
  const stored = await recordOf(stub, id);
  if (stored?.record.state) {
    throw new ApiError(
      'ALREADY_FINAL',
      `the message already left the queue (${stored.record.state})`,
      {},
      { state: stored.record.state },
    );
  }
  throw new ApiError('NOT_FOUND', 'no such message');
}

/**
 * Runs a fenced action on one message (queue.ts); one that met a running attempt is a 409
 * (`MESSAGE_SENDING`, or `sending` for the tenant's cancel) that changed nothing.
 */
async function operatorAction(
  action: () => Promise<void>,
  sending: { code: 'MESSAGE_SENDING' | 'ALREADY_SENDING'; message?: string } = {
    code: 'MESSAGE_SENDING',
  },
): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof MessageSending) {
      throw new ApiError(sending.code, sending.message ?? error.message);
    }
    if (isMailspoolError(error, 'NOT_FOUND')) throw new ApiError('NOT_FOUND', 'no such message');
    throw error;
  }
}

function knownTenant(ctx: Context, tenant: string | undefined): string {
  if (!tenant || !ctx.config.tenants.has(tenant)) throw new ApiError('NOT_FOUND', 'no such tenant');
  return tenant;
}

async function admin(ctx: Context, parts: string[], method: string): Promise<Response> {
  const now = Date.now();
  if (parts.length === 1 && parts[0] === 'stats') {
    if (method !== 'GET') throw notAllowed('GET');
    const tenants = await allTenantStats(ctx);
    return json({ tenants, total: sumStats(tenants.map((t) => t.stats)) });
  }
  if (parts.length === 1 && parts[0] === 'flush') {
    if (method !== 'POST') throw notAllowed('POST');
    // Like `postqueue -f`: a suspended smarthost is tried again at once, and so is every shard's
    // due mail that waited for it (it was never claimed, so no retry time moves it).
    const suspended = await liftSuspension(ctx.env, ctx.config);
    let flushed = 0;
    for (const tenant of ctx.config.tenants.keys())
      flushed += await withSession(ctx, tenant, (s) => flush(s, now));
    if (suspended) await wakeShards(ctx);
    return json({ flushed, resumed: suspended });
  }
  if (parts[0] !== 'tenants') throw new ApiError('NOT_FOUND', 'no such admin route');
  const tenant = knownTenant(ctx, parts[1]);
  const rest = parts.slice(2);
  if (rest.length === 1 && rest[0] === 'flush') {
    if (method !== 'POST') throw notAllowed('POST');
    return json({ flushed: await withSession(ctx, tenant, (s) => flush(s, now)) });
  }
  if (rest[0] !== 'messages') throw new ApiError('NOT_FOUND', 'no such admin route');
  if (rest.length === 1) {
    if (method !== 'GET') throw notAllowed('GET');
    const state = ctx.url.searchParams.get('state') ?? 'all';
    if (!STATES.has(state))
      throw new ApiError('INVALID_REQUEST', `state must be one of ${[...STATES].join(', ')}`);
    return json(
      await withSession(ctx, tenant, (s) =>
        listMessages(s, state as 'all' | MessageState, LIST_LIMIT, now),
      ),
    );
  }
  const id = rest[1]!;
  if (rest.length === 2) {
    if (method === 'GET')
      return json(await withSession(ctx, tenant, (s) => statusOrThrow(ctx, tenant, s, id)));
    if (method === 'DELETE') {
      const stub = shardStub(ctx, tenant, id);
      if (stub === undefined) throw new ApiError('NOT_FOUND', 'no such message');
      const result = await stub.endMessage(id, 'deleted');
      if (result !== 'ended') await endFailed(stub, id, result, 'MESSAGE_SENDING');
      return json({ deleted: id });
    }
    throw notAllowed('GET, DELETE');
  }
  if (rest.length === 3 && (rest[2] === 'hold' || rest[2] === 'release')) {
    if (method !== 'POST') throw notAllowed('POST');
    const view = await withSession(ctx, tenant, async (s) => {
      await describeOrThrow(s, id);
      await operatorAction(() =>
        rest[2] === 'hold' ? hold(s, id as MessageId) : release(s, id as MessageId, now),
      );
      return describeOrThrow(s, id);
    });
    return json(view);
  }
  throw new ApiError('NOT_FOUND', 'no such admin route');
}

/** Runs every shard's alarm now (see `RelayShard.wake`). */
async function wakeShards(ctx: Context): Promise<void> {
  const namespace = ctx.env.QUEUE_SHARD as unknown as DurableObjectNamespace<RelayShard>;
  const wakes: Promise<void>[] = [];
  for (const tenant of ctx.config.tenants.keys()) {
    for (let index = 0; index < ctx.config.shards; index++) {
      wakes.push(namespace.get(namespace.idFromName(tenantShardName(tenant, index))).wake());
    }
  }
  await Promise.all(wakes);
}

async function allTenantStats(ctx: Context) {
  return Promise.all(
    [...ctx.config.tenants.keys()].map(async (tenant) => ({
      tenant,
      stats: await withSession(ctx, tenant, (s) => s.stats()),
    })),
  );
}

/** Shards asked for their metrics at once by one `/metrics` or `/status` request. */
const SNAPSHOTS_AT_ONCE = 16;

/** Every shard's metrics snapshot, by tenant (tenants × SHARDS calls, 16 at a time). */
async function allSnapshots(
  ctx: Context,
): Promise<{ tenant: string; shards: ShardMetricsSnapshot[] }[]> {
  const namespace = ctx.env.QUEUE_SHARD as unknown as DurableObjectNamespace<RelayShard>;
  const tenants = [...ctx.config.tenants.keys()];
  const calls = tenants.flatMap((tenant) =>
    Array.from({ length: ctx.config.shards }, (_, index) => ({ tenant, index })),
  );
  const answers: ShardMetricsSnapshot[] = new Array(calls.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < calls.length) {
      const at = next++;
      const { tenant, index } = calls[at]!;
      const stub = namespace.get(namespace.idFromName(tenantShardName(tenant, index)));
      // RPC types lose the tuples' lengths; the values are the ones metricsSnapshot built.
      answers[at] = (await stub.metricsSnapshot()) as unknown as ShardMetricsSnapshot;
    }
  };
  await Promise.all(Array.from({ length: Math.min(SNAPSHOTS_AT_ONCE, calls.length) }, worker));
  return tenants.map((tenant, t) => ({
    tenant,
    shards: answers.slice(t * ctx.config.shards, (t + 1) * ctx.config.shards),
  }));
}

/** What every configured limiter counted (run-limits.ts `configuredLimiters`). */
async function limiterSnapshots(ctx: Context): Promise<LimiterSnapshot[]> {
  return Promise.all(
    configuredLimiters(ctx.config).map(async (name) => ({
      name,
      stats: (await limiterStub(ctx.env, name).stats()) as LimiterStats,
    })),
  );
}

/** `GET /metrics`: the Prometheus text exposition format (docs/relay-api.md, "Metrics"). */
async function metrics(ctx: Context): Promise<Response> {
  const [snapshots, limiters] = await Promise.all([allSnapshots(ctx), limiterSnapshots(ctx)]);
  const now = Date.now();
  return new Response(renderMetrics(snapshots, now) + renderLimiterMetrics(limiters, now), {
    headers: {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
      'cache-control': 'no-store',
    },
  });
}

async function statusPage(ctx: Context): Promise<Response> {
  const tenants = await allTenantStats(ctx);
  const day = lastDay(
    (await allSnapshots(ctx)).flatMap((t) => t.shards),
    Date.now(),
  );
  const sample = [];
  for (const tenant of ctx.config.tenants.keys()) {
    const { messages } = await withSession(ctx, tenant, (s) =>
      listMessages(s, 'all', LIST_LIMIT, Date.now()),
    );
    sample.push(...messages.map((m) => ({ ...m, tenant })));
  }
  return new Response(renderStatus({ now: Date.now(), tenants, sample, day }), {
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
  });
}
