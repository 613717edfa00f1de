/**
 * Where mail goes: an ordered list of smarthosts, tried in order within each attempt (the next
 * one on a connection failure or a 4xx at greeting/EHLO/STARTTLS: `FailoverRelayer`), for every
 * tenant (`SMARTHOSTS`, or the one-entry form `SMARTHOST_HOST`/`_PORT`/`_TLS`) or for one tenant
 * (`TENANT_SMARTHOSTS`). Credentials are never part of a list, which is a plain var: they come
 * from the secret `SMARTHOST_CREDENTIALS` (or `SMARTHOST_USER`/`SMARTHOST_PASS` for the one-entry
 * form), keyed by `host:port`, so one login serves a smarthost wherever it is listed.
 */
import { FailoverRelayer } from '@mailspool/relay';
import { createCloudflareRelayer } from '@mailspool/relay/cloudflare';
import { tenantEntries } from './settings.js';

export type SmarthostTls = 'on' | 'starttls' | 'off';

/** One smarthost, as configured. */
export interface Smarthost {
  readonly host: string;
  readonly port: number;
  readonly tls: SmarthostTls;
  readonly auth: { readonly user: string; readonly pass: string } | undefined;
}

/** What settings.ts and config.ts read from the environment for smarthosts. */
export interface SmarthostEnv {
  readonly SMARTHOSTS?: string;
  readonly TENANT_SMARTHOSTS?: string;
  readonly SMARTHOST_CREDENTIALS?: string;
  readonly SMARTHOST_HOST?: string;
  readonly SMARTHOST_PORT?: string;
  readonly SMARTHOST_TLS?: string;
  readonly SMARTHOST_USER?: string;
  readonly SMARTHOST_PASS?: string;
}

/** The most smarthosts one list may hold: each is a connection an attempt may open in turn. */
export const MAX_SMARTHOSTS = 5;

const HOST = /^[A-Za-z0-9.-]{1,253}$|^[0-9A-Fa-f:.]{2,45}$/;

function tlsOf(raw: unknown, name: string): SmarthostTls {
  const tls = raw ?? 'starttls';
  if (tls !== 'on' && tls !== 'starttls' && tls !== 'off')
    throw new Error(`${name} must be on, starttls or off`);
  return tls;
}

function portOf(raw: unknown, tls: SmarthostTls, name: string): number {
  if (raw === undefined || raw === '') return tls === 'on' ? 465 : 587;
  const port = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`${name} must be an integer from 1 to 65535, got ${JSON.stringify(raw)}`);
  return port;
}

type Credentials = ReadonlyMap<string, { readonly user: string; readonly pass: string }>;

/** `SMARTHOST_CREDENTIALS`: JSON `{ "host:port": { "user": "…", "pass": "…" } }`. */
function parseCredentials(raw: string | undefined): Credentials {
  const out = new Map<string, { user: string; pass: string }>();
  for (const [key, value] of tenantEntries(
    'SMARTHOST_CREDENTIALS',
    raw,
    '"host:port" → { "user", "pass" }',
  )) {
    const { user, pass } = (value ?? {}) as { user?: unknown; pass?: unknown };
    if (typeof user !== 'string' || typeof pass !== 'string' || user === '' || pass === '')
      throw new Error(`SMARTHOST_CREDENTIALS[${JSON.stringify(key)}] needs a string user and pass`);
    out.set(key, { user, pass });
  }
  return out;
}

/** A JSON list of smarthosts (`SMARTHOSTS`, one tenant's `TENANT_SMARTHOSTS` entry). */
function parseList(value: unknown, name: string, credentials: Credentials): Smarthost[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SMARTHOSTS) {
    throw new Error(
      `${name} must be a JSON array of 1 to ${MAX_SMARTHOSTS} { "host", "port", "tls" } objects`,
    );
  }
  return value.map((entry: unknown, index) => {
    const at = `${name}[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw new Error(`${at} must be an object { "host", "port", "tls" }`);
    const { host, port, tls, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.includes('user') || extra.includes('pass'))
      throw new Error(`${at}: credentials go in the secret SMARTHOST_CREDENTIALS, not in ${name}`);
    if (extra.length > 0) throw new Error(`${at} has unknown keys: ${extra.join(', ')}`);
    if (typeof host !== 'string' || !HOST.test(host))
      throw new Error(`${at}.host must be a host name or an IP literal`);
    const secure = tlsOf(tls, `${at}.tls`);
    const number = portOf(port, secure, `${at}.port`);
    return { host, port: number, tls: secure, auth: credentials.get(`${host}:${number}`) };
  });
}

/** The smarthost settings, checked: the default list and the per-tenant lists. */
export function readSmarthosts(
  env: SmarthostEnv,
  tenants: ReadonlySet<string>,
): {
  readonly smarthosts: readonly Smarthost[];
  readonly tenantSmarthosts: ReadonlyMap<string, readonly Smarthost[]>;
} {
  const credentials = parseCredentials(env.SMARTHOST_CREDENTIALS);
  let smarthosts: Smarthost[];
  if (env.SMARTHOSTS) {
    if (env.SMARTHOST_HOST)
      throw new Error('set SMARTHOSTS or SMARTHOST_HOST, not both (SMARTHOSTS is the list form)');
    if (env.SMARTHOST_USER || env.SMARTHOST_PASS)
      throw new Error('with SMARTHOSTS, credentials go in the secret SMARTHOST_CREDENTIALS');
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.SMARTHOSTS);
    } catch {
      parsed = undefined;
    }
    smarthosts = parseList(parsed, 'SMARTHOSTS', credentials);
  } else {
    if (!env.SMARTHOST_HOST)
      throw new Error(
        'SMARTHOST_HOST must be set: the smarthost that delivers the mail (or SMARTHOSTS, a list)',
      );
    const tls = tlsOf(env.SMARTHOST_TLS, 'SMARTHOST_TLS');
    const port = portOf(env.SMARTHOST_PORT, tls, 'SMARTHOST_PORT');
    const [single] = parseList(
      [{ host: env.SMARTHOST_HOST, port, tls }],
      'SMARTHOST_HOST',
      credentials,
    );
    const auth =
      env.SMARTHOST_USER && env.SMARTHOST_PASS
        ? { user: env.SMARTHOST_USER, pass: env.SMARTHOST_PASS }
        : single!.auth;
    smarthosts = [{ ...single!, auth }];
  }
  const tenantSmarthosts = new Map<string, readonly Smarthost[]>();
  for (const [tenant, list] of tenantEntries(
    'TENANT_SMARTHOSTS',
    env.TENANT_SMARTHOSTS,
    'tenant id → [{ "host", "port", "tls" }, …]',
    tenants,
  )) {
    tenantSmarthosts.set(tenant, parseList(list, `TENANT_SMARTHOSTS.${tenant}`, credentials));
  }
  return { smarthosts, tenantSmarthosts };
}

/** The smarthosts `tenant`'s mail goes to, in order: its own list, else the default one. */
export function smarthostsOf(
  config: {
    readonly smarthosts: readonly Smarthost[];
    readonly tenantSmarthosts: ReadonlyMap<string, readonly Smarthost[]>;
  },
  tenant: string,
): readonly Smarthost[] {
  return config.tenantSmarthosts.get(tenant) ?? config.smarthosts;
}

/**
 * The relayer over `list`: one SMTP relayer per smarthost, tried in order. `onFailover` hears
 * each switch to the next one (for the logs).
 */
export function smarthostRelayer(
  list: readonly Smarthost[],
  hostname: string,
  onFailover: (event: { id: string; from: string; to: string; reason: string }) => void,
): FailoverRelayer {
  const relayers = list.map((smarthost) =>
    createCloudflareRelayer({
      host: smarthost.host,
      port: smarthost.port,
      secureTransport: smarthost.tls,
      ehloName: hostname,
      ...(smarthost.auth ? { auth: smarthost.auth } : {}),
      // Plain-text AUTH only when TLS is explicitly off: a local smarthost in development.
      allowPlaintextAuth: smarthost.tls === 'off',
    }),
  );
  return new FailoverRelayer(relayers, { onFailover });
}
