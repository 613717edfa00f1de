/** The HTTP API's rejections, tenant isolation, CORS, the admin API and the status page. */
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.js';
import { delayWarningOf } from '../../src/delivery.js';
import { tenantView } from '../../src/redact.js';
import { admin, api, base64, eventually, mail, queued, submit, tokens } from './helpers.js';

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe('rejections: the documented status and code, and nothing queued', () => {
  const cases: [string, () => Promise<Response>, number, string][] = [
    ['no token', () => submit(mail(['a@example.org'], 'x'), { token: null }), 401, 'UNAUTHORIZED'],
    [
      'a wrong token',
      () => submit(mail(['a@example.org'], 'x'), { token: 'not-a-valid-token-at-all' }),
      401,
      'UNAUTHORIZED',
    ],
    [
      'the admin token on the submission API',
      () => submit(mail(['a@example.org'], 'x'), { token: 'admin-token-0123456789abcdef' }),
      401,
      'UNAUTHORIZED',
    ],
    ['malformed JSON', () => submit('{"from": "a@example.com", "to": [', {}), 400, 'INVALID_JSON'],
    ['a body that is not an object', () => submit('[1,2]', {}), 400, 'INVALID_REQUEST'],
    [
      'another content type',
      () => submit(mail(['a@example.org'], 'x'), { contentType: 'text/plain' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'an oversize body',
      () => submit({ ...mail(['a@example.org'], 'x'), raw: base64('x'.repeat(70_000)) }),
      413,
      'TOO_LARGE',
    ],
    [
      'too many recipients',
      () => submit(mail(['a@x.org', 'b@x.org', 'c@x.org', 'd@x.org', 'e@x.org', 'f@x.org'], 'x')),
      400,
      'TOO_MANY_RECIPIENTS',
    ],
    [
      'CR/LF in a recipient',
      () => submit(mail(['a@example.org\r\nRCPT TO:<evil@example.net>'], 'x')),
      400,
      'INVALID_ADDRESS',
    ],
    [
      'CR/LF in the sender',
      () => submit(mail(['a@example.org'], 'x', 'a@example.com\r\nDATA')),
      400,
      'INVALID_ADDRESS',
    ],
    ['a recipient without @', () => submit(mail(['nobody'], 'x')), 400, 'INVALID_ADDRESS'],
    [
      'no recipients',
      () => submit({ from: 'a@example.com', to: [], raw: base64('x') }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'raw that is not base64',
      () => submit({ from: 'a@example.com', to: ['b@example.org'], raw: 'not base64!' }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'a bad Idempotency-Key',
      () => submit(mail(['a@example.org'], 'x'), { key: 'has space' }),
      400,
      'INVALID_REQUEST',
    ],
    [
      'GET on the submission route',
      () => api('/v1/messages', { headers: { authorization: `Bearer ${tokens.acme}` } }),
      405,
      'METHOD_NOT_ALLOWED',
    ],
    ['an unknown route', () => api('/v2/nothing'), 404, 'NOT_FOUND'],
  ];
  for (const [what, call, status, code] of cases) {
    it(`${what} → ${status} ${code}`, async () => {
      const before = await queued();
      const response = await call();
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toContain('application/json');
      expect(await errorCode(response)).toBe(code);
      expect(await queued()).toBe(before);
    });
  }
});

describe('tenant isolation', () => {
  it("a tenant can't read, hold or see another tenant's message; the admin can", async () => {
    const subject = `iso-${crypto.randomUUID()}`;
    const created = await submit(
      { ...mail(['x@example.org'], subject) },
      { tenant: 'globex', key: subject },
    );
    const { id } = (await created.json()) as { id: string };
    const asAcme = await api(`/v1/messages/${id}`, {
      headers: { authorization: `Bearer ${tokens.acme}` },
    });
    expect(asAcme.status).toBe(404);
    expect(await errorCode(asAcme)).toBe('NOT_FOUND');
    // The admin sees it under globex, not under acme.
    expect((await admin(`/admin/tenants/acme/messages/${id}`)).status).toBe(404);
    const asGlobexAdmin = await admin(`/admin/tenants/globex/messages/${id}`);
    expect([200, 404]).toContain(asGlobexAdmin.status); // 404 only if it was delivered already
    // Tenant ids that are not configured do not exist.
    expect((await admin('/admin/tenants/nobody/messages')).status).toBe(404);
  });
});

describe('CORS', () => {
  it('answers preflights for the configured origin only, and tags API responses', async () => {
    const ok = await api('/v1/messages', {
      method: 'OPTIONS',
      headers: { origin: 'https://mail.example.com', 'access-control-request-method': 'POST' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://mail.example.com');
    expect(ok.headers.get('access-control-allow-headers')).toContain('idempotency-key');
    const other = await api('/v1/messages', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example' },
    });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const refused = await submit(mail(['a@example.org'], 'x'), { token: null });
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('admin API', () => {
  it('requires the admin token', async () => {
    expect((await api('/admin/stats')).status).toBe(401);
    expect(
      (await api('/admin/stats', { headers: { authorization: `Bearer ${tokens.acme}` } })).status,
    ).toBe(401);
    expect((await api('/status')).status).toBe(401);
    expect((await api('/status')).headers.get('www-authenticate')).toContain('Basic');
  });

  it('hold keeps a message from delivery until release; delete removes it', async () => {
    const subject = `hold-${crypto.randomUUID()}`;
    const rcpt = `tempfail-${crypto.randomUUID()}@example.org`; // first attempt deferred: time to hold it
    const { id } = (await (await submit(mail([rcpt], subject), { key: subject })).json()) as {
      id: string;
    };
    await eventually(async () => {
      const body = (await (await admin(`/admin/tenants/acme/messages/${id}`)).json()) as {
        attempts: number;
      };
      expect(body.attempts).toBe(1);
    });
    const held = (await (
      await admin(`/admin/tenants/acme/messages/${id}/hold`, { method: 'POST' })
    ).json()) as { state: string };
    expect(held.state).toBe('held');
    const list = (await (await admin('/admin/tenants/acme/messages?state=held')).json()) as {
      messages: { id: string }[];
    };
    expect(list.messages.map((m) => m.id)).toContain(id);
    // A flush does not release held mail.
    await admin('/admin/tenants/acme/flush', { method: 'POST' });
    expect(
      ((await (await admin(`/admin/tenants/acme/messages/${id}`)).json()) as { state: string })
        .state,
    ).toBe('held');
    const released = (await (
      await admin(`/admin/tenants/acme/messages/${id}/release`, { method: 'POST' })
    ).json()) as { state: string };
    expect(['queued', 'sending']).toContain(released.state);
    await eventually(async () =>
      expect(
        ((await (await admin(`/admin/tenants/acme/messages/${id}`)).json()) as { state: string })
          .state,
      ).toBe('delivered'),
    );

    const other = `del-${crypto.randomUUID()}`;
    const rcpt2 = `tempfail-${crypto.randomUUID()}@example.org`;
    const { id: id2 } = (await (await submit(mail([rcpt2], other), { key: other })).json()) as {
      id: string;
    };
    await eventually(async () => {
      const body = (await (await admin(`/admin/tenants/acme/messages/${id2}`)).json()) as {
        attempts: number;
      };
      expect(body.attempts).toBe(1);
    });
    expect((await admin(`/admin/tenants/acme/messages/${id2}`, { method: 'DELETE' })).status).toBe(
      200,
    );
    expect(
      ((await (await admin(`/admin/tenants/acme/messages/${id2}`)).json()) as { state: string })
        .state,
    ).toBe('deleted');
    const again = await admin(`/admin/tenants/acme/messages/${id2}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({
      error: { code: 'ALREADY_FINAL', state: 'deleted' },
    });
  });

  it('stats count every tenant; the status page shows counts and recent failures', async () => {
    const subject = `status-${crypto.randomUUID()}`;
    const rcpt = `tempfail-${crypto.randomUUID()}@example.org`;
    const { id } = (await (await submit(mail([rcpt], subject), { key: subject })).json()) as {
      id: string;
    };
    await eventually(async () => {
      const body = (await (await admin(`/admin/tenants/acme/messages/${id}`)).json()) as {
        attempts: number;
      };
      expect(body.attempts).toBe(1);
    });
    const stats = (await (await admin('/admin/stats')).json()) as {
      total: { total: number; deferred: number };
    };
    expect(stats.total.total).toBeGreaterThanOrEqual(1);
    expect(stats.total.deferred).toBeGreaterThanOrEqual(1);
    const page = await api('/status', {
      headers: { authorization: `Basic ${btoa('ops:admin-token-0123456789abcdef')}` },
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('queue status');
    expect(html).toContain(id);
    expect(html).toContain('451');
    expect(html).toMatch(/data-testid="deferred">[1-9]/);
    await admin(`/admin/tenants/acme/messages/${id}`, { method: 'DELETE' });
  });
});

describe('response hardening', () => {
  it('the status page, admin and API responses forbid framing, sniffing and loading anything', async () => {
    const responses = [
      await api('/status', {
        headers: { authorization: `Basic ${btoa('ops:admin-token-0123456789abcdef')}` },
      }),
      await admin('/admin/stats'),
      await api('/v1/messages/s0.nothing', {
        headers: { authorization: `Bearer ${tokens.acme}` },
      }),
      await api('/status'),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 404, 401]);
    for (const response of responses) {
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }
  });

  it("a tenant's view of the last error names no internal host; the admin's keeps it", () => {
    const config = readConfig({
      QUEUE_SHARD: undefined as never,
      LIMITER: undefined as never,
      SMARTHOST_HOST: 'mx-internal.corp.example',
      SMARTHOST_PORT: '2525',
      SMARTHOST_TLS: 'off',
    });
    const view = (lastError: string) => tenantView({ id: 'x', lastError }, config).lastError;
    expect(view('4.0.0 connect: could not reach mx-internal.corp.example:2525 (refused)')).toBe(
      '4.0.0 connect: could not reach the smarthost (refused)',
    );
    expect(view('4.4.1 connect: connect ECONNREFUSED 10.1.2.3:2525')).toBe(
      '4.4.1 connect: connect ECONNREFUSED the smarthost',
    );
    expect(view('4.4.1 no route to [IPv6:fd00::1] or fd00::2')).toBe(
      '4.4.1 no route to the smarthost or the smarthost',
    );
    // Ordinary text (times, reply codes, addresses of the mail) is left alone.
    expect(view('451 4.3.0 greylisted at 12:30:45, retry for bob@example.org')).toBe(
      '451 4.3.0 greylisted at 12:30:45, retry for bob@example.org',
    );
  });
});

describe('configuration', () => {
  it('with the shipped production defaults and no SMARTHOST_HOST the Worker refuses to run, rather than deliver to a made-up host', () => {
    const shipped = {
      QUEUE_SHARD: undefined as never,
      LIMITER: undefined as never,
      SMARTHOST_PORT: '587',
      SMARTHOST_TLS: 'starttls',
    };
    expect(() => readConfig(shipped)).toThrow(/SMARTHOST_HOST must be set/);
    expect(readConfig({ ...shipped, SMARTHOST_HOST: 'smtp.example.com' }).smarthosts).toEqual([
      { host: 'smtp.example.com', port: 587, tls: 'starttls', auth: undefined },
    ]);
  });

  const base = {
    QUEUE_SHARD: undefined as never,
    LIMITER: undefined as never,
    TENANT_TOKENS: '{"acme":"acme-token-0123456789"}',
  };

  it("SMARTHOSTS is the ordered list (credentials from the secret SMARTHOST_CREDENTIALS by host:port), TENANT_SMARTHOSTS a tenant's own", () => {
    const config = readConfig({
      ...base,
      SMARTHOSTS: JSON.stringify([
        { host: 'a.example', port: 2525, tls: 'off' },
        { host: 'b.example', tls: 'on' },
        { host: 'c.example' },
      ]),
      SMARTHOST_CREDENTIALS: JSON.stringify({ 'b.example:465': { user: 'u', pass: 'p' } }),
      TENANT_SMARTHOSTS: JSON.stringify({ acme: [{ host: 'd.example', port: 25, tls: 'off' }] }),
      // The one-entry form's PORT and TLS (wrangler.jsonc sets them) are ignored with a list.
      SMARTHOST_PORT: '587',
      SMARTHOST_TLS: 'starttls',
    });
    expect(config.smarthosts).toEqual([
      { host: 'a.example', port: 2525, tls: 'off', auth: undefined },
      { host: 'b.example', port: 465, tls: 'on', auth: { user: 'u', pass: 'p' } },
      { host: 'c.example', port: 587, tls: 'starttls', auth: undefined },
    ]);
    expect(config.tenantSmarthosts.get('acme')).toEqual([
      { host: 'd.example', port: 25, tls: 'off', auth: undefined },
    ]);
    // A tenant's view names none of them.
    expect(
      tenantView({ id: 'x', lastError: '4.4.1 connect: d.example:25 down, then c.example' }, config)
        .lastError,
    ).toBe('4.4.1 connect: the smarthost down, then the smarthost');
  });

  it('bad smarthost settings name the setting', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ SMARTHOSTS: '[]' }, /SMARTHOSTS must be a JSON array of 1 to 5/],
      [{ SMARTHOSTS: '{"host":"a"}' }, /SMARTHOSTS must be a JSON array/],
      [{ SMARTHOSTS: '[{"host":"a b"}]' }, /SMARTHOSTS\[0\]\.host/],
      [{ SMARTHOSTS: '[{"host":"a","port":70000}]' }, /SMARTHOSTS\[0\]\.port/],
      [{ SMARTHOSTS: '[{"host":"a","tls":"maybe"}]' }, /SMARTHOSTS\[0\]\.tls/],
      [{ SMARTHOSTS: '[{"host":"a","pass":"x"}]' }, /SMARTHOST_CREDENTIALS/],
      [{ SMARTHOSTS: '[{"host":"a"}]', SMARTHOST_HOST: 'b' }, /not both/],
      [
        { SMARTHOSTS: '[{"host":"a"}]', SMARTHOST_USER: 'u', SMARTHOST_PASS: 'p' },
        /SMARTHOST_CREDENTIALS/,
      ],
      [{ SMARTHOST_HOST: 'a', TENANT_SMARTHOSTS: '{"nobody":[{"host":"a"}]}' }, /has no token/],
      [
        { SMARTHOST_HOST: 'a', TENANT_SMARTHOSTS: '{"acme":[]}' },
        /TENANT_SMARTHOSTS\.acme must be/,
      ],
      [
        { SMARTHOST_HOST: 'a', SMARTHOST_CREDENTIALS: '{"a:587":{"user":"u"}}' },
        /needs a string user and pass/,
      ],
      [
        { SMARTHOST_HOST: 'a', DELAY_WARNING_HOURS: '-1' },
        /DELAY_WARNING_HOURS must be an integer from 0/,
      ],
    ];
    for (const [env, message] of cases) {
      expect(() => readConfig({ ...base, ...env }), JSON.stringify(env)).toThrow(message);
    }
    expect(readConfig({ ...base, SMARTHOST_HOST: 'a' }).delayWarningHours).toBe(4);
    // 0 turns them off: the relay loop gets no delayWarning at all.
    expect(delayWarningOf({ delayWarningHours: 0 })).toEqual({});
    const { delayWarning } = delayWarningOf({ delayWarningHours: 4 });
    expect(delayWarning?.after).toBe(4 * 3_600_000);
    // From submission, or from a scheduled send's time when later.
    const envelope = {
      sender: 'a@x.example',
      recipients: ['b@x.example'],
      timestamp: 1000,
      attempts: 0,
    };
    expect(delayWarning?.since?.(envelope, {})).toBe(1000);
    expect(delayWarning?.since?.(envelope, { send_at: 5000 })).toBe(5000);
    expect(
      readConfig({ ...base, SMARTHOST_HOST: 'a', DELAY_WARNING_HOURS: '0' }).delayWarningHours,
    ).toBe(0);
  });
});
