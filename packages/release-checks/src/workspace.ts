/**
 * The public packages of the workspace and their tarballs, as `pnpm pack` makes them (the same
 * code path as `pnpm publish`: the workspace's `.pnpmfile.cjs` hook runs and `workspace:` ranges
 * become real versions).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../../..');

/** The development-only export condition (TypeScript sources); never in a tarball. */
export const SOURCE_CONDITION = '@mailspool/source';

export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  repository?: { type: string; url: string; directory?: string };
  engines?: Record<string, string>;
  sideEffects?: boolean | string[];
  files?: string[];
  exports?: unknown;
  main?: string;
  types?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface WorkspacePackage {
  readonly dir: string;
  readonly manifest: Manifest;
}

export function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** `packages/*` whose package.json is not `private`: what a release publishes. */
export function publicPackages(): WorkspacePackage[] {
  const packagesDir = join(ROOT, 'packages');
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(packagesDir, entry.name))
    .map((dir) => ({ dir, manifest: readManifest(dir) }))
    .filter(({ manifest }) => manifest.private !== true)
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

/** Runs `pnpm pack` in `dir`; returns the tarball's absolute path. */
export function pack(dir: string, destination: string): string {
  const output = execFileSync('pnpm', ['pack', '--json', '--pack-destination', destination], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  // pnpm may print install notices before the JSON object.
  const json = output.slice(output.indexOf('{'));
  return (JSON.parse(json) as { filename: string }).filename;
}

/** Paths inside a tarball, without the leading `package/`. */
export function tarballFiles(tarball: string): string[] {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.replace(/^package\//, ''));
}

export function tarballText(tarball: string, path: string): string {
  return execFileSync('tar', ['-xOzf', tarball, `package/${path}`], { encoding: 'utf8' });
}

export function tarballManifest(tarball: string): Manifest {
  return JSON.parse(tarballText(tarball, 'package.json')) as Manifest;
}

/** Every condition name and target path in an `exports` value (nested conditions included). */
export function exportTargets(exports: unknown): { conditions: string[]; targets: string[] } {
  const conditions: string[] = [];
  const targets: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (!key.startsWith('.')) conditions.push(key);
        walk(inner);
      }
    }
  };
  walk(exports);
  return { conditions, targets };
}

/** The subpaths a package exports (`.`, `./cloudflare`, …), `./package.json` left out. */
export function exportedSubpaths(manifest: Manifest): string[] {
  const { exports } = manifest;
  if (typeof exports !== 'object' || exports === null || Array.isArray(exports)) return ['.'];
  const keys = Object.keys(exports);
  if (!keys.every((key) => key.startsWith('.'))) return ['.'];
  return keys.filter((key) => key !== './package.json' && !key.includes('*'));
}

/** `@mailspool/relay` + `./cloudflare` → `@mailspool/relay/cloudflare`. */
export function specifier(name: string, subpath: string): string {
  return subpath === '.' ? name : `${name}/${subpath.slice(2)}`;
}

/** The export conditions of one subpath at the top level (`types`, `workerd`, `default`, …). */
export function subpathConditions(manifest: Manifest, subpath: string): string[] {
  const { exports } = manifest;
  if (typeof exports !== 'object' || exports === null) return [];
  const entry = (exports as Record<string, unknown>)[subpath];
  if (typeof entry !== 'object' || entry === null) return [];
  return Object.keys(entry);
}
