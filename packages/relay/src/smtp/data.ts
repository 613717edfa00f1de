/**
 * The DATA payload: RFC 5321 §4.5.2 transparency (a line that starts with `.` gets another `.`)
 * and §2.3.8 line ends (bare CR and bare LF become CRLF), then the end-of-data line `.` CRLF.
 * Works on bytes, so 8-bit content passes unchanged.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * `contents` as sent after `DATA`: CRLF line ends, dot-stuffed, ending with CRLF `.` CRLF.
 * A receiver that removes the stuffing gets `contents` back exactly when `contents` already used
 * CRLF and ended with CRLF.
 */
export function encodeData(contents: Uint8Array): Uint8Array {
  // Two passes (count, then write) so a 25 MiB message costs one exact-size copy, not two.
  const size = transform(contents, undefined);
  const out = new Uint8Array(size);
  transform(contents, out);
  return out;
}

function transform(contents: Uint8Array, out: Uint8Array | undefined): number {
  let n = 0;
  const put = (b: number): void => {
    if (out) out[n] = b;
    n++;
  };
  let lineStart = true;
  for (let i = 0; i < contents.length; i++) {
    const b = contents[i]!;
    if (b === CR || b === LF) {
      if (b === CR && contents[i + 1] === LF) i++;
      put(CR);
      put(LF);
      lineStart = true;
      continue;
    }
    if (lineStart && b === DOT) put(DOT);
    put(b);
    lineStart = false;
  }
  if (!lineStart) {
    put(CR);
    put(LF);
  }
  put(DOT);
  put(CR);
  put(LF);
  return n;
}

/** True when some byte is ≥ 0x80 (the message needs `BODY=8BITMIME`). */
export function hasEightBit(contents: Uint8Array): boolean {
  for (let i = 0; i < contents.length; i++) if (contents[i]! >= 0x80) return true;
  return false;
}
