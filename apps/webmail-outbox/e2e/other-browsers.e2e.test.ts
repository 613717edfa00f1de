/**
 * The outbox page's offline flow in Debian's Firefox ESR and WebKitGTK (test-support's tabs.js
 * drives them), neither of which has Background Sync: the page's own flushes (on `online`, on
 * `visibilitychange`, at the stored retry time) must deliver on their own. Selectors are the
 * page's `data-testid`s (README "Selectors"), used through the DOM, as outbox-page.ts does with
 * Playwright.
 */
import { otherBrowsers } from '@mailspool/test-support/browsers';
import { type DrivenBrowser, launchTabs, type Tab } from '@mailspool/test-support/tabs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPage, type PageServer, servePage } from './server.js';

const TOKEN = 'e2e-tenant-token';

/** A mail to compose (attachments as text files). */
interface Draft {
  readonly to: string;
  readonly cc: string;
  readonly subject: string;
  readonly body: string;
  readonly attachment?: { readonly name: string; readonly type: string; readonly text: string };
}

/** Fills the compose form through the DOM, presses Send and waits for "Queued…" (in the page). */
async function compose(tab: Tab, draft: Draft): Promise<string> {
  return tab.run(async (d) => {
    const field = (id: string) =>
      document.querySelector(`[data-testid="${id}"]`) as HTMLInputElement | HTMLTextAreaElement;
    const set = (id: string, value: string) => {
      const input = field(id);
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    };
    set('compose-to', d.to);
    set('compose-cc', d.cc);
    set('compose-subject', d.subject);
    set('compose-body', d.body);
    if (d.attachment) {
      const files = new DataTransfer();
      files.items.add(
        new File([d.attachment.text], d.attachment.name, { type: d.attachment.type }),
      );
      const input = field('compose-attachments') as HTMLInputElement;
      input.files = files.files;
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }
    const notice = field('compose-notice') as unknown as HTMLElement;
    notice.textContent = '';
    (document.querySelector('[data-testid="compose-send"]') as HTMLButtonElement).click();
    for (let i = 0; i < 400; i++) {
      if (notice.textContent?.startsWith('Queued')) return notice.textContent;
      await new Promise((r) => setTimeout(r, 25));
    }
    return `not queued: ${notice.textContent} ${field('compose-error').textContent}`;
  }, draft);
}

const outboxRows = (tab: Tab) =>
  tab.run(
    () =>
      Array.from(document.querySelectorAll('[data-testid="outbox-row"]'), (row) => ({
        id: row.getAttribute('data-id') ?? '',
        state: row.getAttribute('data-state') ?? '',
        subject: row.querySelector('[data-testid="outbox-row-subject"]')?.textContent ?? '',
      })),
    undefined,
  );

const sentCount = (tab: Tab) =>
  tab.run(() => document.querySelectorAll('[data-testid="sent-row"]').length, undefined);

const ready = () => document.body.dataset.ready === 'true';

beforeAll(async () => {
  await buildPage();
}, 120_000);

describe.each(otherBrowsers)('webmail outbox in %s, without the relay Worker', (name) => {
  let server: PageServer;
  let browser: DrivenBrowser;

  beforeAll(async () => {
    server = await servePage({
      config: (origin) => ({ relayUrl: origin, token: TOKEN, from: 'alice@example.com' }),
      relayToken: TOKEN,
    });
    browser = await launchTabs(name);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  // Firefox: its offline emulation (navigator.onLine false, `offline`/`online` fire). WebKitGTK has
  // none over WebDriver and keeps navigator.onLine true: the network is lost by the server dropping
  // every connection, so the page's sends fail and wait for their retry time.
  const emulatesOffline = name === 'firefox';

  it(`keeps 3 mails composed ${emulatesOffline ? 'offline' : 'with the network gone'} queued across a reload, and posts each once when it is back, with no Background Sync`, async () => {
    const tab = await browser.openTab(`${server.origin}/`, ready);
    try {
      expect(await tab.run(() => 'SyncManager' in window, undefined)).toBe(false);
      // The service worker caches the shell: the reload below works without the network.
      await tab.run(async () => {
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
          await new Promise((resolve) =>
            navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }),
          );
        }
      }, undefined);

      if (emulatesOffline) {
        await tab.setOffline(true);
        expect(await tab.run(() => navigator.onLine, undefined)).toBe(false);
      } else {
        server.setReachable(false);
      }
      const subjects = ['Quarterly report', 'Lunch on Friday?', 'Re: the offsite — agenda ✓'];
      for (const [i, subject] of subjects.entries()) {
        const notice = await compose(tab, {
          to: `bob${i}@example.org`,
          cc: i === 0 ? 'carol@example.net' : '',
          subject,
          body: `Message ${i + 1}, written offline.`,
          ...(i === 0
            ? { attachment: { name: 'report.csv', type: 'text/csv', text: 'q,total\n4,42\n' } }
            : {}),
        });
        expect(notice).toMatch(/^Queued/);
      }
      await expect.poll(async () => (await outboxRows(tab)).length).toBe(3);

      await tab.reload();
      const rows = await outboxRows(tab);
      expect(rows.map((r) => r.subject).sort()).toEqual([...subjects].sort());
      expect(rows.every((r) => r.state !== 'sent')).toBe(true);
      expect(server.posts).toEqual([]);

      if (emulatesOffline) await tab.setOffline(false);
      else server.setReachable(true);
      // Firefox: `online` flushes at once. WebKitGTK: each mail's stored retry time (backoff from
      // 2.5–5 s after the first failed try, doubling) sends it: after an outage of T seconds the
      // wait is under 2T + 5 s, so the bound below holds for outages up to a minute (this one
      // takes a few seconds). (The visibilitychange flush can't be driven here: WebKitGTK windows
      // on Xvfb never become hidden; test/scheduler.test.ts has it.)
      await expect.poll(() => sentCount(tab), { timeout: 150_000, interval: 250 }).toBe(3);
      await expect.poll(async () => (await outboxRows(tab)).length, { timeout: 10_000 }).toBe(0);
      const ids = rows.map((r) => r.id).sort();
      expect(
        server.posts
          .filter((p) => p.status === 202)
          .map((p) => p.key)
          .sort(),
      ).toEqual(ids);
      expect(new Set(server.posts.map((p) => p.key)).size).toBe(3);
      const first = server.posts.find((p) =>
        Buffer.from(p.raw, 'base64').toString().includes('report.csv'),
      );
      expect(first?.to).toEqual(['bob0@example.org', 'carol@example.net']);
    } finally {
      await tab.close().catch(() => {});
    }
  }, 240_000);
});

// Safari suspends the timers of a hidden page; Firefox does with these preferences (by default it
// only slows them to one a second). With its retry timer stopped, a hidden outbox page sends
// nothing until it is shown again; then the page alone must send the mail: on `visibilitychange`
// it flushes, and the browser runs the overdue timer too (either one is enough; the scheduler's
// unit tests take the visibilitychange flush on its own). No Background Sync takes part.
describe('webmail outbox in firefox, a hidden page whose timers are stopped', () => {
  let server: PageServer;
  let browser: DrivenBrowser;

  beforeAll(async () => {
    server = await servePage({
      config: (origin) => ({ relayUrl: origin, token: TOKEN, from: 'alice@example.com' }),
      relayToken: TOKEN,
    });
    browser = await launchTabs('firefox', {
      firefoxPrefs: {
        'dom.timeout.enable_budget_timer_throttling': false,
        'dom.min_background_timeout_value': 3_600_000,
        'dom.min_background_timeout_value_without_budget_throttling': 3_600_000,
      },
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('sends a mail that fell due while the page was hidden, its timers stopped, once the page is shown again, with no Background Sync', async () => {
    const outbox = await browser.openTab(`${server.origin}/`, ready);
    let other: Tab | undefined;
    try {
      server.setReachable(false);
      const notice = await compose(outbox, {
        to: 'bob@example.org',
        cc: '',
        subject: 'Sent when shown',
        body: 'Queued while the relay was unreachable.',
      });
      expect(notice).toMatch(/^Queued/);
      // The first try fails; the row then carries the engine's retry time (2.5–5 s away).
      const retryAt = await pollRetryAt(outbox);

      other = await browser.openTab('about:blank');
      expect(await outbox.run(() => document.visibilityState, undefined)).toBe('hidden');
      server.setReachable(true);
      // Past the retry time (and the scheduler's guard) with the page hidden: nothing is sent.
      await expect
        .poll(() => Date.now() > retryAt + 3_000, { timeout: 15_000, interval: 250 })
        .toBe(true);
      expect(server.posts.filter((p) => p.status === 202)).toEqual([]);
      expect(await sentCount(outbox)).toBe(0);

      await outbox.bringToFront();
      await expect.poll(() => sentCount(outbox), { timeout: 30_000, interval: 250 }).toBe(1);
      expect(server.posts.filter((p) => p.status === 202)).toHaveLength(1);
    } finally {
      await other?.close().catch(() => {});
      await outbox.close().catch(() => {});
    }
  }, 120_000);
});

/** Waits until the only Outbox row has a retry time (its first try failed); resolves with it. */
async function pollRetryAt(tab: Tab): Promise<number> {
  let retryAt = Number.NaN;
  await expect
    .poll(
      async () => {
        retryAt = Number(
          await tab.run(
            () =>
              document.querySelector('[data-testid="outbox-row"]')?.getAttribute('data-retry-at') ??
              '',
            undefined,
          ),
        );
        return retryAt > 0;
      },
      { timeout: 30_000, interval: 100 },
    )
    .toBe(true);
  return retryAt;
}
