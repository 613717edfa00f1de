/** Reading request bodies under a hard size cap, so a large or endless body costs nothing. */
import { ApiError } from './errors.js';

/**
 * The body's bytes, refusing (413 TOO_LARGE) as soon as more than `maxBytes` arrive — whatever
 * `Content-Length` claims, since a client may lie or stream without one.
 */
export async function readCapped(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new ApiError('TOO_LARGE', `the body is ${declared} bytes; the limit is ${maxBytes}`);
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ApiError('TOO_LARGE', `the body is over the limit of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** Parses a capped JSON body; 415 for another content type, 400 INVALID_JSON when it is not JSON. */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json')
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
  const bytes = await readCapped(request, maxBytes);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new ApiError('INVALID_JSON', 'the body is not valid UTF-8 JSON');
  }
}
