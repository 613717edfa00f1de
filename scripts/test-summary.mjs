// Sums the vitest JSON reports that the test runs wrote (<package>/test-results/*.json for every
// workspace package: packages/*, apps/*, bench) and prints one closing line,
// "tests: N passed, N failed, N skipped", so a reader (or CI) sees the whole run's count at the
// end. Exits 1 when a report has failures or when no report was found (a run that tested
// nothing must not look green).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageDirs } from './workspace-dirs.mjs';

const root = new URL('..', import.meta.url).pathname;

let passed = 0;
let failed = 0;
let skipped = 0;
let reports = 0;
for (const dir of packageDirs()) {
  let files = [];
  try {
    files = readdirSync(join(dir, 'test-results')).filter((file) => file.endsWith('.json'));
  } catch {
    continue;
  }
  for (const file of files) {
    const report = JSON.parse(readFileSync(join(dir, 'test-results', file), 'utf8'));
    if (typeof report.numPassedTests !== 'number') continue;
    reports++;
    passed += report.numPassedTests;
    failed += report.numFailedTests + (report.numFailedTestSuites ?? 0);
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    console.log(
      `  ${relative(root, dir)}/test-results/${file}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`,
    );
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (reports === 0 || failed > 0) process.exit(1);
