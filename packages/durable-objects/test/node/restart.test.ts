/**
 * Restart: the test Worker runs under miniflare's Node API with storage persisted to a directory;
 * the runtime is disposed and started again on the same directory. Every message, its state and
 * its fencing token survive; tokens keep increasing; and a shard whose alarm came due while it
 * was down calls its hook once it starts again. The second start runs the hooked shards' clock
 * two hours ahead (SKEW_MS) to stand for the time that passed, instead of sleeping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const HOUR = 3_600_000;
const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = join(root, '.wrangler', 'e2e', 'worker.js');
let persist: string;

beforeAll(async () => {
  // The Worker imports workspace packages as TypeScript (the `@mailspool/source` condition): bundle it.
  await build({
    entryPoints: [join(root, 'test', 'worker.ts')],
    outfile: bundle,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['@mailspool/source', 'workerd', 'worker', 'import', 'module'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*'],
    logLevel: 'error',
  });
  persist = mkdtempSync(join(tmpdir(), 'mailspool-do-restart-'));
});

afterAll(() => {
  if (persist) rmSync(persist, { recursive: true, force: true });
});

function start(skewMs: number): Miniflare {
  // miniflare 5 takes a new option shape; convertV4MiniflareOptions accepts the familiar one.
  return new Miniflare(
    convertV4MiniflareOptions({
      cf: false,
      resourcePersistencePath: persist,
      modules: true,
      scriptPath: bundle,
      compatibilityDate: '2026-04-01',
      durableObjects: {
        QUEUE: { className: 'QueueShard', useSQLite: true },
        HOOKED: { className: 'HookedShard', useSQLite: true },
      },
      bindings: { SKEW_MS: String(skewMs) },
    }),
  );
}

interface Call {
  namespace?: 'QUEUE' | 'HOOKED';
  name?: string;
  shards?: number;
  now: number;
  op: string;
  args?: unknown[];
}

async function call<T>(mf: Miniflare, command: Call): Promise<T> {
  const response = await mf.dispatchFetch('http://localhost/', {
    method: 'POST',
    body: JSON.stringify({ namespace: 'QUEUE', name: 'restart', shards: 3, ...command }),
  });
  const body = (await response.json()) as { ok?: T; error?: { code?: string; message?: string } };
  if (body.error) throw new Error(`${command.op}: ${body.error.code} ${body.error.message}`);
  return body.ok as T;
}

async function get<T>(mf: Miniflare, path: string): Promise<T> {
  return (await (await mf.dispatchFetch(`http://localhost${path}`)).json()) as T;
}

interface Lease {
  id: string;
  token: number;
  expiresAt: number;
}

describe('restart with persisted storage (miniflare)', () => {
  it('messages, state, leases and tokens survive; an alarm due meanwhile fires after the start', async () => {
    const t0 = Date.now();
    let mf = start(0);
    let before: unknown;
    let lease: Lease;
    let lastToken = 0;
    let hooked: string;
    let ids: string[];
    try {
      const meta = (n: number) => ({ sender: `s${n}@example.com`, recipients: ['a@b.c'], n });
      ids = await call<string[]>(mf, {
        now: t0,
        op: 'storeMessages',
        args: [
          [
            { meta: meta(1), contents: 'one' },
            { meta: meta(2), contents: 'two', retryAt: t0 + 60_000 },
            { meta: meta(3), contents: 'three' },
          ],
        ],
      });
      await call(mf, { now: t0, op: 'claimMessageId' });
      for (let i = 0; i < 3; i++) {
        const l = await call<Lease>(mf, { now: t0, op: 'acquireLease', args: [ids[0], 1000] });
        expect(l.token).toBeGreaterThan(lastToken);
        lastToken = l.token;
        await call(mf, { now: t0, op: 'releaseLease', args: [l] });
      }
      lease = await call<Lease>(mf, { now: t0, op: 'acquireLease', args: [ids[2], HOUR] });
      before = await call(mf, { now: t0, op: 'snapshot' });
      expect(before).toMatchObject({
        stats: { total: 4, active: 1, deferred: 1, due: 1 },
        active: [ids[2]],
        deferred: [ids[1]],
      });

      // A hooked shard with mail due in an hour: its alarm is set for then.
      hooked = await call<string>(mf, {
        namespace: 'HOOKED',
        name: 'relay',
        shards: 1,
        now: t0,
        op: 'storeMessage',
        args: [{ meta: {}, contents: 'later', retryAt: t0 + HOUR }],
      });
      expect(await get(mf, '/alarm?name=relay:0')).toBe(t0 + HOUR);
      expect(await get(mf, '/hook-calls?name=relay:0')).toEqual([]);
    } finally {
      await mf.dispose();
    }

    mf = start(2 * HOUR);
    try {
      expect(await call(mf, { now: t0, op: 'snapshot' })).toEqual(before);
      // The lease is still current (same token, still locked): a fenced write goes through.
      await call(mf, {
        now: t0,
        op: 'setMessageMetaKey',
        args: [lease.id, 'attempts', 1, { lease }],
      });
      expect(
        await call(mf, { now: t0, op: 'getMessageMetaKey', args: [lease.id, 'attempts'] }),
      ).toBe(1);
      // Tokens continue from where they were.
      const next = await call<Lease>(mf, { now: t0, op: 'acquireLease', args: [ids[0], 1000] });
      expect(next.token).toBe(lastToken + 1);

      // Reading the hook log starts the shard; it finds its mail overdue and fires at once.
      await vi.waitFor(
        async () =>
          expect(await get(mf, '/hook-calls?name=relay:0')).toMatchObject([
            { attempt: 1, due: 1, ids: [hooked], failed: false },
          ]),
        { timeout: 15_000, interval: 100 },
      );
    } finally {
      await mf.dispose();
    }
  }, 120_000);
});
