/** Every conformance case, in the order they run. */
import type { ConformanceCase } from '../harness.js';
import { attemptCases } from './attempt.cases.js';
import { basicCases } from './basics.cases.js';
import { capabilityCases } from './capabilities.cases.js';
import { claimCases } from './claim.cases.js';
import { concurrencyCases } from './concurrency.cases.js';
import { errorCases } from './errors.cases.js';
import { leaseCases } from './leases.cases.js';
import { modelCases } from './model.cases.js';
import { storageCases } from './storage.cases.js';

export const conformanceCases: readonly ConformanceCase[] = [
  ...basicCases,
  ...errorCases,
  ...leaseCases,
  ...claimCases,
  ...attemptCases,
  ...concurrencyCases,
  ...capabilityCases,
  ...storageCases,
  ...modelCases,
];
