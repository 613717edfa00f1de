// Removes the previous run's vitest JSON reports so that test-summary.mjs counts only this run.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageDirs } from './workspace-dirs.mjs';

for (const dir of packageDirs())
  rmSync(join(dir, 'test-results'), { recursive: true, force: true });
