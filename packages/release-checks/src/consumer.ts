/**
 * Throwaway consumer projects outside the workspace (under os.tmpdir()), installed from the
 * packed tarballs with npm or pnpm, the way a user would install them before (and instead of)
 * the registry. Third-party dependencies come from the npm registry. The tools that only act on
 * a project (tsc, vite, wrangler) are the workspace's own binaries: everything the projects
 * import comes from their own node_modules.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { CodeBlock, Environment } from './docs.js';
import {
  exportedSubpaths,
  type Manifest,
  ROOT,
  specifier,
  type WorkspacePackage,
} from './workspace.js';

const run = promisify(execFile);

export type PackageManager = 'npm' | 'pnpm';
export type ProjectKind = Exclude<Environment, 'vitest'>;

/**
 * Which consumer project uses which public package. A new public package must be added here
 * (consumer.e2e.test.ts fails until it is). Subpaths are found in each package's `exports`;
 * those whose code imports `cloudflare:` modules are used by the Worker project only.
 */
export const PACKAGE_PROJECTS: Readonly<Record<string, readonly ProjectKind[]>> = {
  '@mailspool/core': ['node', 'browser', 'worker'],
  '@mailspool/conformance': ['node'],
  '@mailspool/indexeddb': ['browser'],
  '@mailspool/relay': ['node', 'browser', 'worker'],
  '@mailspool/durable-objects': ['worker'],
};

/** Third-party packages a consumer of each kind would install, pinned like the workspace's. */
const REGISTRY_DEV_DEPENDENCIES: Readonly<Record<ProjectKind, Record<string, string>>> = {
  node: { '@types/node': '20.19.39', vitest: '4.1.12' },
  browser: { 'fake-indexeddb': '6.2.8' },
  worker: { '@cloudflare/workers-types': '5.20261117.1' },
};

/** The ordinary tsconfig of each kind: strict, `lib` without ESNext extras, lib checks on. */
const TSCONFIG: Readonly<Record<ProjectKind, object>> = {
  node: {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023'],
      types: ['node'],
      strict: true,
      skipLibCheck: false,
      outDir: 'dist',
      rootDir: 'src',
    },
    include: ['src'],
  },
  browser: {
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2023', 'DOM', 'DOM.Iterable'],
      types: [],
      strict: true,
      skipLibCheck: false,
      // Emitted for the Node run of the browser examples (fake-indexeddb); vite builds from src.
      outDir: 'node-run',
      rootDir: 'src',
    },
    include: ['src'],
  },
  worker: {
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2023'],
      types: ['@cloudflare/workers-types'],
      strict: true,
      skipLibCheck: false,
      noEmit: true,
    },
    include: ['src'],
  },
};

const resolveFrom = (packageDir: string, request: string) =>
  createRequire(join(ROOT, packageDir, 'package.json')).resolve(request);

export const TOOLS = {
  tsc: join(ROOT, 'node_modules/typescript/bin/tsc'),
  vite: join(dirname(resolveFrom('apps/webmail-outbox', 'vite/package.json')), 'bin/vite.js'),
  wrangler: join(
    dirname(resolveFrom('apps/relay-worker', 'wrangler/package.json')),
    'bin/wrangler.js',
  ),
};

/** The environment for installs and tools: none of the workspace's pnpm/npm script variables. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM_|WRANGLER_BUILD_CONDITIONS$|NODE_ENV$|VITEST|TURBO_)/.test(key))
      continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command in `cwd`; a failure's message carries the command, its output and `explain`. */
export async function command(
  file: string,
  args: readonly string[],
  cwd: string,
  options: {
    env?: Record<string, string>;
    timeout?: number;
    explain?: (out: string) => string;
  } = {},
): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd,
      env: cleanEnv(options.env),
      timeout: options.timeout ?? 180_000,
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'utf8',
    });
    return { stdout, stderr };
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    const output = `${failed.stdout ?? ''}\n${failed.stderr ?? ''}`.trim();
    const explained = options.explain?.(output) ?? output;
    throw new Error(
      `\`${[file, ...args].join(' ')}\` failed in ${cwd}:\n${explained}\n(${failed.message.split('\n')[0]})`,
    );
  }
}

export const node = (args: readonly string[], cwd: string, explain?: (out: string) => string) =>
  command(process.execPath, args, cwd, explain ? { explain } : {});

/** The entry points of `manifest` that a project of `kind` imports. */
export function entryPoints(pkg: WorkspacePackage, kind: ProjectKind): string[] {
  return exportedSubpaths(pkg.manifest)
    .filter((subpath) => kind === 'worker' || !importsCloudflare(pkg, subpath))
    .map((subpath) => specifier(pkg.manifest.name, subpath));
}

/** Whether the built code of one subpath imports a `cloudflare:` module (transitively). */
function importsCloudflare(pkg: WorkspacePackage, subpath: string): boolean {
  const target = defaultTarget(pkg.manifest, subpath);
  if (target === undefined) return false;
  const seen = new Set<string>();
  const visit = (file: string): boolean => {
    if (seen.has(file)) return false;
    seen.add(file);
    const code = readFileSync(file, 'utf8');
    if (/from\s+['"]cloudflare:|import\(\s*['"]cloudflare:/.test(code)) return true;
    for (const match of code.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
      if (visit(join(dirname(file), match[1]!))) return true;
    }
    return false;
  };
  return visit(join(pkg.dir, target));
}

function defaultTarget(manifest: Manifest, subpath: string): string | undefined {
  const exports = manifest.exports as Record<string, unknown> | undefined;
  let entry: unknown = exports?.[subpath] ?? (subpath === '.' ? manifest.main : undefined);
  while (entry !== null && typeof entry === 'object') {
    const conditions = entry as Record<string, unknown>;
    entry = conditions.import ?? conditions.default;
  }
  return typeof entry === 'string' ? entry : undefined;
}

/** A module importing every entry point and failing when one of them exports nothing. */
export function exportsSmoke(specifiers: readonly string[]): string {
  const imports = specifiers.map((name, n) => `import * as entry${n} from '${name}';`);
  const table = specifiers.map((name, n) => `  '${name}': entry${n},`);
  return [
    '// Every entry point of the installed packages this project uses (from their `exports`).',
    ...imports,
    '',
    'export const entryPoints: Record<string, object> = {',
    ...table,
    '};',
    'for (const [name, namespace] of Object.entries(entryPoints)) {',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal in generated code
    '  if (Object.keys(namespace).length === 0) throw new Error(`${name} exports nothing`);',
    '}',
    '',
  ].join('\n');
}

/** An extracted code block as a file, with a first line saying where it came from. */
export function blockSource(block: CodeBlock): string {
  return `// From ${block.file}:${block.line}; do not edit here.\n${block.code}`;
}

/** Appends the Markdown position to compiler messages about extracted blocks (file → block). */
export function explainBlocks(blocks: ReadonlyMap<string, CodeBlock>): (output: string) => string {
  return (output) =>
    output.replace(/([\w.-]+\.[jt]s)[(:](\d+)[,:](\d+)\)?/g, (match, name: string, line) => {
      const block = blocks.get(name);
      if (block === undefined) return match;
      const markdownLine = block.line + Number(line) - 1;
      return `${match} [= ${block.file}:${markdownLine}, in the block at line ${block.line}: fix it, or mark the block \`\`\`${block.language} fragment]`;
    });
}

export interface ProjectSpec {
  readonly kind: ProjectKind;
  readonly manager: PackageManager;
  readonly dir: string;
  /** Public package name → tarball path. */
  readonly tarballs: ReadonlyMap<string, string>;
  /** The public packages this project depends on. */
  readonly packages: readonly string[];
  /** Relative path → contents. */
  readonly files: Readonly<Record<string, string>>;
}

export function writeProject(spec: ProjectSpec): void {
  mkdirSync(spec.dir, { recursive: true });
  const dependencies = Object.fromEntries(
    spec.packages.map((name) => [name, `file:${spec.tarballs.get(name)!}`]),
  );
  const manifest = {
    name: `mailspool-consumer-${spec.kind}`,
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies,
    devDependencies: REGISTRY_DEV_DEPENDENCIES[spec.kind],
  };
  writeFileSync(join(spec.dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(
    join(spec.dir, 'tsconfig.json'),
    `${JSON.stringify(TSCONFIG[spec.kind], null, 2)}\n`,
  );
  if (spec.manager === 'pnpm') {
    // pnpm resolves a tarball's own dependencies (e.g. relay → @mailspool/core ^0.1.0) from the
    // registry, where the packages are not yet: overrides point every one at its tarball.
    const overrides = [...spec.tarballs].map(([name, file]) => `  '${name}': 'file:${file}'`);
    writeFileSync(join(spec.dir, 'pnpm-workspace.yaml'), `overrides:\n${overrides.join('\n')}\n`);
  }
  for (const [path, contents] of Object.entries(spec.files)) {
    mkdirSync(dirname(join(spec.dir, path)), { recursive: true });
    writeFileSync(join(spec.dir, path), contents);
  }
}

export async function install(spec: ProjectSpec): Promise<void> {
  if (spec.manager === 'npm') {
    await command('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], spec.dir);
  } else {
    // CI=true makes pnpm default to a frozen lockfile; a new project has none.
    await command('pnpm', ['install', '--no-frozen-lockfile', '--reporter=append-only'], spec.dir);
  }
}
