/** JSON error responses with stable codes (see docs/relay-api.md). */

/** Every code the HTTP API answers with; codes never change, messages may. */
export const ApiErrorCode = {
  INVALID_JSON: 400,
  INVALID_REQUEST: 400,
  INVALID_ADDRESS: 400,
  TOO_MANY_RECIPIENTS: 400,
  UNAUTHORIZED: 401,
  SENDER_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  IDEMPOTENCY_CONFLICT: 409,
  MESSAGE_SENDING: 409,
  ALREADY_SENDING: 409,
  ALREADY_FINAL: 409,
  TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = keyof typeof ApiErrorCode;

/** Thrown by handlers; turned into a JSON response at the edge of the Worker. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** More fields of the error object (e.g. the `state` of `ALREADY_FINAL`). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  get status(): number {
    return ApiErrorCode[this.code];
  }
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    },
  });
}

/** The JSON response of an `ApiError`. */
export function errorResponse(error: ApiError): Response {
  const headers: Record<string, string> = { ...error.headers };
  if (error.code === 'UNAUTHORIZED' && !headers['www-authenticate'])
    headers['www-authenticate'] = 'Bearer';
  return json(
    { error: { ...error.details, code: error.code, message: error.message } },
    error.status,
    headers,
  );
}
