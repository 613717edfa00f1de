/** Registers the conformance cases with vitest, and runs single cases programmatically (for the suite's own tests). */
import type { Capabilities, StorageEngine } from '@mailspool/core';
import { describe, it } from 'vitest';
import { conformanceCases } from './cases/index.js';
import { type ConformanceCase, type ConformanceOptions, Harness } from './harness.js';

/**
 * Declares one vitest test per conformance case inside `describe(options.name)`.
 * Cases the engine's capabilities rule out, or that `options.skip` names, are registered as
 * skipped with their reason in the test name, so a report shows what was not proven and why.
 *
 * The capability manifest is read from a first engine built with the factory, before any test
 * runs (vitest collects tests synchronously, so that engine is built in the describe callback's
 * returned promise).
 */
export function runConformance<E extends StorageEngine>(typed: ConformanceOptions<E>): void {
  const options = typed as unknown as ConformanceOptions;
  const unknown = Object.keys(options.skip ?? {}).filter(
    (name) => !conformanceCases.some((c) => c.name === name),
  );
  if (unknown.length > 0) throw new TypeError(`skip names unknown cases: ${unknown.join('; ')}`);

  describe(`conformance: ${options.name}`, async () => {
    const supports = await probeCapabilities(options);
    for (const testCase of conformanceCases) {
      const reason = skipReason(testCase, supports, options);
      if (reason !== undefined) {
        it.skip(`${testCase.name} [skipped: ${reason}]`, () => {});
        continue;
      }
      it(testCase.name, { timeout: options.timeout ?? 30_000 }, () => runCase(testCase, options));
    }
  });
}

/** The names of every case, for `skip` maps and reports. */
export const conformanceCaseNames: readonly string[] = conformanceCases.map((c) => c.name);

/**
 * Runs the case named `name` against the options' engine; resolves when the engine passes it and
 * rejects with the failure otherwise. Used to prove that the suite catches broken engines.
 */
export async function runConformanceCase<E extends StorageEngine>(
  name: string,
  typed: ConformanceOptions<E>,
): Promise<void> {
  const options = typed as unknown as ConformanceOptions;
  const testCase = conformanceCases.find((c) => c.name === name);
  if (!testCase) throw new TypeError(`no conformance case named ${JSON.stringify(name)}`);
  await runCase(testCase, options);
}

async function runCase(testCase: ConformanceCase, options: ConformanceOptions): Promise<void> {
  const harness = new Harness(options, testCase.name);
  try {
    await testCase.run(harness);
  } finally {
    await harness.dispose();
  }
}

function skipReason(
  testCase: ConformanceCase,
  supports: Capabilities,
  options: ConformanceOptions,
): string | undefined {
  return options.skip?.[testCase.name] ?? testCase.skipUnless?.(supports, options);
}

async function probeCapabilities(options: ConformanceOptions): Promise<Capabilities> {
  const probe = new Harness(options, 'capabilities');
  try {
    return (await probe.engine()).supports;
  } finally {
    await probe.dispose();
  }
}
