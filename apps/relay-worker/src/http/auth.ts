/**
 * Bearer-token authentication: tenant tokens for the submission API, one admin token for the admin
 * API and the status page. Tokens are compared in constant time (over SHA-256 digests, so neither
 * the content nor the length of a token leaks through timing).
 */

import { tenantEntries } from '../settings.js';
import { ApiError } from './errors.js';

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/** Compares two secrets in constant time. */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  const subtle = crypto.subtle as SubtleCrypto & {
    timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean;
  };
  // workerd offers timingSafeEqual; elsewhere an XOR fold over equal-length digests does the same.
  if (typeof subtle.timingSafeEqual === 'function') return subtle.timingSafeEqual(a, b);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** The token of an `Authorization: Bearer …` header (or of Basic auth's password, when allowed). */
export function presentedToken(request: Request, allowBasic = false): string | undefined {
  const header = request.headers.get('authorization') ?? '';
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  if (allowBasic) {
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
    if (basic) {
      try {
        const decoded = atob(basic[1]!);
        const colon = decoded.indexOf(':');
        if (colon >= 0) return decoded.slice(colon + 1);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Tenant id → token, parsed from the `TENANT_TOKENS` secret (a JSON object). */
export function parseTenantTokens(raw: string | undefined): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const [tenant, token] of tenantEntries('TENANT_TOKENS', raw, 'tenant id → token')) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(tenant))
      throw new Error(`TENANT_TOKENS: bad tenant id ${JSON.stringify(tenant)}`);
    if (typeof token !== 'string' || token.length < 16)
      throw new Error(
        `TENANT_TOKENS: the token of ${tenant} must be a string of at least 16 characters`,
      );
    tokens.set(tenant, token);
  }
  return tokens;
}

/**
 * The tenant the request's token belongs to. Every configured token is compared (in constant
 * time), so the time taken does not reveal which tenant, if any, matched.
 */
export async function authenticateTenant(
  request: Request,
  tokens: ReadonlyMap<string, string>,
): Promise<string> {
  const given = presentedToken(request);
  if (!given)
    throw new ApiError('UNAUTHORIZED', 'a tenant token is required: Authorization: Bearer <token>');
  let tenant: string | undefined;
  for (const [id, token] of tokens) {
    if ((await secretsEqual(given, token)) && tenant === undefined) tenant = id;
  }
  if (tenant === undefined) throw new ApiError('UNAUTHORIZED', 'the token is not valid');
  return tenant;
}

/** Passes when the request carries the admin token (Bearer, or Basic password when `allowBasic`). */
export async function authenticateAdmin(
  request: Request,
  adminToken: string | undefined,
  allowBasic = false,
): Promise<void> {
  const given = presentedToken(request, allowBasic);
  if (!adminToken || adminToken.length < 16)
    throw new ApiError(
      'UNAUTHORIZED',
      'the admin API is disabled: set the ADMIN_TOKEN secret (16+ characters)',
    );
  if (!given || !(await secretsEqual(given, adminToken))) {
    throw new ApiError(
      'UNAUTHORIZED',
      'the admin token is required',
      allowBasic ? { 'www-authenticate': 'Basic realm="mailspool"' } : {},
    );
  }
}
