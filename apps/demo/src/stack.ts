/**
 * The demo stack, for `pnpm demo` and the end-to-end tests: a local SMTP server that shows what
 * it receives (smtp-sink), the relay Worker under `wrangler dev` with its local storage, and the
 * webmail outbox page served with a `config.json` that points at the Worker. No account needed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Sink, startSink } from '@mailspool/smtp-sink';
import { freePort } from '@mailspool/test-support/net';
import { buildPage, type PageServer, servePage } from '@mailspool/webmail-outbox/serve';

/** Demo credentials: fixed, local-only values, printed for the user (never use them deployed). */
export const DEMO_TENANT = 'demo';
export const DEMO_TENANT_TOKEN = 'demo-tenant-token-0123456789';
export const DEMO_ADMIN_TOKEN = 'demo-admin-token-0123456789';

const workerDir = fileURLToPath(new URL('../../relay-worker/', import.meta.url));

export interface StackOptions {
  /** 0 picks free ports (tests); the CLI uses fixed, memorable ones. */
  readonly smtpPort?: number;
  readonly sinkHttpPort?: number;
  readonly relayPort?: number;
  readonly pagePort?: number;
  /** Where `wrangler dev` keeps the queue (default: a temp dir, removed on stop). */
  readonly persistTo?: string;
  /** Lines from wrangler and the sink; default: dropped. */
  readonly log?: (line: string) => void;
}

export interface Stack {
  readonly sink: Sink;
  readonly page: PageServer;
  readonly relayUrl: string;
  readonly pageUrl: string;
  readonly sinkUrl: string;
  /** Stops the relay Worker only (to test a relay outage). */
  stopRelay(): Promise<void>;
  /** Starts the relay Worker again on the same port and storage. */
  startRelay(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts everything; resolves when every part answers. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const log = options.log ?? (() => {});
  const ownPersist = options.persistTo === undefined;
  const persistTo = resolve(options.persistTo ?? mkdtempSync(join(tmpdir(), 'mailspool-demo-')));
  mkdirSync(persistTo, { recursive: true });
  const sink = await startSink({
    smtpPort: options.smtpPort ?? 0,
    httpPort: options.sinkHttpPort ?? 0,
    log,
  });
  const relayPort = options.relayPort || (await freePort());
  // The page's origin must be known before the Worker starts (ALLOWED_ORIGINS), so the page
  // server starts first with a config that points at the Worker's fixed port.
  await buildPage();
  const relayUrl = `http://127.0.0.1:${relayPort}`;
  const page = await servePage({
    ...(options.pagePort ? { port: options.pagePort } : {}),
    config: () => ({ relayUrl, token: DEMO_TENANT_TOKEN, from: 'you@example.com' }),
  });
  const envFile = join(persistTo, 'demo.env');
  writeFileSync(
    envFile,
    `TENANT_TOKENS=${JSON.stringify({ [DEMO_TENANT]: DEMO_TENANT_TOKEN })}\nADMIN_TOKEN=${DEMO_ADMIN_TOKEN}\n` +
      // The demo's one tenant may send from any address (see TENANT_SENDERS in docs/relay-api.md).
      `TENANT_SENDERS=${JSON.stringify({ [DEMO_TENANT]: ['*'] })}\n` +
      // The local values that override wrangler.jsonc's production defaults (see .dev.vars.example).
      'SMARTHOST_HOST=127.0.0.1\nSMARTHOST_TLS=off\nHOSTNAME=relay.localhost\n',
  );

  let relay: ChildProcess | undefined;
  const startRelay = async () => {
    relay = spawn(
      'pnpm',
      [
        'exec',
        'wrangler',
        'dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(relayPort),
        '--persist-to',
        join(persistTo, 'state'),
        '--env-file',
        envFile,
        '--var',
        `SMARTHOST_PORT:${sink.smtpPort}`,
        '--var',
        `ALLOWED_ORIGINS:${page.origin}`,
        '--show-interactive-dev-session=false',
        '--log-level',
        'warn',
      ],
      {
        cwd: workerDir,
        // Its own process group, so stopping it stops workerd too (by this PID's group only).
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          WRANGLER_BUILD_CONDITIONS: '@mailspool/source,workerd,worker,browser',
          WRANGLER_SEND_METRICS: 'false',
          CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        },
      },
    );
    for (const stream of [relay.stdout, relay.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim()) log(`relay: ${line}`);
      });
    }
    await waitUntilUp(`${relayUrl}/`, relay);
  };
  const stopRelay = async () => {
    const child = relay;
    relay = undefined;
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    const group = -child.pid;
    try {
      process.kill(group, 'SIGTERM');
    } catch {
      return;
    }
    // The group is stopped when its last process is gone, not when pnpm (its leader) exits:
    // workerd, wrangler's child, may outlive both. Whatever still runs after 5 s is killed.
    const deadline = Date.now() + 5000;
    while (groupAlive(group) && Date.now() < deadline) await pause(100);
    if (groupAlive(group)) {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      while (groupAlive(group) && Date.now() < deadline + 5000) await pause(100);
    }
  };

  try {
    await startRelay();
  } catch (error) {
    await stopRelay();
    await page.close();
    await sink.close();
    throw error;
  }

  return {
    sink,
    page,
    relayUrl,
    pageUrl: `${page.origin}/`,
    sinkUrl: `http://127.0.0.1:${sink.httpPort}/`,
    stopRelay,
    startRelay,
    async stop() {
      await stopRelay();
      await page.close();
      await sink.close();
      if (ownPersist) rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

/** Whether any process of process group `-group` still exists (signal 0 only checks). */
function groupAlive(group: number): boolean {
  try {
    process.kill(group, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but is not ours to signal; it still runs.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `url` until it answers (bounded: 60 s), failing early if the process exits. */
async function waitUntilUp(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`wrangler dev did not answer at ${url} within 60 s`);
}
