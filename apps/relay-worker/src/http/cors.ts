/** CORS for the submission API: only the configured webmail origins, only what the API needs. */

const ALLOWED_METHODS = 'GET, POST, OPTIONS';
const ALLOWED_HEADERS = 'authorization, content-type, idempotency-key';

/** Parses `ALLOWED_ORIGINS` (comma-separated origins). */
export function parseOrigins(raw: string | undefined): Set<string> {
  return new Set(
    (raw ?? '')
      .split(',')
      .map((origin) => origin.trim().replace(/\/$/, ''))
      .filter(Boolean),
  );
}

/** The CORS headers for `request`'s origin, or none when the origin is not allowed. */
export function corsHeaders(
  request: Request,
  allowed: ReadonlySet<string>,
): Record<string, string> {
  const origin = request.headers.get('origin');
  if (!origin || !allowed.has(origin)) return {};
  return { 'access-control-allow-origin': origin, vary: 'origin' };
}

/** The answer to a preflight: 204 with the allowed methods and headers, or 403 for other origins. */
export function preflight(request: Request, allowed: ReadonlySet<string>): Response {
  const headers = corsHeaders(request, allowed);
  if (!headers['access-control-allow-origin']) return new Response(null, { status: 403 });
  return new Response(null, {
    status: 204,
    headers: {
      ...headers,
      'access-control-allow-methods': ALLOWED_METHODS,
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': '600',
    },
  });
}

/** A copy of `response` with `headers` added (CORS, security). */
export function withHeaders(response: Response, headers: Record<string, string>): Response {
  if (Object.keys(headers).length === 0) return response;
  const copy = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
  return copy;
}
