/**
 * The harness a conformance case runs in: a manual clock, the engine under test (built fresh for
 * each case by the caller's factory), sessions that are closed afterwards, and helpers to assert
 * error codes and "nothing changed".
 */
import {
  type Capabilities,
  type ErrorCode,
  isMailspoolError,
  ManualClock,
  type MessageId,
  type MessageMeta,
  type QueueStats,
  type StorageEngine,
  type StorageSession,
} from '@mailspool/core';

/** What the factory receives: build an engine on the store named `store`, reading time from `clock`. */
export interface EngineContext {
  /** The clock the engine must use for every time it reads. */
  readonly clock: ManualClock;
  /**
   * A name unique to this case. Two calls with the same name must reach the same store (that is
   * how persistence is tested); different names must be isolated from each other.
   */
  readonly store: string;
  /** When set, the engine must refuse contents larger than this with `TOO_LARGE`. */
  readonly maxMessageBytes?: number;
}

/** What an engine's store holds, as the `footprint` hook measures it (any units, compared whole). */
export interface StorageFootprint {
  /** Records, rows or entries of any kind (message rows, content chunks, index entries…). */
  readonly rows: number;
  /** Bytes of contents held. */
  readonly bytes: number;
}

/**
 * Options of `runConformance`, generic over the engine type the factory builds, so the hooks
 * receive that type without a cast.
 */
export interface ConformanceOptions<E extends StorageEngine = StorageEngine> {
  /** Shown as the describe block's name. */
  readonly name: string;
  /** Builds an engine for the context (fresh store per case; same `store` name → same store). */
  createEngine(context: EngineContext): E | Promise<E>;
  /** Called after a case with every engine it created (close connections, delete databases...). */
  disposeEngine?(engine: E, context: EngineContext): void | Promise<void>;
  /**
   * Optional hook for the atomicity cases: from now on, the `write`-th write (counting from 1)
   * the engine makes to its storage fails, once, as a failing disk or database would (the engine
   * then rolls back as it would for any storage error). `undefined` disarms a fault that did not
   * fire. Without it those cases are skipped, by name, with the reason.
   */
  injectFault?(engine: E, write: number | undefined, context: EngineContext): void | Promise<void>;
  /**
   * Optional hook for the footprint cases: what the engine's store holds now (rows and content
   * bytes, counted below the contract, e.g. from the database itself), so the suite can see a
   * delete that leaves contents behind.
   */
  footprint?(engine: E, context: EngineContext): StorageFootprint | Promise<StorageFootprint>;
  /**
   * Optional hook for the restart cases: a new engine on the same store after the runtime was
   * restarted (connections closed, caches and in-memory state dropped). The suite disposes the
   * engine it returns like any other.
   */
  restart?(engine: E, context: EngineContext): E | Promise<E>;
  /** Cases to skip, by name, each with its reason. */
  readonly skip?: Readonly<Record<string, string>>;
  /** Runs of the model-based test (fast-check `numRuns`); default 25. */
  readonly modelRuns?: number;
  /** Seed of the model-based test's generator (fast-check `seed`), to replay a failure; random by default. */
  readonly modelSeed?: number;
  /** Operations per model run at most; default 40. */
  readonly modelSteps?: number;
  /** How many sessions race in the race cases; default 12. */
  readonly raceSessions?: number;
  /** Per-case timeout in ms (vitest's); default 30 000. */
  readonly timeout?: number;
}

/** One test of the suite. */
export interface ConformanceCase {
  readonly name: string;
  /** A reason to skip for an engine with these capabilities and options, or `undefined` to run. */
  skipUnless?(supports: Capabilities, options: ConformanceOptions): string | undefined;
  run(harness: Harness): Promise<void>;
}

let storeCounter = 0;

/** The fixture each case receives. */
export class Harness {
  readonly clock = new ManualClock();
  readonly options: ConformanceOptions;
  readonly store: string;
  readonly #engines: { engine: StorageEngine; context: EngineContext }[] = [];
  readonly #sessions: StorageSession[] = [];
  #engine: StorageEngine | undefined;

  constructor(options: ConformanceOptions, caseName: string) {
    this.options = options;
    const slug = caseName.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40);
    this.store = `c${Date.now().toString(36)}${(storeCounter++).toString(36)}${Math.random().toString(36).slice(2, 8)}-${slug}`;
  }

  /** The engine under test (created on first use). */
  async engine(): Promise<StorageEngine> {
    this.#engine ??= await this.createEngine();
    return this.#engine;
  }

  /** A new engine instance; on the same store unless `store` names another. */
  async createEngine(
    overrides: { store?: string; maxMessageBytes?: number } = {},
  ): Promise<StorageEngine> {
    const context: EngineContext = {
      clock: this.clock,
      store: overrides.store ?? this.store,
      ...(overrides.maxMessageBytes === undefined
        ? {}
        : { maxMessageBytes: overrides.maxMessageBytes }),
    };
    const engine = await this.options.createEngine(context);
    this.#engines.push({ engine, context });
    return engine;
  }

  /** A new session on the engine under test (or on `engine`); closed after the case. */
  async session(engine?: StorageEngine): Promise<StorageSession> {
    const session = await (engine ?? (await this.engine())).connect();
    this.#sessions.push(session);
    return session;
  }

  /** The context the engine under test was built with. */
  async context(): Promise<EngineContext> {
    const engine = await this.engine();
    return this.#engines.find((entry) => entry.engine === engine)!.context;
  }

  /** Arms (or with `undefined` disarms) the engine's `injectFault` hook; see the option. */
  async injectFault(write: number | undefined): Promise<void> {
    const hook = this.options.injectFault;
    if (!hook) throw new Error('the harness gives no injectFault hook');
    await hook(await this.engine(), write, await this.context());
  }

  /** The engine's `footprint` hook; see the option. */
  async footprint(): Promise<StorageFootprint> {
    const hook = this.options.footprint;
    if (!hook) throw new Error('the harness gives no footprint hook');
    return hook(await this.engine(), await this.context());
  }

  /**
   * Restarts the engine under test through the `restart` hook: its sessions are closed first,
   * and from then on `engine()` and `session()` use the restarted engine.
   */
  async restart(): Promise<StorageEngine> {
    const hook = this.options.restart;
    if (!hook) throw new Error('the harness gives no restart hook');
    const engine = await this.engine();
    const context = await this.context();
    for (const session of this.#sessions.splice(0)) await session.close().catch(() => {});
    const restarted = await hook(engine, context);
    this.#engines.push({ engine: restarted, context });
    this.#engine = restarted;
    return restarted;
  }

  /** Closes sessions and disposes engines; called by the runner. */
  async dispose(): Promise<void> {
    for (const session of this.#sessions.splice(0)) await session.close().catch(() => {});
    for (const { engine, context } of this.#engines.splice(0)) {
      await this.options.disposeEngine?.(engine, context);
    }
  }
}

/** Fails unless `promise` rejects with a mailspool error of `code`. */
export async function expectCode(
  promise: Promise<unknown>,
  code: ErrorCode,
  what = 'the call',
): Promise<void> {
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    if (isMailspoolError(error, code)) return;
    const got = isMailspoolError(error) ? error.code : String(error);
    throw new Error(`${what} should reject with ${code}, but rejected with ${got}`, {
      cause: error,
    });
  }
  throw new Error(`${what} should reject with ${code}, but resolved with ${safeString(result)}`);
}

/** Fails unless `promise` rejects with a TypeError. */
export async function expectTypeError(promise: Promise<unknown>, what = 'the call'): Promise<void> {
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    // A TypeError may cross an RPC or realm boundary: judge by name, not by class.
    if (error instanceof TypeError || (error as { name?: unknown })?.name === 'TypeError') return;
    throw new Error(`${what} should reject with a TypeError, but rejected with ${String(error)}`, {
      cause: error,
    });
  }
  throw new Error(
    `${what} should reject with a TypeError, but resolved with ${safeString(result)}`,
  );
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Everything observable through a session, for "nothing changed" assertions. */
export interface StoreSnapshot {
  readonly stats: QueueStats;
  readonly active: MessageId[];
  readonly deferred: MessageId[];
  readonly messages: Record<MessageId, { meta: MessageMeta; contents: number[] | null }>;
}

/** Reads everything observable (ids, meta, contents, lists, stats) in a comparable form. */
export async function snapshot(session: StorageSession): Promise<StoreSnapshot> {
  const ids = (await session.getAllMessages()).sort();
  const messages: StoreSnapshot['messages'] = {};
  for (const id of ids) {
    const meta = await session.getMessageMeta(id);
    let contents: number[] | null = null;
    try {
      contents = Array.from(await session.getMessageContents(id));
    } catch (error) {
      if (!isMailspoolError(error, 'NOT_FOUND')) throw error;
    }
    messages[id] = { meta: sortKeys(meta), contents };
  }
  return {
    stats: await session.stats(),
    active: (await session.getActiveMessages()).sort(),
    deferred: (await session.getDeferredMessages()).sort(),
    messages,
  };
}

function sortKeys(meta: MessageMeta): MessageMeta {
  return Object.fromEntries(Object.entries(meta).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Bytes of a string as UTF-8. */
export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A typical envelope meta table (what a relayer stores). */
export function sampleMeta(n = 0): MessageMeta {
  return {
    sender: `sender${n}@example.com`,
    recipients: [`a${n}@example.org`, `b${n}@example.net`],
    attempts: 0,
    timestamp: 1_700_000_000_000 + n,
    urgent: n % 2 === 0,
    note: null,
  };
}
