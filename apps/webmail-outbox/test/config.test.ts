import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, SETTINGS_KEY, saveSettings } from '../src/config.js';

const BASE = 'http://page.test/outbox/';
const file = { relayUrl: 'http://127.0.0.1:8787/', token: 'from-file' };

function storage(initial: Record<string, string> = {}) {
  const map = new Map(Object.entries(initial));
  return {
    getItem: (k: string) => map.get(k) ?? null,
    setItem: (k: string, v: string) => void map.set(k, v),
  };
}

const serves =
  (body: unknown, status = 200): typeof fetch =>
  async (input) => {
    expect(String(input)).toBe('http://page.test/outbox/config.json');
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
  };
const offline: typeof fetch = async () => {
  throw new TypeError('Failed to fetch');
};
const noShared = async () => null;

describe('configuration', () => {
  it('prefers config.json next to the page, normalised', async () => {
    const saved = storage({
      [SETTINGS_KEY]: JSON.stringify({ relayUrl: 'http://other', token: 'x' }),
    });
    expect(await loadConfig(BASE, saved, serves(file), noShared)).toEqual({
      config: { relayUrl: 'http://127.0.0.1:8787', token: 'from-file' },
      source: 'config.json',
    });
  });

  it('falls back to the saved settings when there is no usable file', async () => {
    const saved = storage();
    saveSettings(saved, { relayUrl: 'https://relay.example/', token: ' t ' });
    for (const fetchImpl of [
      serves('nope', 404),
      serves('<!doctype html>'),
      serves({ relayUrl: 'ftp://x', token: 't' }),
    ]) {
      expect(await loadConfig(BASE, saved, fetchImpl, noShared)).toEqual({
        config: { relayUrl: 'https://relay.example', token: 't' },
        source: 'settings',
      });
    }
    expect(await loadConfig(BASE, storage(), serves('nope', 404), noShared)).toEqual({
      config: null,
      source: 'none',
    });
  });

  it('offline, uses the last config.json the page shared', async () => {
    const last = parseConfig(file)!;
    expect(await loadConfig(BASE, storage(), offline, async () => last)).toEqual({
      config: last,
      source: 'config.json',
    });
    expect(await loadConfig(BASE, storage(), offline, noShared)).toEqual({
      config: null,
      source: 'none',
    });
  });

  it('takes undoSeconds (UNDO_SECONDS) from 0 to 60 whole seconds and ignores anything else', () => {
    const base = { relayUrl: 'http://127.0.0.1:8787', token: 't' };
    expect(parseConfig({ ...base, undoSeconds: 5 })?.undoSeconds).toBe(5);
    expect(parseConfig({ ...base, undoSeconds: 0 })?.undoSeconds).toBe(0);
    for (const bad of [61, -1, 2.5, '10', null]) {
      expect(parseConfig({ ...base, undoSeconds: bad })?.undoSeconds, String(bad)).toBeUndefined();
    }
  });

  it('refuses unusable settings with a TypeError and stores nothing', () => {
    const saved = storage();
    expect(() => saveSettings(saved, { relayUrl: 'javascript:alert(1)', token: 't' })).toThrow(
      TypeError,
    );
    expect(() => saveSettings(saved, { relayUrl: 'http://x', token: '  ' })).toThrow(TypeError);
    expect(saved.getItem(SETTINGS_KEY)).toBeNull();
  });
});
