/**
 * The packages as a user gets them: every public package is packed (`pnpm pack`, what `pnpm
 * publish` uploads), and the tarballs are installed with npm and with pnpm into three throwaway
 * projects outside the workspace — a Node ESM project, a Vite browser app and a Cloudflare Worker.
 * Each is typechecked with an ordinary consumer tsconfig (strict, `lib` without ESNext extras,
 * `skipLibCheck: false`), imports every entry point its packages export, and carries the code
 * blocks of the READMEs and docs/ for its environment (docs/writing-docs.md): Node examples run
 * with node, vitest examples with vitest, browser examples are built by vite and run in Node with
 * fake-indexeddb, Worker examples are bundled by `wrangler deploy --dry-run`.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blockSource,
  command,
  entryPoints,
  explainBlocks,
  exportsSmoke,
  install,
  node,
  PACKAGE_PROJECTS,
  type PackageManager,
  type ProjectKind,
  type ProjectSpec,
  TOOLS,
  writeProject,
} from '../src/consumer.js';
import { blockFileName, type CodeBlock, checkedBlocks } from '../src/docs.js';
import { pack, publicPackages } from '../src/workspace.js';

const packages = publicPackages();
const root = mkdtempSync(join(tmpdir(), 'mailspool-consumer-'));
const tarballs = new Map<string, string>();
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(() => {
  mkdirSync(join(root, 'tarballs'));
  for (const pkg of packages)
    tarballs.set(pkg.manifest.name, pack(pkg.dir, join(root, 'tarballs')));
});

it('every public package is used by a consumer project', () => {
  for (const { manifest } of packages) {
    expect(
      PACKAGE_PROJECTS[manifest.name],
      `add ${manifest.name} to PACKAGE_PROJECTS in packages/release-checks/src/consumer.ts`,
    ).toBeDefined();
  }
});

/** The packages, entry points and extracted blocks of one project kind. */
function projectParts(kind: ProjectKind, blockEnvironments: readonly string[]) {
  const used = packages.filter((pkg) => PACKAGE_PROJECTS[pkg.manifest.name]?.includes(kind));
  const entries = used.flatMap((pkg) => entryPoints(pkg, kind));
  const blocks = new Map<string, CodeBlock>();
  for (const environment of blockEnvironments) {
    for (const block of checkedBlocks(environment as 'node')) {
      const name = blockFileName(block);
      blocks.set(environment === 'vitest' ? name.replace(/\.([jt]s)$/, '.test.$1') : name, block);
    }
  }
  const files: Record<string, string> = {};
  for (const [name, block] of blocks) files[`src/${name}`] = blockSource(block);
  return { used: used.map((pkg) => pkg.manifest.name), entries, blocks, files };
}

const js = (name: string) => name.replace(/\.ts$/, '.js');

describe.each<PackageManager>(['npm', 'pnpm'])('installed with %s', (manager) => {
  const nodeParts = projectParts('node', ['node', 'vitest']);
  const browserParts = projectParts('browser', ['browser']);
  const workerParts = projectParts('worker', ['worker']);
  const nodeSpec = (): ProjectSpec => {
    const { used, entries, files } = nodeParts;
    return {
      kind: 'node',
      manager,
      dir: join(root, manager, 'node'),
      tarballs,
      packages: used,
      files: {
        ...files,
        'src/exports-smoke.ts': `${exportsSmoke(entries)}console.log(\`loaded \${Object.keys(entryPoints).length} entry points\`);\n`,
      },
    };
  };
  const browserSpec = (): ProjectSpec => {
    const { used, entries, blocks, files } = browserParts;
    const imports = [...blocks.keys()].map(
      (name, n) => `import * as example${n} from './${js(name)}';`,
    );
    return {
      kind: 'browser',
      manager,
      dir: join(root, manager, 'browser'),
      tarballs,
      packages: used,
      files: {
        ...files,
        'src/exports-smoke.ts': exportsSmoke(entries),
        'src/main.ts': [
          "import { entryPoints } from './exports-smoke.js';",
          ...imports,
          '',
          `const examples = [${[...blocks.keys()].map((_, n) => `example${n}`).join(', ')}];`,
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal in generated code
          'document.body.textContent = `${Object.keys(entryPoints).length} entry points, ${examples.length} examples`;',
          '',
        ].join('\n'),
        'index.html':
          '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>consumer</title></head>\n<body><script type="module" src="/src/main.ts"></script></body>\n</html>\n',
        // Node has no window: fake-indexeddb gives it IndexedDB, an EventTarget its global events.
        'node-globals.mjs': [
          "import 'fake-indexeddb/auto';",
          'const target = new EventTarget();',
          "for (const name of ['addEventListener', 'removeEventListener', 'dispatchEvent']) {",
          '  globalThis[name] ??= target[name].bind(target);',
          '}',
          '',
        ].join('\n'),
      },
    };
  };
  const workerSpec = (): ProjectSpec => {
    const { used, entries, blocks, files } = workerParts;
    const imports = [...blocks.keys()].map(
      (name, n) => `import * as example${n} from './${js(name)}';`,
    );
    return {
      kind: 'worker',
      manager,
      dir: join(root, manager, 'worker'),
      tarballs,
      packages: used,
      files: {
        ...files,
        'src/exports-smoke.ts': exportsSmoke(entries),
        'src/index.ts': [
          "import { entryPoints } from './exports-smoke.js';",
          ...imports,
          '',
          `const examples = [${[...blocks.keys()].map((_, n) => `example${n}`).join(', ')}];`,
          'export default {',
          '  async fetch(): Promise<Response> {',
          '    return Response.json({ entryPoints: Object.keys(entryPoints), examples: examples.length });',
          '  },',
          '};',
          '',
        ].join('\n'),
        'wrangler.jsonc': `${JSON.stringify({ name: 'mailspool-consumer', main: 'src/index.ts', compatibility_date: '2026-04-01' }, null, 2)}\n`,
      },
    };
  };

  // The three installs wait on the network more than on the CPU: run them together.
  beforeAll(async () => {
    await Promise.all(
      [nodeSpec(), browserSpec(), workerSpec()].map((spec) => {
        writeProject(spec);
        return install(spec);
      }),
    );
  });

  it('a Node ESM project typechecks, loads every entry point and runs the Node and vitest examples', async () => {
    const { entries, blocks } = nodeParts;
    const dir = join(root, manager, 'node');
    const explain = explainBlocks(blocks);
    await node([TOOLS.tsc, '-p', '.'], dir, explain);

    const smoke = await node(['dist/exports-smoke.js'], dir);
    expect(smoke.stdout).toContain(`loaded ${entries.length} entry points`);
    expect(entries).toContain('@mailspool/core');

    const runnable = [...blocks].filter(([name]) => !name.includes('.test.'));
    expect(runnable.length, 'the Node examples of the READMEs').toBeGreaterThan(0);
    for (const [name] of runnable) await node([`dist/${js(name)}`], dir, explain);

    const tests = [...blocks].filter(([name]) => name.includes('.test.'));
    expect(tests.length, 'the vitest examples of the READMEs').toBeGreaterThan(0);
    const vitest = await command(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--dir', 'src'],
      dir,
      { env: { NO_COLOR: '1' }, explain },
    );
    const summary = `${vitest.stdout}${vitest.stderr}`;
    expect(summary).toMatch(/Tests\s+\d+ passed/);
    expect(summary).not.toMatch(/\d+ failed/);
  });

  it('a Vite browser app typechecks, builds, and its browser examples run in Node with fake-indexeddb', async () => {
    const { blocks } = browserParts;
    const dir = join(root, manager, 'browser');
    const explain = explainBlocks(blocks);
    await node([TOOLS.tsc, '-p', '.'], dir, explain);
    await command(process.execPath, [TOOLS.vite, 'build', '--logLevel', 'warn'], dir, {
      env: { NODE_ENV: 'production' },
      explain,
    });
    const html = readFileSync(join(dir, 'dist/index.html'), 'utf8');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, 'vite wrote a script into dist/index.html').toBeDefined();
    expect(readFileSync(join(dir, 'dist', script!), 'utf8').length).toBeGreaterThan(1000);

    await node(['--import', './node-globals.mjs', 'node-run/exports-smoke.js'], dir);
    expect(blocks.size, 'the browser examples of the READMEs').toBeGreaterThan(0);
    for (const name of blocks.keys()) {
      await node(['--import', './node-globals.mjs', `node-run/${js(name)}`], dir, explain);
    }
  });

  it('a Worker typechecks and bundles with wrangler deploy --dry-run, from dist/ only', async () => {
    const { used, blocks } = workerParts;
    const dir = join(root, manager, 'worker');
    const explain = explainBlocks(blocks);
    await node([TOOLS.tsc, '-p', '.'], dir, explain);
    expect(blocks.size, 'the Worker examples of the READMEs').toBeGreaterThan(0);
    await command(
      process.execPath,
      [TOOLS.wrangler, 'deploy', '--dry-run', '--outdir', 'out'],
      dir,
      {
        env: { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
        explain,
      },
    );
    const bundle = readFileSync(join(dir, 'out/index.js'), 'utf8');
    for (const name of used) {
      // esbuild names each bundled file in a comment: the installed package's dist/, never src/.
      expect(bundle, name).toContain(`${name}/dist/`);
      expect(bundle, name).not.toContain(`${name}/src/`);
    }
  });
});
