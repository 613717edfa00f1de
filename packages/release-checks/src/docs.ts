/**
 * The code blocks of the repository's Markdown (every README and docs/), and the rule each one
 * falls under. The rule, also written down in docs/writing-docs.md:
 *
 * - ```` ```ts ```` (or `typescript`, `js`, `javascript`, `mjs`): a complete Node ESM program. The
 *   consumer test typechecks it in a Node project installed from the tarballs and runs it with
 *   node; it must exit 0.
 * - ```` ```ts browser ````: browser code. Typechecked in a Vite app (DOM lib), bundled by
 *   `vite build`, and run in Node with fake-indexeddb.
 * - ```` ```ts worker ````: a Cloudflare Worker module. Typechecked with the Workers types and
 *   bundled by `wrangler deploy --dry-run`.
 * - ```` ```ts vitest ````: a test file, typechecked and run by vitest in the Node project.
 * - ```` ```ts fragment ````: part of a program (a shape, a snippet that needs code around it);
 *   not checked. Any language may carry `fragment`.
 * - `json` blocks must parse (`JSON.parse`); `sh`, `bash`, `shell`, `console`, `jsonc`, `text`,
 *   `http`, `dotenv`, `yaml`, `diff` blocks are exempt by language.
 *
 * Every block needs a language (use `text` for diagrams and output).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './workspace.js';

export type Environment = 'node' | 'browser' | 'worker' | 'vitest';

export const CODE_LANGUAGES = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);
export const EXEMPT_LANGUAGES = new Set([
  'sh',
  'bash',
  'shell',
  'console',
  'jsonc',
  'text',
  'txt',
  'http',
  'dotenv',
  'yaml',
  'diff',
]);
export const ENVIRONMENTS = new Set<Environment>(['node', 'browser', 'worker', 'vitest']);

export interface CodeBlock {
  /** Repository-relative path of the Markdown file. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly language: string;
  readonly words: readonly string[];
  readonly code: string;
}

export type Verdict =
  | { readonly kind: 'checked'; readonly environment: Environment }
  | { readonly kind: 'json' }
  | { readonly kind: 'fragment' }
  | { readonly kind: 'exempt' }
  | { readonly kind: 'invalid'; readonly reason: string };

const SKIPPED_DIRS = new Set([
  'node_modules',
  'dist',
  '.git',
  '.turbo',
  '.wrangler',
  'test-results',
  'coverage',
  '.changeset',
]);

/** Every Markdown file in the repository that people read (changelogs and changesets aside). */
export function markdownFiles(dir = ROOT): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (SKIPPED_DIRS.has(entry.name)) continue;
      if (relative(ROOT, join(dir, entry.name)) === 'docs/api') continue; // TypeDoc's output
      files.push(...markdownFiles(join(dir, entry.name)));
    } else if (entry.name.endsWith('.md') && entry.name !== 'CHANGELOG.md') {
      files.push(relative(ROOT, join(dir, entry.name)));
    }
  }
  return files.sort();
}

/** The fenced code blocks of one Markdown text (``` and ~~~ fences, any indentation). */
export function codeBlocks(file: string, text: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[n]!);
    if (open === null) continue;
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    const words = info.trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let end = n + 1;
    for (; end < lines.length; end++) {
      const close = lines[end]!.trim();
      if (close.startsWith(fence[0]!.repeat(fence.length)) && close.replace(/[`~]/g, '') === '')
        break;
      body.push(lines[end]!.startsWith(indent) ? lines[end]!.slice(indent.length) : lines[end]!);
    }
    blocks.push({
      file,
      line: n + 1,
      language: (words[0] ?? '').toLowerCase(),
      words: words.slice(1),
      code: `${body.join('\n')}\n`,
    });
    n = end;
  }
  return blocks;
}

export function allCodeBlocks(): CodeBlock[] {
  return markdownFiles().flatMap((file) =>
    codeBlocks(file, readFileSync(join(ROOT, file), 'utf8')),
  );
}

const HOW_TO_MARK =
  'make it a complete example (```ts runs in Node; ```ts browser, ```ts worker or ```ts vitest for ' +
  'the other consumer projects) or mark it ```ts fragment (see docs/writing-docs.md)';

export function verdict(block: CodeBlock): Verdict {
  if (block.words.includes('fragment')) return { kind: 'fragment' };
  if (block.language === '') {
    return {
      kind: 'invalid',
      reason: 'a code block without a language: give it one (```text for diagrams and output)',
    };
  }
  if (block.language === 'json') return { kind: 'json' };
  if (EXEMPT_LANGUAGES.has(block.language)) return { kind: 'exempt' };
  if (!CODE_LANGUAGES.has(block.language)) {
    return {
      kind: 'invalid',
      reason: `language \`${block.language}\` is neither checked nor exempt: ${HOW_TO_MARK}`,
    };
  }
  const unknown = block.words.filter((word) => !ENVIRONMENTS.has(word as Environment));
  if (unknown.length > 0) {
    return { kind: 'invalid', reason: `unknown word(s) ${unknown.join(', ')}: ${HOW_TO_MARK}` };
  }
  if (block.words.length > 1) {
    return { kind: 'invalid', reason: `one environment per block, not ${block.words.join(' ')}` };
  }
  return { kind: 'checked', environment: (block.words[0] as Environment | undefined) ?? 'node' };
}

/** Where a block is: `packages/core/README.md:24 (```ts)`. */
export function describeBlock(block: CodeBlock): string {
  return `${block.file}:${block.line} (\`\`\`${[block.language, ...block.words].join(' ')})`;
}

/** A file name for an extracted block: `packages-core-README-L24.ts`. */
export function blockFileName(block: CodeBlock): string {
  const base = block.file.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');
  const extension = block.language === 'ts' || block.language === 'typescript' ? 'ts' : 'js';
  return `${base}-L${block.line}.${extension}`;
}

/** The checked blocks of one environment. */
export function checkedBlocks(environment: Environment): CodeBlock[] {
  return allCodeBlocks().filter((block) => {
    const result = verdict(block);
    return result.kind === 'checked' && result.environment === environment;
  });
}
