/**
 * The Worker as it deploys: `wrangler.jsonc` ships production defaults (STARTTLS on 587, no local
 * address, no browser origin; the local values live in .dev.vars), and `wrangler deploy --dry-run`
 * bundles it within the size budget.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { WRANGLER_ENV } from './wrangler-dev.js';

const workerDir = join(import.meta.dirname, '../..');
/** The budget of the deployed bundle (today about 170 KiB, 47 KiB gzipped). */
const MAX_BUNDLE_BYTES = 320 * 1024;
const MAX_BUNDLE_GZIP_BYTES = 80 * 1024;

const outdir = mkdtempSync(join(tmpdir(), 'mailspool-deploy-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** wrangler.jsonc without its comments (none of its strings holds `//`). */
function shippedConfig(): { vars: Record<string, string> } {
  const text = readFileSync(join(workerDir, 'wrangler.jsonc'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, ''))
    .join('\n');
  return JSON.parse(text) as { vars: Record<string, string> };
}

describe('the deployable Worker', () => {
  it('wrangler.jsonc ships production defaults: STARTTLS on 587, no local address, no origin', () => {
    const { vars } = shippedConfig();
    expect(vars.SMARTHOST_TLS).toBe('starttls');
    expect(vars.SMARTHOST_PORT).toBe('587');
    expect(vars.SMARTHOST_HOST).toBeUndefined();
    expect(vars.ALLOWED_ORIGINS).toBe('');
    for (const [name, value] of Object.entries(vars)) {
      expect(value, name).not.toMatch(/127\.0\.0\.1|localhost|::1/);
    }
    // (That the Worker refuses to run without SMARTHOST_HOST is tested in workerd: api.test.ts.)
  });

  it('wrangler deploy --dry-run bundles the Worker within its size budget', () => {
    execFileSync(
      join(workerDir, 'node_modules/.bin/wrangler'),
      ['deploy', '--dry-run', '--outdir', outdir, '--config', join(workerDir, 'wrangler.jsonc')],
      { cwd: workerDir, env: { ...process.env, ...WRANGLER_ENV }, stdio: 'pipe', timeout: 90_000 },
    );
    const bundle = join(outdir, 'index.js');
    const bytes = statSync(bundle).size;
    const gzipped = gzipSync(readFileSync(bundle)).byteLength;
    console.log(
      `relay Worker bundle: ${(bytes / 1024).toFixed(1)} KiB, ${(gzipped / 1024).toFixed(1)} KiB gzipped (budget ${MAX_BUNDLE_BYTES / 1024} / ${MAX_BUNDLE_GZIP_BYTES / 1024} KiB)`,
    );
    expect(bytes).toBeLessThanOrEqual(MAX_BUNDLE_BYTES);
    expect(gzipped).toBeLessThanOrEqual(MAX_BUNDLE_GZIP_BYTES);
  });
});
