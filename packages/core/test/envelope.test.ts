import { describe, expect, it } from 'vitest';
import { type Envelope, fromMeta, isMailspoolError, MemoryEngine, toMeta } from '../src/index.js';

const full: Envelope = {
  sender: 'alice@example.com',
  recipients: ['bob@example.org', 'carol@example.net'],
  client: {
    protocol: 'ESMTPSA',
    ehlo: 'mua.example.com',
    ip: '192.0.2.1',
    security: 'TLS',
    receiver: 'mx1',
    authInfo: 'alice',
  },
  destination: { relayer: 'smtp', host: 'smarthost.example.com', port: 587 },
  timestamp: 1_700_000_000_123,
  attempts: 2,
};

describe('Envelope ⇄ meta', () => {
  it("round-trips a full envelope with the seed's key names", () => {
    const meta = toMeta(full);
    expect(meta).toEqual({
      sender: 'alice@example.com',
      recipients: ['bob@example.org', 'carol@example.net'],
      timestamp: 1_700_000_000_123,
      attempts: 2,
      protocol: 'ESMTPSA',
      ehlo: 'mua.example.com',
      ip: '192.0.2.1',
      security: 'TLS',
      receiver: 'mx1',
      auth_info: 'alice',
      dest_relayer: 'smtp',
      dest_host: 'smarthost.example.com',
      dest_port: 587,
    });
    expect(fromMeta(meta)).toEqual(full);
  });

  it('round-trips a minimal envelope (null reverse-path, no client, no destination)', () => {
    const bounce: Envelope = {
      sender: '',
      recipients: ['alice@example.com'],
      timestamp: 5,
      attempts: 0,
    };
    expect(fromMeta(toMeta(bounce))).toEqual(bounce);
  });

  it('round-trips through a real engine', async () => {
    const session = await new MemoryEngine().connect();
    const id = await session.storeMessage({ meta: toMeta(full), contents: 'x' });
    expect(fromMeta(await session.getMessageMeta(id))).toEqual(full);
  });

  it('ignores meta keys that belong to other layers', () => {
    expect(fromMeta({ ...toMeta(full), delivered: ['bob@example.org'] })).toEqual(full);
  });

  it('toMeta refuses envelopes that could not round-trip', () => {
    expect(() => toMeta({ ...full, recipients: [] })).toThrow(TypeError);
    expect(() => toMeta({ ...full, sender: 5 as never })).toThrow(TypeError);
    expect(() => toMeta({ ...full, attempts: -1 })).toThrow(TypeError);
    expect(() => toMeta({ ...full, timestamp: Number.NaN })).toThrow(TypeError);
    expect(() => toMeta({ ...full, destination: { port: 1.5 } })).toThrow(TypeError);
  });

  it('fromMeta rejects malformed stored meta with CORRUPT', () => {
    const meta = toMeta(full);
    const broken = [
      { ...meta, sender: undefined },
      { ...meta, recipients: 'bob@example.org' },
      { ...meta, recipients: [] },
      { ...meta, timestamp: '1' },
      { ...meta, attempts: 1.5 },
      { ...meta, ehlo: 5 },
      { ...meta, dest_port: '25' },
    ];
    for (const bad of broken) {
      let caught: unknown;
      try {
        fromMeta(bad as never);
      } catch (error) {
        caught = error;
      }
      expect(isMailspoolError(caught, 'CORRUPT')).toBe(true);
    }
  });
});
