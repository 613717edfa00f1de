// Packs every public package (packages/* whose package.json is not `private`) into ./tarballs,
// the way `pnpm publish` would upload it, for installing them before they are on the registry
// (see "Installing the packages" in the README). Run `pnpm build` first: `pnpm pack:tarballs`
// does both.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const destination = join(root, 'tarballs');
mkdirSync(destination, { recursive: true });
for (const name of readdirSync(join(root, 'packages')).sort()) {
  const dir = join(root, 'packages', name);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    continue;
  }
  if (manifest.private === true) continue;
  const output = execFileSync('pnpm', ['pack', '--json', '--pack-destination', destination], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  console.log(JSON.parse(output.slice(output.indexOf('{'))).filename);
}
