/**
 * What a release would publish: every public package packs and passes `pnpm publish --dry-run`,
 * and its tarball's package.json is one a consumer can install (real version ranges, no
 * development condition, metadata present, every exported file shipped).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exportTargets,
  type Manifest,
  pack,
  publicPackages,
  ROOT,
  readManifest,
  SOURCE_CONDITION,
  tarballFiles,
  tarballManifest,
  tarballText,
} from '../src/workspace.js';

const packages = publicPackages();
const versions = new Map(packages.map(({ manifest }) => [manifest.name, manifest.version]));
const destination = mkdtempSync(join(tmpdir(), 'mailspool-pack-'));
const tarballs = new Map<string, string>();
afterAll(() => rmSync(destination, { recursive: true, force: true }));

beforeAll(() => {
  for (const { dir, manifest } of packages) {
    if (!existsSync(join(dir, 'dist'))) {
      throw new Error(`${manifest.name} has no dist/: run \`pnpm build\` first (turbo does)`);
    }
    tarballs.set(manifest.name, pack(dir, destination));
  }
});

const allRanges = (manifest: Manifest) => ({
  ...manifest.dependencies,
  ...manifest.peerDependencies,
  ...manifest.optionalDependencies,
});

it('the public packages are packages/* without `private` (at least the five of today)', () => {
  expect(packages.map(({ manifest }) => manifest.name)).toEqual(
    expect.arrayContaining([
      '@mailspool/conformance',
      '@mailspool/core',
      '@mailspool/durable-objects',
      '@mailspool/indexeddb',
      '@mailspool/relay',
    ]),
  );
  expect(packages.map(({ manifest }) => manifest.name)).not.toContain('@mailspool/test-support');
});

it('this package depends on every public package (so turbo builds them before these tests)', () => {
  const own = readManifest(join(import.meta.dirname, '..'));
  for (const { manifest } of packages) {
    expect(own.devDependencies?.[manifest.name], `add "${manifest.name}": "workspace:*"`).toBe(
      'workspace:*',
    );
  }
});

describe.each(packages.map((pkg) => [pkg.manifest.name, pkg] as const))('%s', (name, { dir }) => {
  const source = readManifest(dir);

  it('pnpm publish --dry-run succeeds with no warning but the dry run itself', () => {
    const result = spawnSync('pnpm', ['publish', '--dry-run', '--no-git-checks'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toContain(`${name}@${source.version}`);
    const warnings = output
      .split('\n')
      .filter((line) => /WARN|ERR/i.test(line) && !/Skip publishing .* \(dry run\)/.test(line));
    expect(warnings).toEqual([]);
  });

  it('the packed package.json has real version ranges, never workspace: ones', () => {
    const packed = tarballManifest(tarballs.get(name)!);
    const ranges = allRanges(packed);
    for (const [dependency, range] of Object.entries(ranges)) {
      expect(range, dependency).not.toMatch(/^workspace:/);
      const workspaceVersion = versions.get(dependency);
      // A dependency on another public package is a caret range on its current version.
      if (workspaceVersion !== undefined) expect(range, dependency).toBe(`^${workspaceVersion}`);
    }
    // Every workspace dependency of the source manifest is still there, rewritten.
    for (const [dependency, range] of Object.entries(allRanges(source))) {
      if (range.startsWith('workspace:')) expect(ranges[dependency], dependency).toBeDefined();
    }
  });

  it(`the packed exports carry no ${SOURCE_CONDITION} condition and point only at shipped files`, () => {
    const tarball = tarballs.get(name)!;
    const packed = tarballManifest(tarball);
    const files = new Set(tarballFiles(tarball));
    const { conditions, targets } = exportTargets(packed.exports);
    expect(conditions, 'the beforePacking hook in .pnpmfile.cjs removes it').not.toContain(
      SOURCE_CONDITION,
    );
    expect(
      conditions,
      `the development condition is named ${SOURCE_CONDITION} (package.json, tsconfig, vitest, vite and wrangler configs)`,
    ).not.toContain('source');
    expect(targets.length).toBeGreaterThan(0);
    for (const target of [...targets, packed.main, packed.types]) {
      if (target === undefined) continue;
      expect(files, `${target} is exported but not in the tarball`).toContain(
        target.replace(/^\.\//, ''),
      );
      expect(target, 'a published export must not be TypeScript source').not.toMatch(
        /(?<!\.d)\.ts$/,
      );
    }
    // The development condition is there in the repository (so the rewrite above did something).
    expect(exportTargets(source.exports).conditions).toContain(SOURCE_CONDITION);
  });

  it('ships LICENSE (MIT, the root one), README, repository, engines, sideEffects and files', () => {
    const tarball = tarballs.get(name)!;
    const packed = tarballManifest(tarball);
    const files = tarballFiles(tarball);
    expect(packed.license).toBe('MIT');
    expect(tarballText(tarball, 'LICENSE')).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
    expect(files).toContain('README.md');
    const rootRepository = readManifest(ROOT).repository!;
    expect(packed.repository).toEqual({
      ...rootRepository,
      directory: relative(ROOT, dir),
    });
    expect(packed.engines?.node).toBe('>=20');
    expect(typeof packed.sideEffects === 'boolean' || Array.isArray(packed.sideEffects)).toBe(true);
    expect(packed.files).toEqual(expect.arrayContaining(['dist']));
    // No tests, no build info, no local state in a tarball.
    for (const file of files) {
      expect(file).not.toMatch(/\.test\.ts$|tsbuildinfo$|^test\/|^\.wrangler\/|^node_modules\//);
    }
  });
});
