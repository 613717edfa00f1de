// pnpm hooks for this workspace.
//
// beforePacking: `pnpm pack` and `pnpm publish` call it with the manifest that goes into the
// tarball. The `@mailspool/source` export condition points at TypeScript sources for development
// inside this repository (vitest, tsc, wrangler and vite are configured to prefer it); a published
// package must not offer it, so it is removed from every `exports` entry here, whatever subpaths
// a package adds. (pnpm also rewrites `workspace:` ranges to real versions at this point.)
const SOURCE_CONDITION = '@mailspool/source';

function withoutSourceCondition(value) {
  if (Array.isArray(value)) return value.map(withoutSourceCondition);
  if (value === null || typeof value !== 'object') return value;
  const result = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key !== SOURCE_CONDITION) result[key] = withoutSourceCondition(inner);
  }
  return result;
}

module.exports = {
  hooks: {
    beforePacking(pkg) {
      if (pkg.exports !== undefined) pkg.exports = withoutSourceCondition(pkg.exports);
      return pkg;
    },
  },
};
