/** The SMTP client's pure parts: address checks, dot-stuffing, message size, reply parsing, MTA names. */
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
import { encodeMessage } from '../src/smtp/data.js';
import { hostAsMtaName, serverName } from '../src/smtp/remote-mta.js';
import { buildReply, replyText } from '../src/smtp/reply.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const data = (text: string) => dec.decode(encodeData(enc.encode(text)));

describe('addresses', () => {
  it('accepts ordinary addresses and <> as a sender', () => {
    for (const ok of ['a@b.test', 'first.last+tag@sub.example.test', "o'hara@x.test"]) {
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
    ['x@[192.0.2.1]', 'has an address literal as its domain (not supported)'],
    ['a@b@b.test', 'contains more than one @'],
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

describe('message size (RFC 1870)', () => {
  const size = (text: string) => encodeMessage(enc.encode(text)).messageSize;

  it('counts the message after line-end normalisation, without stuffing dots or the final .CRLF', () => {
    expect(size('a\r\nb\r\n')).toBe(6);
    // Bare LF and bare CR become CRLF; a missing final CRLF is added.
    expect(size('a\nb\rc')).toBe(9);
    // The dots that stuffing adds are transport: lines starting with dots count as they are.
    expect(size('.\r\n..x\r\n')).toBe(8);
    expect(size('')).toBe(0);
  });

  it('is what a receiver gets from the DATA bytes once it removes the transparency', () => {
    const { bytes, messageSize } = encodeMessage(enc.encode('.a\n..b\nc.\n.'));
    const received = dec
      .decode(bytes)
      .replace(/\r\n\.\r\n$/, '\r\n')
      .replace(/^\./gm, '');
    expect(received).toBe('.a\r\n..b\r\nc.\r\n.\r\n');
    expect(messageSize).toBe(enc.encode(received).length);
  });
});

describe('MTA names', () => {
  it('takes the first word of a greeting or EHLO line when it is a fully qualified name', () => {
    expect(serverName('mx1.example.com ESMTP Postfix')).toBe('mx1.example.com');
    expect(serverName('peer.test Nice to meet you')).toBe('peer.test');
    expect(serverName('  xn--80ak6aa92e.xn--p1ai ready')).toBe('xn--80ak6aa92e.xn--p1ai');
  });

  it('refuses words that are not host names', () => {
    for (const text of [
      'ESMTP ready',
      'localhost ESMTP',
      '127.0.0.1 ESMTP',
      '[127.0.0.1] ESMTP',
      '[IPv6:::1]',
      '-bad.example.com',
      'under_score.example.com',
      '',
      `${'a'.repeat(64)}.example.com`,
    ]) {
      expect(serverName(text), text).toBeUndefined();
    }
  });

  it('writes a configured IP address as an address literal and keeps a host name', () => {
    expect(hostAsMtaName('127.0.0.1')).toBe('[127.0.0.1]');
    expect(hostAsMtaName('::1')).toBe('[IPv6:::1]');
    expect(hostAsMtaName('2001:db8::25')).toBe('[IPv6:2001:db8::25]');
    expect(hostAsMtaName('smtp.example.net')).toBe('smtp.example.net');
    expect(hostAsMtaName('localhost')).toBe('localhost');
    expect(hostAsMtaName('[192.0.2.1]')).toBe('[192.0.2.1]');
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
