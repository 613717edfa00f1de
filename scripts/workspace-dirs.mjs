// The workspace's package directories (as pnpm-workspace.yaml lists them), for the test scripts.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/** Absolute paths of packages/*, apps/* and bench. */
export function packageDirs() {
  const dirs = [];
  for (const group of ['packages', 'apps']) {
    let names = [];
    try {
      names = readdirSync(join(root, group));
    } catch {
      continue;
    }
    for (const name of names) {
      const dir = join(root, group, name);
      if (statSync(dir).isDirectory()) dirs.push(dir);
    }
  }
  dirs.push(join(root, 'bench'));
  return dirs;
}
