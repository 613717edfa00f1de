// Removes the previous run's vitest JSON reports so that test-summary.mjs counts only this run.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
for (const group of ['packages', 'apps']) {
  let names = [];
  try {
    names = readdirSync(join(root, group));
  } catch {
    continue;
  }
  for (const name of names)
    rmSync(join(root, group, name, 'test-results'), { recursive: true, force: true });
}
