/** The options every engine accepts, checked once for all of them. */
import type { Clock } from './clock.js';
import { describe } from './ids.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './session.js';
import type { EngineOptions } from './types.js';

/** {@link EngineOptions} checked, with defaults filled in. */
export interface ResolvedEngineOptions {
  /** `undefined`: the wall clock (BaseSession's default). */
  readonly clock: Clock | undefined;
  readonly maxMessageBytes: number;
}

/**
 * Checks an engine's `clock` and `maxMessageBytes` options (`TypeError` naming the option) and
 * fills in the default limit, so every engine refuses the same bad options the same way.
 */
export function resolveEngineOptions(options: EngineOptions = {}): ResolvedEngineOptions {
  const { clock, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES } = options;
  if (clock !== undefined && typeof (clock as { now?: unknown })?.now !== 'function') {
    throw new TypeError(`clock must have a now() method, got ${describe(clock)}`);
  }
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 0) {
    throw new TypeError(
      `maxMessageBytes must be an integer >= 0, got ${describe(maxMessageBytes)}`,
    );
  }
  return { clock, maxMessageBytes };
}
