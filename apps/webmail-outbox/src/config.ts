/**
 * Runtime configuration of the outbox: where the relay Worker is and the tenant token to use.
 * Nothing is baked into the build. Order (README.md, "Configuration"):
 *
 * 1. `config.json` served next to the page (`{ "relayUrl": "...", "token": "..." }`), for
 *    deployments and the demo; when it can't be fetched at all (offline), the last copy the
 *    page shared (below) stands in for it;
 * 2. otherwise the settings form, saved in localStorage under {@link SETTINGS_KEY}.
 *
 * The effective configuration is also copied into Cache Storage ({@link shareConfig}) because a
 * service worker can read neither localStorage nor the page's memory.
 */

/** What the flusher needs to reach the relay. */
export interface RelayConfig {
  /** Base URL of the relay Worker, e.g. `http://127.0.0.1:8787` (no trailing `/v1`). */
  readonly relayUrl: string;
  /** A tenant token (`Authorization: Bearer …`). */
  readonly token: string;
  /** Optional default for the compose form's From field. */
  readonly from?: string;
  /** Seconds "Undo" is offered after Send (`UNDO_SECONDS`, 0–60; default 10). */
  readonly undoSeconds?: number;
}

/** Where the effective configuration came from. */
export type ConfigSource = 'config.json' | 'settings' | 'none';

/** localStorage key of the settings form. */
export const SETTINGS_KEY = 'mailspool-outbox.settings';
/** Cache Storage cache and entry through which the page hands the configuration to its service worker. */
export const CONFIG_CACHE = 'mailspool-outbox';
export const CONFIG_CACHE_KEY = '/__mailspool-outbox/config';

/**
 * The configuration in `value`, normalised, or `null` when it is not a usable one (a relay URL
 * that is not http(s), or an empty token).
 */
export function parseConfig(value: unknown): RelayConfig | null {
  if (typeof value !== 'object' || value === null) return null;
  const { relayUrl, token, from, undoSeconds } = value as Record<string, unknown>;
  if (typeof relayUrl !== 'string' || typeof token !== 'string' || token.trim() === '') {
    return null;
  }
  let url: URL;
  try {
    url = new URL(relayUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const config: { relayUrl: string; token: string; from?: string; undoSeconds?: number } = {
    relayUrl: url.href.replace(/\/+$/u, ''),
    token: token.trim(),
  };
  if (typeof from === 'string' && from.trim() !== '') config.from = from.trim();
  if (
    Number.isInteger(undoSeconds) &&
    (undoSeconds as number) >= 0 &&
    (undoSeconds as number) <= 60
  )
    config.undoSeconds = undoSeconds as number;
  return config;
}

/** The URL of `POST /v1/messages` on the configured relay. */
export function messagesUrl(config: RelayConfig): string {
  return `${config.relayUrl}/v1/messages`;
}

/**
 * Loads the configuration: `config.json` next to `base` when it exists and is valid; when it
 * can't be fetched (offline), the copy last shared with the service worker if it came from
 * config.json; else the saved settings. Never rejects: a missing or broken file falls through.
 */
export async function loadConfig(
  base: string | URL,
  storage: Pick<Storage, 'getItem'> | undefined,
  fetchImpl: typeof fetch = fetch,
  shared: () => Promise<RelayConfig | null> = readSharedConfig,
): Promise<{ config: RelayConfig | null; source: ConfigSource }> {
  let response: Response | null = null;
  try {
    response = await fetchImpl(new URL('config.json', base), { cache: 'no-store' });
  } catch {
    // Offline (or the server is down): the last config.json seen stands in, unless the
    // settings form is what configured the page.
    const last = await shared().catch(() => null);
    const saved = readSettings(storage);
    if (last && !(saved && saved.relayUrl === last.relayUrl && saved.token === last.token)) {
      return { config: last, source: 'config.json' };
    }
  }
  if (response?.ok) {
    // A dev server answers a missing file with its index.html: not JSON, so no config file.
    const config = parseConfig(await response.json().catch(() => null));
    if (config) return { config, source: 'config.json' };
  }
  const saved = readSettings(storage);
  return saved ? { config: saved, source: 'settings' } : { config: null, source: 'none' };
}

/** The settings saved by the form, or `null`. */
export function readSettings(storage: Pick<Storage, 'getItem'> | undefined): RelayConfig | null {
  try {
    const text = storage?.getItem(SETTINGS_KEY);
    return text ? parseConfig(JSON.parse(text)) : null;
  } catch {
    return null;
  }
}

/** Saves the settings form; throws `TypeError` when they are not a usable configuration. */
export function saveSettings(storage: Pick<Storage, 'setItem'>, value: unknown): RelayConfig {
  const config = parseConfig(value);
  if (!config) throw new TypeError('The relay URL must be http(s) and the token must not be empty');
  storage.setItem(SETTINGS_KEY, JSON.stringify(config));
  return config;
}

/** Copies the effective configuration where the service worker can read it (no-op without Cache Storage). */
export async function shareConfig(config: RelayConfig | null): Promise<void> {
  if (typeof caches === 'undefined') return;
  const cache = await caches.open(CONFIG_CACHE);
  if (config === null) await cache.delete(CONFIG_CACHE_KEY);
  else await cache.put(CONFIG_CACHE_KEY, new Response(JSON.stringify(config)));
}

/** The configuration the page shared, or `null` (used by the service worker). */
export async function readSharedConfig(): Promise<RelayConfig | null> {
  if (typeof caches === 'undefined') return null;
  try {
    const cache = await caches.open(CONFIG_CACHE);
    const response = await cache.match(CONFIG_CACHE_KEY);
    return response ? parseConfig(await response.json()) : null;
  } catch {
    return null;
  }
}
