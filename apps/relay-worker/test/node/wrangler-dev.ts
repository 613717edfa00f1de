/**
 * `wrangler dev` as a child process for the fault test: started in its own process group
 * (detached), so that one `kill(-pgid, SIGKILL)` takes down wrangler, its esbuild service and
 * both workerd processes at once — a crash of the runtime, with no shutdown handlers run — and
 * restarted on the same port and persist directory.
 *
 * Only process groups this module started are ever signalled, by their id; a synchronous `exit`
 * hook kills any still alive, so no runtime outlives the test process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface WranglerDevOptions {
  /** The Worker's directory (wrangler runs there; its node_modules/.bin holds wrangler). */
  readonly workerDir: string;
  /** The wrangler configuration file. */
  readonly config: string;
  /** A pre-built bundle to run with `--no-bundle` (the same code on every restart), or none. */
  readonly script?: string;
  readonly port: number;
  readonly inspectorPort: number;
  readonly persistTo: string;
  /** A dotenv file with the secrets (`--env-file`: `.dev.vars` is then not read). */
  readonly envFile: string;
  /** Plain-text vars (`--var NAME:value`). */
  readonly vars: Readonly<Record<string, string>>;
  /** Every line wrangler and the Worker print is appended here, tagged with the run number. */
  readonly logFile: string;
  /**
   * TMPDIR for wrangler and workerd: a killed runtime never removes its temp files, so they go
   * where the test removes them.
   */
  readonly tmpDir: string;
}

/** The environment every wrangler child gets (no telemetry, no network look-ups, source builds). */
export const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_BUILD_CONDITIONS: '@mailspool/source,workerd,worker,browser',
} as const;

/** Process groups started here and not yet known to be gone. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pgid: number): boolean {
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class WranglerDev {
  readonly #options: WranglerDevOptions;
  #child: ChildProcess | undefined;
  #run = 0;
  #up = false;
  #disposed = false;
  #waiters: Array<() => void> = [];

  constructor(options: WranglerDevOptions) {
    this.#options = options;
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const pgid of liveGroups) killGroup(pgid);
      });
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.#options.port}`;
  }

  /** How many times the runtime was started. */
  get runs(): number {
    return this.#run;
  }

  /** Whether the runtime is up (started and not killed since). */
  get up(): boolean {
    return this.#up;
  }

  /** Resolves when the runtime is up (at once if it is); rejects after `timeoutMs`. */
  whenUp(timeoutMs: number): Promise<void> {
    if (this.#up) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        reject(new Error(`the relay was not up within ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(wake);
    });
  }

  /**
   * Starts `wrangler dev` and resolves when `GET /` answers 200 (bounded: 60 s). `GET /` is
   * answered by the Worker's router without touching any Durable Object, so it wakes no shard.
   */
  async start(): Promise<void> {
    if (this.#child) throw new Error('already started');
    if (this.#disposed) throw new Error('disposed: not starting again');
    const o = this.#options;
    const run = ++this.#run;
    mkdirSync(o.tmpDir, { recursive: true });
    const args = [
      'dev',
      ...(o.script ? [o.script, '--no-bundle'] : []),
      '--config',
      o.config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(o.port),
      '--inspector-port',
      String(o.inspectorPort),
      '--persist-to',
      o.persistTo,
      '--env-file',
      o.envFile,
      ...Object.entries(o.vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
      '--show-interactive-dev-session=false',
      // `log`: the Worker's own console output too (it goes to the log file, not the console).
      '--log-level',
      'log',
    ];
    const child = spawn(join(o.workerDir, 'node_modules/.bin/wrangler'), args, {
      cwd: o.workerDir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...WRANGLER_ENV, TMPDIR: o.tmpDir },
    });
    this.#child = child;
    if (child.pid !== undefined) liveGroups.add(child.pid);
    const started = Date.now();
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const stamp = new Date().toISOString();
        let text = '';
        for (const line of chunk.split('\n')) {
          if (!line.trim()) continue;
          text += `${stamp} run${run} ${line}\n`;
        }
        if (text) appendFileSync(o.logFile, text);
      });
    }
    child.once('exit', (code, signal) => {
      appendFileSync(
        o.logFile,
        `${new Date().toISOString()} run${run} (wrangler exited: ${code ?? signal})\n`,
      );
    });
    const deadline = started + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode}); see the log`);
      try {
        const response = await fetch(`${this.url}/`, { signal: AbortSignal.timeout(2000) });
        if (response.ok) {
          await response.arrayBuffer();
          this.#up = true;
          for (const wake of this.#waiters.splice(0)) wake();
          return;
        }
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`wrangler dev did not answer at ${this.url}/ within 60 s`);
  }

  /**
   * SIGKILLs the whole process group (wrangler and workerd: no graceful shutdown of anything)
   * and resolves when every process of the group is gone (bounded: 15 s). `up` turns false
   * before the signal is sent, so a request failing because of the kill already sees it.
   */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#up = false;
    this.#child = undefined;
    if (!child || child.pid === undefined) return;
    const pgid = child.pid;
    const exited =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(pgid);
    const deadline = Date.now() + 15_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
    clearTimeout(timer);
    while (groupAlive(pgid) && Date.now() < deadline) {
      killGroup(pgid);
      await sleep(50);
    }
    if (groupAlive(pgid)) throw new Error(`process group ${pgid} survived SIGKILL for 15 s`);
    liveGroups.delete(pgid);
  }

  /** Kills the runtime if it runs and refuses to start it again (for afterAll); never throws. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    try {
      await this.kill();
    } catch {
      // reported by the exit hook's last attempt
    }
  }
}
