/**
 * `pnpm demo` behaves like a program: SIGINT or SIGTERM to the `pnpm demo` process stops every
 * process it started and frees every port, and it exits with status 0 and no error output. The
 * demo runs as a user runs it (the root `pnpm demo` script), on free ports and a scratch state
 * directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@mailspool/test-support/net';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
let running: ChildProcess | undefined;
/** The processes the running demo had started (taken before signalling it). */
let spawned: number[] = [];
let scratch: string | undefined;

/** Every process below `pid`, from /proc (children of each of its threads). */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const walk = (parent: number): void => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter(Boolean).map(Number)) {
        if (!found.includes(child)) {
          found.push(child);
          walk(child);
        }
      }
    }
  };
  walk(pid);
  return found;
}

/**
 * True while `pid` runs. A zombie has stopped: it runs nothing and holds no port. (Processes
 * whose parent exited first are reparented to PID 1, which in a container may never reap them.)
 */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Every live process whose environment holds `entry` (`NAME=value`): children inherit the
 * environment, so this finds what the demo started even after their parents exited (a workerd
 * reparented to PID 1 is no descendant of the demo any more).
 */
function withEnvironment(entry: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry) && alive(pid))
        found.push(pid);
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

afterEach(() => {
  // Only if a test failed midway: stop whatever of the demo still runs, then remove its files.
  const pids = running?.pid ? [...spawned, ...descendants(running.pid), running.pid] : spawned;
  if (scratch) pids.push(...withEnvironment(`DEMO_STATE_DIR=${scratch}`));
  for (const pid of new Set(pids)) {
    if (!alive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running = undefined;
  spawned = [];
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

describe('pnpm demo and signals', () => {
  const cases = [
    { signal: 'SIGTERM', when: 'running' },
    { signal: 'SIGINT', when: 'running' },
    { signal: 'SIGINT', when: 'starting' },
  ] as const;
  for (const { signal, when } of cases) {
    it(`${signal} to the pnpm demo process while it is ${when} stops everything, frees every port and exits 0 quietly`, async () => {
      const ports = {
        DEMO_SMTP_PORT: await freePort(),
        DEMO_SINK_PORT: await freePort(),
        DEMO_RELAY_PORT: await freePort(),
        DEMO_PAGE_PORT: await freePort(),
      };
      scratch = mkdtempSync(join(tmpdir(), 'mailspool-demo-signals-'));
      const env: NodeJS.ProcessEnv = { ...process.env, DEMO_STATE_DIR: scratch };
      for (const [name, port] of Object.entries(ports)) env[name] = String(port);
      const child = spawn('pnpm', ['demo'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      running = child;
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
        (resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })),
      );
      // Up: the banner is printed once every part listens. Starting: the first line is printed
      // before anything is started.
      const ready = when === 'running' ? 'Press Ctrl-C to stop.' : 'mailspool demo: building';
      const deadline = Date.now() + 120_000;
      while (!stdout.includes(ready)) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`the demo did not start:\n${stdout}\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (when === 'running') {
        for (const port of Object.values(ports))
          expect(await listening(port), `port ${port}`).toBe(true);
      }
      const started = descendants(child.pid!);
      spawned = started;
      if (when === 'running') expect(started.length).toBeGreaterThan(2); // node, wrangler, workerd…
      if (when === 'running') {
        // The environment probe used after the exit sees the demo's workerd while it runs.
        const commands = withEnvironment(`DEMO_STATE_DIR=${scratch}`).map((pid) =>
          readFileSync(`/proc/${pid}/cmdline`, 'utf8'),
        );
        expect(commands.some((command) => command.includes('workerd'))).toBe(true);
      }

      child.kill(signal);
      const result = await Promise.race([
        exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`no exit 30 s after ${signal}`)), 30_000),
        ),
      ]);

      expect(result).toEqual({ code: 0, signal: null });
      // pnpm echoes the script's command line (`$ cd apps/demo && …`) on stderr; nothing else.
      expect(stderr.replace(/^\$ cd apps\/demo && .*\n/, '')).toBe('');
      expect(stdout).not.toMatch(/ELIFECYCLE|ERR_PNPM|Error/);
      expect(stdout).toContain('mailspool demo: stopping');
      expect(started.filter(alive)).toEqual([]);
      // Also what started after the look above, or left its parent: wrangler's workerd, say.
      expect(withEnvironment(`DEMO_STATE_DIR=${scratch}`)).toEqual([]);
      if (when === 'starting') expect(stdout).not.toContain('Press Ctrl-C to stop.');
      // Free ports also show that what started after the signal (a start in progress finishes,
      // then stops) is gone.
      for (const port of Object.values(ports))
        expect(await listening(port), `port ${port}`).toBe(false);
    });
  }
});
