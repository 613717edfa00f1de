/** The SMTP client's pure parts: address checks, dot-stuffing, reply parsing. */
import { describe, expect, it } from 'vitest';
import {
  addressProblem,
  assertSmtpAddress,
  encodeData,
  hasEightBit,
  isRelayError,
  isSmtpAddress,
  parseReplyLine,
  RelayErrorCode,
} from '../src/index.js';
import { buildReply, replyText } from '../src/smtp/reply.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const data = (text: string) => dec.decode(encodeData(enc.encode(text)));

describe('addresses', () => {
  it('accepts ordinary addresses and <> as a sender', () => {
    for (const ok of [
      'a@b.test',
      'first.last+tag@sub.example.test',
      'x@[192.0.2.1]',
      "o'hara@x.test",
    ]) {
      expect(isSmtpAddress(ok, 'recipient')).toBe(true);
    }
    expect(isSmtpAddress('', 'sender')).toBe(true);
    expect(isSmtpAddress('', 'recipient')).toBe(false);
  });

  it.each([
    ['a@b.test\r\nRCPT TO:<evil@x.test>', 'contains CR or LF'],
    ['a@b.test\nDATA', 'contains CR or LF'],
    ['a@b.test\rx', 'contains CR or LF'],
    ['a\0@b.test', 'contains NUL'],
    ['a b@b.test', 'contains a space'],
    ['a@b.test> SIZE=1', 'contains < or >'],
    ['a@b.test SIZE=1', 'contains a space'],
    ['a@b.test>', 'contains < or >'],
    ['<a@b.test', 'contains < or >'],
    ['a\t@b.test', 'contains a control character'],
    ['a\x7f@b.test', 'contains a control character'],
    ['a\x1b@b.test', 'contains a control character'],
    ['jos\u00e9@b.test', 'contains a non-ASCII character'],
    ['no-at-sign', 'is not local@domain'],
    ['@b.test', 'is not local@domain'],
    ['a@', 'is not local@domain'],
    [`${'a'.repeat(250)}@b.test`, 'longer than 254 characters'],
  ])('refuses %j (%s) with INVALID_ADDRESS', (address, problem) => {
    expect(addressProblem(address, 'recipient')).toBe(problem);
    let caught: unknown;
    try {
      assertSmtpAddress(address, 'sender');
    } catch (error) {
      caught = error;
    }
    expect(isRelayError(caught, RelayErrorCode.INVALID_ADDRESS)).toBe(true);
  });

  it('refuses non-strings', () => {
    expect(addressProblem(42, 'sender')).toBe('not a string');
  });
});

describe('DATA encoding', () => {
  it('stuffs dots at line starts and ends with CRLF . CRLF', () => {
    expect(data('.\r\n..\r\n.a\r\nb.\r\n')).toBe('..\r\n...\r\n..a\r\nb.\r\n.\r\n');
    expect(data('.first')).toBe('..first\r\n.\r\n');
  });

  it('turns bare LF and bare CR into CRLF and adds a missing final CRLF', () => {
    expect(data('a\nb\rc\r\nd')).toBe('a\r\nb\r\nc\r\nd\r\n.\r\n');
    expect(data('x\n.\n')).toBe('x\r\n..\r\n.\r\n');
  });

  it('handles empty contents and keeps 8-bit bytes', () => {
    expect(data('')).toBe('.\r\n');
    const bytes = new Uint8Array([0xc3, 0xa9, 0x0a, 0xff]);
    expect([...encodeData(bytes)]).toEqual([0xc3, 0xa9, 13, 10, 0xff, 13, 10, 0x2e, 13, 10]);
    expect(hasEightBit(bytes)).toBe(true);
    expect(hasEightBit(enc.encode('plain'))).toBe(false);
  });
});

describe('replies', () => {
  it('parses single and multi-line replies with enhanced codes', () => {
    const lines = ['250-peer.test greets you', '250-SIZE 1000', '250 8BITMIME'].map(
      (l) => parseReplyLine(l)!,
    );
    expect(lines.map((l) => l.last)).toEqual([false, false, true]);
    expect(buildReply(lines)).toEqual({
      code: 250,
      lines: ['peer.test greets you', 'SIZE 1000', '8BITMIME'],
    });
    const rejected = buildReply([parseReplyLine('550 5.1.1 No such user')!]);
    expect(rejected).toEqual({ code: 550, enhanced: '5.1.1', lines: ['No such user'] });
    expect(replyText(rejected)).toBe('No such user');
    expect(parseReplyLine('354')).toEqual({ code: 354, last: true, text: '' });
  });

  it('ignores an enhanced code whose class does not match the reply', () => {
    expect(buildReply([parseReplyLine('450 5.1.1 odd')!]).enhanced).toBeUndefined();
  });

  it('rejects lines that are not replies', () => {
    for (const bad of ['', 'hello', '25 short', '999 nope', '250x', '650 six']) {
      expect(parseReplyLine(bad)).toBeUndefined();
    }
  });
});
