/**
 * Base64 for bytes, in every runtime the outbox runs in (tabs, the service worker, Node tests).
 * Internal: used by the MIME builder (wrapped at 76 columns, RFC 2045 §6.8) and by the flusher
 * (the relay's JSON `raw` field, unwrapped).
 */

// `String.fromCharCode(...chunk)` passes each byte as an argument: keep chunks well under the
// engines' argument limits (V8 allows ~65k before a RangeError).
const CHUNK = 0x8000;

/** Standard base64 (with padding, no line breaks) of `bytes`. */
export function bytesToBase64(bytes: Uint8Array): string {
  const native = (bytes as Uint8Array & { toBase64?: () => string }).toBase64;
  if (typeof native === 'function') return native.call(bytes);
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Base64 of `bytes` as MIME body lines: at most 76 characters each, joined by CRLF. */
export function base64Lines(bytes: Uint8Array): string {
  const flat = bytesToBase64(bytes);
  const lines: string[] = [];
  for (let i = 0; i < flat.length; i += 76) lines.push(flat.slice(i, i + 76));
  return lines.join('\r\n');
}
