/**
 * The consumer test's own parts, fast: which entry points a project of each kind imports (found
 * in `exports`, Workers-only ones kept out of Node and the browser), and how compiler messages
 * about an extracted block are mapped back to the Markdown line.
 */
import { expect, it } from 'vitest';
import { entryPoints, explainBlocks, exportsSmoke } from '../src/consumer.js';
import { blockFileName, codeBlocks } from '../src/docs.js';
import { publicPackages } from '../src/workspace.js';

const relay = publicPackages().find((pkg) => pkg.manifest.name === '@mailspool/relay')!;

it('reads entry points from exports; the cloudflare: one only for Workers', () => {
  expect(entryPoints(relay, 'worker')).toEqual(
    expect.arrayContaining(['@mailspool/relay', '@mailspool/relay/cloudflare']),
  );
  expect(entryPoints(relay, 'node')).toContain('@mailspool/relay');
  expect(entryPoints(relay, 'node')).not.toContain('@mailspool/relay/cloudflare');
  expect(entryPoints(relay, 'browser')).not.toContain('@mailspool/relay/cloudflare');
  expect(entryPoints(relay, 'node').some((name) => name.endsWith('package.json'))).toBe(false);
});

it('the smoke module imports each entry point and fails on an empty one', () => {
  const source = exportsSmoke(['@mailspool/core', '@mailspool/relay/address']);
  expect(source).toContain("import * as entry0 from '@mailspool/core';");
  expect(source).toContain("import * as entry1 from '@mailspool/relay/address';");
  expect(source).toContain('exports nothing');
});

it('maps a compiler error in an extracted block to its Markdown file and line', () => {
  const [block] = codeBlocks(
    'packages/x/README.md',
    '# x\n\ntext\n```ts\nconst a = 1;\nconst b: string = a;\n```\n',
  );
  const name = blockFileName(block!);
  expect(name).toBe('packages-x-README-L4.ts');
  // The extracted file has one header line, so the block's 2nd code line is the file's 3rd.
  const explained = explainBlocks(new Map([[name, block!]]))(
    `src/${name}(3,7): error TS2322: Type 'number' is not assignable to type 'string'.`,
  );
  expect(explained).toContain('packages/x/README.md:6');
  expect(explained).toContain('```ts fragment');
});
