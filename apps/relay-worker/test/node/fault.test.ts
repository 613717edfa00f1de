/**
 * Fault test (issue 18): the relay Worker under `wrangler dev` (a real workerd, storage persisted
 * to a directory) delivering to a local SMTP server, while the runtime is SIGKILLed at seeded
 * pseudo-random moments and restarted on the same state, plus a smarthost outage whose backlog
 * (equal due times over 4 shards) is flushed once.
 *
 * 1. live: mails submitted while deliveries run; kill 1 during submission (after the n-th 202),
 *    kill 2 during delivery (right after the k-th 250 that follows restart 1).
 * 2. backlog: the smarthost stops (connections refused); more mails submitted, kill 3 during
 *    that submission; once every backlog mail waits deferred (or after 15 s), the smarthost
 *    comes back and `POST /admin/flush` is called once; kill 4 while the flushed backlog drains.
 * 3. hands off: after the last restart nothing talks to the Worker (the readiness check, `GET /`,
 *    touches no Durable Object); only the SMTP server is watched, for at most 90 s.
 *
 * Submissions cut off by a kill are retried with the same Idempotency-Key after the restart.
 * Asserted: every acknowledged mail delivered; a mail delivered more than once only when each
 * earlier 250 came at most DUPLICATE_WINDOW_MS before a kill (or was read just after its signal:
 * the relay had sent the final `.` before it died); all delivered within 90 s of the last kill.
 * Figures go to the console and to test-results/fault.json, the runtime's output to
 * test-results/fault-relay.log. The seed is random per run and printed; `FAULT_SEED=<n>` replays
 * its plan (the kill points; the timing of a real runtime still varies).
 */

import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@mailspool/test-support/net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpRecorder } from './smtp-recorder.js';
import { WRANGLER_ENV, WranglerDev } from './wrangler-dev.js';

const TENANT = 'fault';
const TENANT_TOKEN = 'fault-tenant-token-0123456789';
const ADMIN_TOKEN = 'fault-admin-token-0123456789';
const SHARDS = 4;
const LIVE_MAILS = 100;
const BACKLOG_MAILS = 120;
const CONCURRENCY = 4;
/** Tries per submission (a kill costs one); past that the mail counts as not acknowledged. */
const MAX_TRIES = 8;
/** Everything acknowledged must be delivered within this long after the last kill. */
const DELIVERY_DEADLINE_MS = 90_000;
/** A duplicate is excused only when its earlier 250 came at most this long before a kill. */
const DUPLICATE_WINDOW_MS = 5_000;
/**
 * A 250 written up to this long after a kill signal still counts as "before the kill": the relay
 * had sent the final `.` before it died, and this process read it only after sending the signal.
 */
const KILL_READ_GRACE_MS = 1_000;
/** How long a kill waits for its trigger (a count of 250s) before it kills anyway. */
const TRIGGER_TIMEOUT_MS = 12_000;
/** How long the backlog may take to be attempted and deferred before the flush goes ahead. */
const SETTLE_TIMEOUT_MS = 15_000;

const workerDir = join(import.meta.dirname, '../..');
const resultsDir = join(workerDir, 'test-results');
const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : randomInt(2 ** 31);

/** mulberry32: a small seeded PRNG, so a seed's plan can be replayed. */
function prng(value: number): () => number {
  let state = value >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(seed);
const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));

/** The seeded plan: every random choice the test makes, drawn up front. */
const plan = {
  /** Kill 1 when this many live mails have their 202 (during submission)… */
  kill1AfterAcks: between(15, 40),
  kill1DelayMs: between(0, 80),
  /** …kill 2 after this many more live mails reached the server after restart 1… */
  kill2AfterDeliveries: between(5, 25),
  kill2DelayMs: between(0, 150),
  /** …kill 3 when this many backlog mails have their 202 (smarthost down)… */
  kill3AfterAcks: between(20, 70),
  kill3DelayMs: between(0, 80),
  /** …kill 4 after this many backlog mails reached the server after the flush. */
  kill4AfterDeliveries: between(10, 60),
  kill4DelayMs: between(0, 150),
  /** How long the runtime stays dead after each kill. */
  downMs: [between(100, 1500), between(100, 1500), between(100, 1500), between(100, 1500)],
};

type Phase = 'live' | 'backlog';

interface Mail {
  readonly marker: string;
  readonly key: string;
  readonly phase: Phase;
  readonly body: string;
  status: 'pending' | 'acked' | 'refused' | 'unacked';
  tries: number;
  /** 202 (stored by this try) or 200 (a retry: stored by an earlier, cut-off try). */
  ackStatus?: number;
  ackedAt?: number;
  id?: string;
  lastError?: string;
}

interface Kill {
  readonly n: number;
  readonly phase: string;
  readonly trigger: string;
  readonly at: number;
  readonly downMs: number;
  upAt: number;
  readonly submissionsInFlight: number;
  readonly smtpInTransaction: number;
  /** 250s written in the second before the kill. */
  readonly recentDeliveries: number;
}

function makeMail(phase: Phase, index: number): Mail {
  const marker = `${phase}-${index}-${seed}`;
  const raw =
    `From: fault@example.com\r\nTo: rcpt@example.org\r\nSubject: fault ${marker}\r\n` +
    `Message-ID: <${marker}@fault.test>\r\n\r\nMail ${marker}.\r\n`;
  return {
    marker,
    key: `fault-${marker}`,
    phase,
    body: JSON.stringify({
      from: 'fault@example.com',
      to: ['rcpt@example.org'],
      raw: Buffer.from(raw).toString('base64'),
    }),
    status: 'pending',
    tries: 0,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let scratch: string | undefined;
let relay: WranglerDev | undefined;
const recorder = new SmtpRecorder();

beforeAll(() => {
  mkdirSync(resultsDir, { recursive: true });
  rmSync(join(resultsDir, 'fault.json'), { force: true });
  writeFileSync(join(resultsDir, 'fault-relay.log'), '');
});

afterAll(async () => {
  await relay?.dispose();
  await recorder.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('faults: SIGKILLed runtime, smarthost outage, flushed backlog', () => {
  it('delivers every acknowledged mail within 90 s of the last kill, with no operator action', {
    timeout: 240_000,
  }, async () => {
    const testStart = Date.now();
    console.log(`fault test: seed ${seed} (replay with FAULT_SEED=${seed})`);
    scratch = mkdtempSync(join(tmpdir(), 'mailspool-fault-'));
    const bundleDir = join(scratch, 'bundle');
    // One bundle for every run: each restart runs the same code, and edits made to the sources
    // while the test runs neither reload the Worker (wrangler dev watches what it bundles) nor
    // change it between restarts.
    execFileSync(
      join(workerDir, 'node_modules/.bin/wrangler'),
      ['deploy', '--dry-run', '--outdir', bundleDir, '--config', join(workerDir, 'wrangler.jsonc')],
      { cwd: workerDir, env: { ...process.env, ...WRANGLER_ENV }, stdio: 'pipe', timeout: 60_000 },
    );
    const envFile = join(scratch, 'fault.env');
    writeFileSync(
      envFile,
      `TENANT_TOKENS=${JSON.stringify({ [TENANT]: TENANT_TOKEN })}\nADMIN_TOKEN=${ADMIN_TOKEN}\n` +
        `TENANT_SENDERS=${JSON.stringify({ [TENANT]: ['*'] })}\n`,
    );
    const smtpPort = await recorder.start(0);
    relay = new WranglerDev({
      workerDir,
      config: join(workerDir, 'wrangler.jsonc'),
      script: join(bundleDir, 'index.js'),
      port: await freePort(),
      inspectorPort: await freePort(),
      persistTo: join(scratch, 'state'),
      envFile,
      vars: {
        SMARTHOST_HOST: '127.0.0.1',
        SMARTHOST_PORT: String(smtpPort),
        SMARTHOST_TLS: 'off',
        SHARDS: String(SHARDS),
      },
      logFile: join(resultsDir, 'fault-relay.log'),
      tmpDir: join(scratch, 'tmp'),
    });
    const worker = relay;
    await worker.start();

    const live = Array.from({ length: LIVE_MAILS }, (_, i) => makeMail('live', i));
    const backlog = Array.from({ length: BACKLOG_MAILS }, (_, i) => makeMail('backlog', i));
    const byMarker = new Map([...live, ...backlog].map((mail) => [mail.marker, mail]));
    const delivered = new Map<string, number>(); // marker → deliveries
    recorder.onDelivery((d) => delivered.set(d.marker, (delivered.get(d.marker) ?? 0) + 1));
    const deliveredOf = (mails: readonly Mail[]) =>
      mails.filter((mail) => delivered.has(mail.marker)).length;

    // ---- submission and kills -----------------------------------------------------------------
    let inFlight = 0;
    const kills: Kill[] = [];
    const crash = async (phase: string, trigger: string): Promise<void> => {
      const now = Date.now();
      const kill: Kill = {
        n: kills.length + 1,
        phase,
        trigger,
        at: now,
        downMs: plan.downMs[kills.length] ?? 500,
        upAt: 0,
        submissionsInFlight: inFlight,
        smtpInTransaction: recorder.inTransaction,
        recentDeliveries: recorder.deliveries.filter((d) => d.at > now - 1000).length,
      };
      kills.push(kill);
      await worker.kill();
      await sleep(kill.downMs); // the outage's length: a fault parameter, not a wait for a result
      await worker.start();
      kill.upAt = Date.now();
    };

    const submit = async (mail: Mail): Promise<void> => {
      while (mail.tries < MAX_TRIES) {
        await worker.whenUp(60_000);
        mail.tries++;
        inFlight++;
        try {
          const response = await fetch(`${worker.url}/v1/messages`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${TENANT_TOKEN}`,
              'content-type': 'application/json',
              'idempotency-key': mail.key,
            },
            body: mail.body,
            signal: AbortSignal.timeout(20_000),
          });
          const text = await response.text();
          if (response.status === 202 || response.status === 200) {
            mail.status = 'acked';
            mail.ackStatus = response.status;
            mail.ackedAt = Date.now();
            mail.id = (JSON.parse(text) as { id: string }).id;
            return;
          }
          mail.lastError = `${response.status} ${text.slice(0, 200)}`;
          if (response.status < 500) {
            mail.status = 'refused';
            return;
          }
        } catch (error) {
          mail.lastError = String(error); // cut off by a kill (or refused while down): retry
        } finally {
          inFlight--;
        }
        await sleep(100);
      }
      mail.status = 'unacked';
    };

    /** Submits `mails`, CONCURRENCY at a time; `onAck(n)` after the n-th acknowledgement. */
    const submitAll = async (mails: readonly Mail[], onAck: (acked: number) => void) => {
      let next = 0;
      let acked = 0;
      const lane = async () => {
        while (next < mails.length) {
          const mail = mails[next++]!;
          await submit(mail);
          if (mail.status === 'acked') onAck(++acked);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    };

    /** Kills once `test()` holds after a 250 (or after TRIGGER_TIMEOUT_MS), `delayMs` later. */
    const killAfter = async (phase: string, what: string, test: () => boolean, delayMs: number) => {
      const hit = await recorder.waitUntil(test, TRIGGER_TIMEOUT_MS);
      await sleep(delayMs);
      await crash(phase, hit ? what : `${what} not reached in ${TRIGGER_TIMEOUT_MS} ms`);
    };

    // 1. live: submission while deliveries run. Kill 1 during submission; kill 2 once deliveries
    // are flowing again after restart 1 (submission may still be running then too).
    let kills12: Promise<void> | undefined;
    await submitAll(live, (acked) => {
      if (acked !== plan.kill1AfterAcks) return;
      kills12 = (async () => {
        await sleep(plan.kill1DelayMs);
        await crash(
          'live',
          `${plan.kill1AfterAcks} live mails acknowledged (+${plan.kill1DelayMs} ms)`,
        );
        const base = deliveredOf(live);
        await killAfter(
          'live',
          `${plan.kill2AfterDeliveries} more live mails delivered after restart 1 (+${plan.kill2DelayMs} ms)`,
          () => deliveredOf(live) >= base + plan.kill2AfterDeliveries,
          plan.kill2DelayMs,
        );
      })();
      kills12.catch(() => {}); // awaited below; this only keeps a failed restart from going unhandled
    });
    if (!kills12) throw notAcknowledged(live, plan.kill1AfterAcks);
    await kills12;

    // 2. backlog: smarthost down, submission (kill 3), deferred, smarthost back, one flush, kill 4.
    await recorder.stop();
    const smarthostDownAt = Date.now();
    let kill3: Promise<void> | undefined;
    await submitAll(backlog, (acked) => {
      if (acked !== plan.kill3AfterAcks) return;
      kill3 = sleep(plan.kill3DelayMs).then(() =>
        crash(
          'backlog',
          `${plan.kill3AfterAcks} backlog mails acknowledged, smarthost down (+${plan.kill3DelayMs} ms)`,
        ),
      );
      kill3.catch(() => {}); // awaited below
    });
    if (!kill3) throw notAcknowledged(backlog, plan.kill3AfterAcks);
    await kill3;
    // The operator checks the queue before fixing the smarthost: every backlog mail attempted and
    // waiting (deferred), none still queued or being sent. Bounded; the flush goes ahead anyway.
    const backlogIds = new Set(backlog.flatMap((mail) => (mail.id ? [mail.id] : [])));
    const settleStart = Date.now();
    let settled = false;
    let unsettled = backlogIds.size;
    while (Date.now() - settleStart < SETTLE_TIMEOUT_MS) {
      const pending = new Set<string>();
      for (const state of ['queued', 'sending']) {
        const listing = (await adminJson(
          worker,
          `/admin/tenants/${TENANT}/messages?state=${state}`,
        )) as { messages: { id: string }[] };
        for (const { id } of listing.messages) if (backlogIds.has(id)) pending.add(id);
      }
      unsettled = pending.size;
      if (unsettled === 0) {
        settled = true;
        break;
      }
      await sleep(500);
    }
    const settleMs = Date.now() - settleStart;
    await recorder.start();
    const smarthostUpAt = Date.now();
    const flushResponse = await fetch(`${worker.url}/admin/flush`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: AbortSignal.timeout(30_000),
    });
    const flush = {
      status: flushResponse.status,
      body: await flushResponse.text(),
      at: Date.now(),
    };
    const backlogAtFlush = deliveredOf(backlog);
    await killAfter(
      'drain',
      `${plan.kill4AfterDeliveries} backlog mails delivered after the flush (+${plan.kill4DelayMs} ms)`,
      () => deliveredOf(backlog) >= backlogAtFlush + plan.kill4AfterDeliveries,
      plan.kill4DelayMs,
    );

    // 3. hands off: watch the SMTP server only, until everything acknowledged arrived or 90 s.
    const lastKill = kills.at(-1)!;
    const acked = [...live, ...backlog].filter((mail) => mail.status === 'acked');
    const allDelivered = () => acked.every((mail) => delivered.has(mail.marker));
    await recorder.waitUntil(allDelivered, lastKill.at + DELIVERY_DEADLINE_MS - Date.now());
    const windowEnd = Date.now();

    // ---- figures --------------------------------------------------------------------------------
    const deliveries = [...recorder.deliveries];
    const missing = acked.filter((mail) => !delivered.has(mail.marker));
    const unknown = deliveries.filter((d) => !byMarker.has(d.marker));
    const duplicates = [...delivered]
      .filter(([, count]) => count > 1)
      .map(([marker, count]) => {
        const times = deliveries.filter((d) => d.marker === marker).map((d) => d.at);
        // Every delivery but the last must have been cut off by a kill shortly after its 250.
        const causes = times.slice(0, -1).map((at) => {
          const kill = kills.find(
            (k) => at >= k.at - DUPLICATE_WINDOW_MS && at <= k.at + KILL_READ_GRACE_MS,
          );
          return kill ? { kill: kill.n, msBeforeKill: kill.at - at } : null;
        });
        return {
          marker,
          count,
          times: times.map((at) => new Date(at).toISOString()),
          causes,
          explained: causes.every((cause) => cause !== null),
        };
      });
    const lastDelivery = deliveries.at(-1);
    const lastAcked = acked.reduce((last, mail) => {
      const at = deliveries.find((d) => d.marker === mail.marker)?.at;
      return at !== undefined && at > last ? at : last;
    }, 0);
    const shardOf = (id: string | undefined) => (id ? (/^s(\d+)\./.exec(id)?.[1] ?? '?') : '?');
    const countBy = <T>(items: readonly T[], key: (item: T) => string) =>
      items.reduce<Record<string, number>>((out, item) => {
        out[key(item)] = (out[key(item)] ?? 0) + 1;
        return out;
      }, {});
    const rel = (at: number) => Math.round(at - testStart);

    // After the window (the assertions are already decided): what the queue says about the mail
    // that did not arrive, and whether waking the shards by these requests moves it.
    let stranded: Record<string, unknown> | undefined;
    if (missing.length > 0) {
      const stats = await adminJson(worker, '/admin/stats');
      const listing = (await adminJson(worker, `/admin/tenants/${TENANT}/messages?state=all`)) as {
        total: number;
        messages: {
          id: string;
          state: string;
          attempts: number;
          nextAttemptAt: number | null;
          lastError: string | null;
        }[];
      };
      const views = new Map(listing.messages.map((view) => [view.id, view]));
      const now = Date.now();
      const details = missing.map((mail) => {
        const view = mail.id ? views.get(mail.id) : undefined;
        return {
          marker: mail.marker,
          id: mail.id,
          shard: shardOf(mail.id),
          state: view?.state ?? (listing.total > listing.messages.length ? 'unlisted' : 'absent'),
          attempts: view?.attempts,
          dueInS:
            view?.nextAttemptAt != null ? Math.round((view.nextAttemptAt - now) / 1000) : null,
          lastError: view?.lastError ?? null,
        };
      });
      const before = deliveries.length;
      await recorder.waitUntil(allDelivered, 15_000);
      stranded = {
        count: missing.length,
        byPhase: countBy(missing, (mail) => mail.phase),
        byShard: countBy(details, (d) => `shard ${d.shard}`),
        byState: countBy(details, (d) => d.state),
        byShardAndState: countBy(details, (d) => `shard ${d.shard} ${d.state}`),
        dueInS: countBy(details, (d) => String(d.dueInS)),
        stats,
        deliveredWithin15sAfterAdminRequests: recorder.deliveries.length - before,
        stillMissingAfterThat: acked.filter((mail) => !delivered.has(mail.marker)).length,
        mails: details,
      };
    }
    // The runtime's own account: shards that woke with no name ("no configured tenant"), by run.
    const noTenantByRun = countBy(
      readFileSync(join(resultsDir, 'fault-relay.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes('no configured tenant')),
      (line) => /^\S+ (run\d+)/.exec(line)?.[1] ?? '?',
    );

    const figures = {
      seed,
      plan,
      passed: false,
      mails: {
        submitted: live.length + backlog.length,
        live: live.length,
        backlog: backlog.length,
        acknowledged: acked.length,
        acknowledgedByRetry: acked.filter((mail) => mail.ackStatus === 200).length,
        retriedSubmissions: [...live, ...backlog].filter((mail) => mail.tries > 1).length,
        notAcknowledged: [...live, ...backlog]
          .filter((mail) => mail.status !== 'acked')
          .map((mail) => ({ marker: mail.marker, status: mail.status, error: mail.lastError })),
        byShard: countBy(acked, (mail) => `shard ${shardOf(mail.id)}`),
        backlogByShard: countBy(
          backlog.filter((mail) => mail.status === 'acked'),
          (mail) => `shard ${shardOf(mail.id)}`,
        ),
        delivered: acked.length - missing.length,
        missing: missing.length,
      },
      kills: kills.map((k) => ({
        ...k,
        at: rel(k.at),
        upAt: rel(k.upAt),
        atTime: new Date(k.at).toISOString(),
      })),
      duplicates: {
        mails: duplicates.length,
        extraDeliveries: duplicates.reduce((sum, d) => sum + d.count - 1, 0),
        unexplained: duplicates.filter((d) => !d.explained).length,
        list: duplicates,
      },
      smtp: {
        deliveries: deliveries.length,
        connections: recorder.connections,
        unknownMessages: unknown.length,
      },
      timeline: {
        smarthostDownAt: rel(smarthostDownAt),
        backlogSettled: settled,
        backlogUnsettledAtFlush: unsettled,
        settleMs,
        smarthostUpAt: rel(smarthostUpAt),
        flush: { ...flush, at: rel(flush.at) },
        lastKillAt: rel(lastKill.at),
        lastRestartAt: rel(lastKill.upAt),
        lastDeliveryAt: lastDelivery ? rel(lastDelivery.at) : null,
        msFromLastKillToLastDelivery: lastDelivery ? lastDelivery.at - lastKill.at : null,
        msFromLastKillToLastAcknowledgedMailsFirstDelivery: lastAcked
          ? lastAcked - lastKill.at
          : null,
        windowEndAt: rel(windowEnd),
        totalMs: Date.now() - testStart,
      },
      relayLog: {
        file: 'test-results/fault-relay.log',
        runs: worker.runs,
        noTenantWarningsByRun: noTenantByRun,
      },
      stranded,
    };
    figures.passed =
      missing.length === 0 &&
      figures.duplicates.unexplained === 0 &&
      unknown.length === 0 &&
      flush.status === 200 &&
      kills.length >= 3;
    writeFileSync(join(resultsDir, 'fault.json'), `${JSON.stringify(figures, null, 2)}\n`);
    console.log(
      [
        `fault test: seed ${seed}; ${figures.mails.submitted} mails submitted, ${acked.length} acknowledged ` +
          `(${figures.mails.acknowledgedByRetry} on a retry after a kill), ` +
          `${acked.length - missing.length} delivered, ${missing.length} missing`,
        `  kills: ${kills.length}: ${kills
          .map(
            (k) =>
              `#${k.n} ${k.phase} at +${rel(k.at)} ms (${k.submissionsInFlight} submissions in flight, ` +
              `${k.smtpInTransaction} SMTP transactions open, ${k.recentDeliveries} 250s in the last second; ${k.trigger})`,
          )
          .join('; ')}`,
        `  duplicates: ${duplicates.length} mails, ${figures.duplicates.extraDeliveries} extra deliveries ` +
          `(${figures.duplicates.unexplained} not explained by a kill within ${DUPLICATE_WINDOW_MS} ms)` +
          duplicates.map((d) => `; ${d.marker} ×${d.count} ${JSON.stringify(d.causes)}`).join(''),
        `  backlog: settled ${settled} after ${settleMs} ms (${unsettled} unsettled), flush ${flush.status} ${flush.body}`,
        `  last kill → last delivery: ${
          lastDelivery && lastDelivery.at > lastKill.at
            ? `${lastDelivery.at - lastKill.at} ms`
            : `none (no 250 after the last kill; the last came ${lastDelivery ? lastKill.at - lastDelivery.at : '∞'} ms before it)`
        } (deadline ${DELIVERY_DEADLINE_MS} ms, no operator action after the last kill)`,
        ...(stranded
          ? [
              `  stranded: ${JSON.stringify({ ...stranded, mails: undefined, stats: undefined })}`,
              `  queue after the window: ${JSON.stringify(stranded.stats)}`,
            ]
          : []),
        `  figures: test-results/fault.json; runtime log: test-results/fault-relay.log`,
      ].join('\n'),
    );

    expect(kills.length).toBeGreaterThanOrEqual(3);
    expect(kills.some((k) => k.submissionsInFlight > 0)).toBe(true);
    expect(acked.length).toBeGreaterThanOrEqual(0.95 * (live.length + backlog.length));
    expect(flush.status).toBe(200);
    expect.soft(unknown.map((d) => d.marker)).toEqual([]);
    expect
      .soft(duplicates.filter((d) => !d.explained).map((d) => `${d.marker} ${d.times.join(' ')}`))
      .toEqual([]);
    expect(missing.map((mail) => `${mail.marker} (shard ${shardOf(mail.id)})`)).toEqual([]);
    expect(lastAcked - lastKill.at).toBeLessThanOrEqual(DELIVERY_DEADLINE_MS);
  });
});

/** The error for a phase whose kill never came because too few mails were acknowledged. */
function notAcknowledged(mails: readonly Mail[], wanted: number): Error {
  const errors = [...new Set(mails.flatMap((mail) => (mail.lastError ? [mail.lastError] : [])))];
  return new Error(
    `only ${mails.filter((mail) => mail.status === 'acked').length} of ${mails.length} ${mails[0]?.phase} ` +
      `mails acknowledged (kill planned at ${wanted}); errors: ${errors.slice(0, 3).join(' | ')}`,
  );
}

async function adminJson(worker: WranglerDev, path: string): Promise<unknown> {
  const response = await fetch(`${worker.url}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}
