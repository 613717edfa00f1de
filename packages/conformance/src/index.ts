/**
 * @mailspool/conformance: the shared test suite every mailspool engine runs. Call
 * `runConformance({ name, createEngine })` from a vitest test file.
 */
export { conformanceCases } from './cases/index.js';
export type {
  ConformanceCase,
  ConformanceOptions,
  EngineContext,
  StorageFootprint,
  StoreSnapshot,
} from './harness.js';
export { expectCode, expectTypeError, Harness, sampleMeta, snapshot } from './harness.js';
export type { ModelMessage, Op } from './model.js';
export { opArbitrary, QueueModel } from './model.js';
export { conformanceCaseNames, runConformance, runConformanceCase } from './run.js';
