/**
 * The API reference builds: TypeDoc (the root typedoc.json, the same as `pnpm docs:api`) runs
 * over every public package without errors, and documents every entry point each one exports
 * with its declarations. Written to a temporary directory; `pnpm docs:api` writes docs/api/
 * (git-ignored).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command } from '../src/consumer.js';
import { exportedSubpaths, publicPackages, ROOT } from '../src/workspace.js';

interface Reflection {
  name: string;
  children?: Reflection[];
}

const out = mkdtempSync(join(tmpdir(), 'mailspool-api-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
let project: Reflection;

beforeAll(async () => {
  await command(
    process.execPath,
    [
      join(ROOT, 'node_modules/typedoc/bin/typedoc'),
      '--out',
      join(out, 'html'),
      '--json',
      join(out, 'api.json'),
      '--logLevel',
      'Error',
    ],
    ROOT,
  );
  project = JSON.parse(readFileSync(join(out, 'api.json'), 'utf8')) as Reflection;
});

it.each(publicPackages().map((pkg) => [pkg.manifest.name, pkg] as const))(
  'documents %s, every exported entry point with its declarations',
  (name, pkg) => {
    const documented = project.children?.find((child) => child.name === name);
    expect(documented, `${name} is missing from the API reference (typedoc.json)`).toBeDefined();
    expect(readFileSync(join(out, 'html/index.html'), 'utf8')).toContain(name);
    const subpaths = exportedSubpaths(pkg.manifest);
    if (subpaths.length === 1) {
      expect(documented!.children?.length ?? 0).toBeGreaterThan(0);
      return;
    }
    // Several entry points: one module each, named by its subpath ('' for the root).
    for (const subpath of subpaths) {
      const moduleName = subpath === '.' ? '' : subpath.slice(2);
      const module = documented!.children?.find((child) => child.name === moduleName);
      expect(module, `${name} ${subpath}`).toBeDefined();
      expect(module!.children?.length ?? 0, `${name} ${subpath}`).toBeGreaterThan(0);
    }
  },
);
