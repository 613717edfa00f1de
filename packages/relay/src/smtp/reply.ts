/**
 * SMTP replies (RFC 5321 §4.2): one or more lines `NNN-text` ending with `NNN text`, with an
 * optional RFC 3463 enhanced status code at the start of the text (RFC 2034).
 */

/** A complete reply. */
export interface SmtpReply {
  readonly code: number;
  /** The enhanced status code (`5.1.1`) when the server sent one. */
  readonly enhanced?: string;
  /** The text of each line, without the code and without the enhanced status code. */
  readonly lines: readonly string[];
}

/** One parsed reply line. */
export interface ReplyLine {
  readonly code: number;
  /** `true` for the last line of a reply (`NNN text` or a bare `NNN`). */
  readonly last: boolean;
  readonly text: string;
}

/** Parses one line (without its CRLF), or returns `undefined` when it is not a reply line. */
export function parseReplyLine(line: string): ReplyLine | undefined {
  const match = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s.exec(line);
  if (!match) return undefined;
  return { code: Number(match[1]), last: match[2] !== '-', text: match[3] ?? '' };
}

const ENHANCED = /^([245])\.([0-9]{1,3})\.([0-9]{1,3})(?:[ \t]+|$)/;

/** Builds a reply from its lines (all with the same code), extracting the enhanced status code. */
export function buildReply(lines: readonly ReplyLine[]): SmtpReply {
  const code = lines[0]!.code;
  const first = ENHANCED.exec(lines[0]!.text);
  const enhanced =
    first && Number(first[1]) === Math.floor(code / 100)
      ? `${first[1]}.${first[2]}.${first[3]}`
      : undefined;
  const texts = lines.map(({ text }) => {
    if (!enhanced) return text;
    const match = ENHANCED.exec(text);
    return match ? text.slice(match[0].length) : text;
  });
  return enhanced === undefined ? { code, lines: texts } : { code, enhanced, lines: texts };
}

/** The reply's text on one line. */
export function replyText(reply: SmtpReply): string {
  return reply.lines.join(' ').trim();
}

/** `2`, `3`, `4` or `5`. */
export function replyClass(reply: SmtpReply): number {
  return Math.floor(reply.code / 100);
}
