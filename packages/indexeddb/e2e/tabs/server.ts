/**
 * Serves the multi-tab test page on 127.0.0.1: page.ts bundled in memory by esbuild (workspace
 * packages resolved to their sources), plus a one-line HTML page. Nothing is written to disk.
 */
import { fileURLToPath } from 'node:url';
import { type FileServer, MODULE_PAGE_HTML, serveFiles } from '@mailspool/test-support/net';
import { build } from 'esbuild';

export type PageServer = FileServer;

export async function startPageServer(): Promise<PageServer> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    conditions: ['@mailspool/source'],
    write: false,
    logLevel: 'silent',
  });
  return serveFiles({
    '/': { type: 'text/html', body: MODULE_PAGE_HTML },
    '/page.js': { type: 'text/javascript', body: result.outputFiles[0]!.contents },
  });
}
