/**
 * Every code block of the READMEs and docs/ falls under a rule (docs/writing-docs.md): checked
 * by the consumer test (consumer.e2e.test.ts typechecks and runs it against the tarballs), a
 * parsed JSON block, a fragment, or a language that is exempt. A new block that is none of these
 * fails here, naming its file and line and how to mark it.
 */
import { describe, expect, it } from 'vitest';
import { allCodeBlocks, codeBlocks, describeBlock, markdownFiles, verdict } from '../src/docs.js';

const blocks = allCodeBlocks();

describe('the rule itself', () => {
  const parse = (markdown: string) => codeBlocks('x.md', markdown).map((block) => verdict(block));

  it('reads the info string: default Node, environments, fragment, exempt, json', () => {
    expect(
      parse(
        [
          '```ts',
          'a',
          '```',
          '```ts worker',
          'b',
          '```',
          '```js fragment',
          'c',
          '```',
          '```sh',
          'd',
          '```',
          '```json',
          '{}',
          '```',
        ].join('\n'),
      ),
    ).toEqual([
      { kind: 'checked', environment: 'node' },
      { kind: 'checked', environment: 'worker' },
      { kind: 'fragment' },
      { kind: 'exempt' },
      { kind: 'json' },
    ]);
  });

  it('refuses a block without a language, an unknown language and an unknown word', () => {
    const verdicts = parse('```\nx\n```\n```python\ny\n```\n```ts server\nz\n```\n');
    expect(verdicts.map((v) => v.kind)).toEqual(['invalid', 'invalid', 'invalid']);
  });

  it('keeps longer fences open across shorter ones and knows each line', () => {
    const [outer, after] = codeBlocks('x.md', '\n````md\n```ts\nx\n```\n````\n```ts\ny\n```\n');
    expect(outer!.line).toBe(2);
    expect(outer!.code).toBe('```ts\nx\n```\n');
    expect(after!.line).toBe(7);
  });
});

it('finds the READMEs and docs/ (and so would find a new one)', () => {
  const files = markdownFiles();
  expect(files).toEqual(
    expect.arrayContaining(['README.md', 'packages/core/README.md', 'docs/contract.md']),
  );
  expect(files.some((file) => file.includes('node_modules'))).toBe(false);
  expect(blocks.length).toBeGreaterThan(10);
});

it('every code block is checked, parsed, a fragment or exempt by language', () => {
  const problems = blocks.flatMap((block) => {
    const result = verdict(block);
    return result.kind === 'invalid' ? [`${describeBlock(block)}: ${result.reason}`] : [];
  });
  expect(problems, `\n${problems.join('\n')}\n`).toEqual([]);
});

it('every json block parses', () => {
  const problems = blocks
    .filter((block) => verdict(block).kind === 'json')
    .flatMap((block) => {
      try {
        JSON.parse(block.code);
        return [];
      } catch (error) {
        return [
          `${describeBlock(block)}: not JSON (${(error as Error).message}); use \`\`\`jsonc for comments or \`\`\`json fragment for a part`,
        ];
      }
    });
  expect(problems, `\n${problems.join('\n')}\n`).toEqual([]);
});

it('no checked example relies on `await using` (a SyntaxError on Node 20)', () => {
  const problems = blocks
    .filter((block) => verdict(block).kind === 'checked')
    .filter((block) => /\bawait using\b/.test(block.code))
    .map(
      (block) =>
        `${describeBlock(block)}: use try/finally + close(), and show \`await using\` in a \`\`\`ts fragment`,
    );
  expect(problems, `\n${problems.join('\n')}\n`).toEqual([]);
});
