import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Two entries: the page (index.html) and the service worker (src/sw.ts → dist/sw.js, at the root
// so its scope covers the page). The worker is an ES module (registered with type: 'module') and
// may share chunks with the page. `base: './'` lets dist/ be served under any path.
export default defineConfig({
  base: './',
  // `@mailspool/source` resolves workspace packages to their TypeScript sources: no build step between them.
  resolve: { conditions: ['@mailspool/source', 'module', 'browser', 'development|production'] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: {
      input: { index: here('index.html'), sw: here('src/sw.ts') },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
