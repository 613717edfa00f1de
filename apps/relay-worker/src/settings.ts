/** Configuration settings that are JSON objects keyed by tenant id (TENANT_TOKENS and the like). */

/**
 * The entries of the JSON-object setting `name` (`[]` when it is unset), each checked to name a
 * tenant of `tenants` when given. Throws a plain Error naming the setting and what it must be
 * (`shape`, e.g. "tenant id → token").
 */
export function tenantEntries(
  name: string,
  raw: string | undefined,
  shape: string,
  tenants?: ReadonlySet<string>,
): [string, unknown][] {
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${name} must be a JSON object of ${shape}`);
  }
  const entries = Object.entries(parsed);
  for (const [tenant] of entries) {
    if (tenants && !tenants.has(tenant)) {
      throw new Error(`${name} names ${JSON.stringify(tenant)}, which has no token`);
    }
  }
  return entries;
}
