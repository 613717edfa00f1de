/**
 * The DATA payload: RFC 5321 §4.5.2 transparency (a line that starts with `.` gets another `.`)
 * and §2.3.8 line ends (bare CR and bare LF become CRLF), then the end-of-data line `.` CRLF.
 * Works on bytes, so 8-bit content passes unchanged.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** The end-of-data line after the message's last CRLF. */
const END_OF_DATA = [DOT, CR, LF] as const;

/** The DATA payload and the message size to declare for it. */
export interface EncodedData {
  /** The bytes sent after the 354: CRLF line ends, dot-stuffed, ending with CRLF `.` CRLF. */
  readonly bytes: Uint8Array;
  /**
   * The message size for `MAIL FROM ... SIZE=` (RFC 1870 §5): the octets of the message after
   * line-end normalisation, CRLFs included, without the stuffing dots and the final `.` CRLF.
   * A receiver counts the same octets (it removes the stuffing first), so its size limit is
   * checked against what it will get.
   */
  readonly messageSize: number;
}

/**
 * `contents` as sent after `DATA`: CRLF line ends, dot-stuffed, ending with CRLF `.` CRLF.
 * A receiver that removes the stuffing gets `contents` back exactly when `contents` already used
 * CRLF and ended with CRLF.
 */
export function encodeData(contents: Uint8Array): Uint8Array {
  return encodeMessage(contents).bytes;
}

/** {@link encodeData}, with the RFC 1870 size of the message it sends. */
export function encodeMessage(contents: Uint8Array): EncodedData {
  // Two passes (count, then write) so a 25 MiB message costs one exact-size copy, not two.
  const { length, stuffedDots } = transform(contents, undefined);
  const bytes = new Uint8Array(length);
  transform(contents, bytes);
  return { bytes, messageSize: length - stuffedDots - END_OF_DATA.length };
}

function transform(
  contents: Uint8Array,
  out: Uint8Array | undefined,
): { length: number; stuffedDots: number } {
  let n = 0;
  let stuffedDots = 0;
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
    if (lineStart && b === DOT) {
      put(DOT);
      stuffedDots++;
    }
    put(b);
    lineStart = false;
  }
  if (!lineStart) {
    put(CR);
    put(LF);
  }
  for (const b of END_OF_DATA) put(b);
  return { length: n, stuffedDots };
}

/** True when some byte is ≥ 0x80 (the message needs `BODY=8BITMIME`). */
export function hasEightBit(contents: Uint8Array): boolean {
  for (let i = 0; i < contents.length; i++) if (contents[i]! >= 0x80) return true;
  return false;
}
