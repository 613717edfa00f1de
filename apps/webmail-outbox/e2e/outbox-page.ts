/**
 * Drives the outbox page through its stable `data-testid` selectors (README.md, "Selectors").
 * For the e2e tests here and the lead's end-to-end tests against the real relay Worker.
 */
import type { Locator, Page } from 'playwright-core';

/** `[data-testid="…"]`. */
export const byTestId = (id: string): string => `[data-testid="${id}"]`;

/** A mail to compose. */
export interface Mail {
  readonly from?: string;
  readonly to: string;
  readonly cc?: string;
  readonly bcc?: string;
  readonly subject: string;
  readonly body: string;
  /** Files to attach: name, MIME type and contents. */
  readonly attachments?: { name: string; mimeType: string; buffer: Buffer }[];
}

/** The page object. */
export class OutboxPage {
  constructor(readonly page: Page) {}

  /** Opens the page and waits until the lists were rendered once. */
  async open(url: string): Promise<void> {
    await this.page.goto(url);
    await this.ready();
  }

  /** Waits until the lists were rendered once (after a load or a reload). */
  async ready(): Promise<void> {
    await this.page.waitForSelector('body[data-ready="true"]');
  }

  /** Waits until the service worker controls the page (so the shell is cached for offline reloads). */
  async serviceWorkerReady(): Promise<void> {
    await this.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) =>
          navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }),
        );
      }
    });
  }

  /** Fills the compose form and presses Send; resolves once the form reported "Queued". */
  async compose(mail: Mail): Promise<void> {
    const p = this.page;
    if (mail.from !== undefined) await p.fill(byTestId('compose-from'), mail.from);
    await p.fill(byTestId('compose-to'), mail.to);
    await p.fill(byTestId('compose-cc'), mail.cc ?? '');
    await p.fill(byTestId('compose-bcc'), mail.bcc ?? '');
    await p.fill(byTestId('compose-subject'), mail.subject);
    await p.fill(byTestId('compose-body'), mail.body);
    if (mail.attachments) await p.setInputFiles(byTestId('compose-attachments'), mail.attachments);
    await p.locator(byTestId('compose-notice')).evaluate((el) => {
      el.textContent = '';
    });
    await p.click(byTestId('compose-send'));
    await p.waitForFunction(
      (sel) => document.querySelector(sel)?.textContent?.startsWith('Queued'),
      byTestId('compose-notice'),
    );
  }

  /** The Outbox rows. */
  outboxRows(): Locator {
    return this.page.locator(byTestId('outbox-row'));
  }

  /** The Sent rows. */
  sentRows(): Locator {
    return this.page.locator(byTestId('sent-row'));
  }

  /** `{ id, state, subject }` of every Outbox row, top to bottom. */
  async outbox(): Promise<{ id: string; state: string; subject: string }[]> {
    return this.outboxRows().evaluateAll((rows) =>
      rows.map((row) => ({
        id: row.getAttribute('data-id') ?? '',
        state: row.getAttribute('data-state') ?? '',
        subject: row.querySelector('[data-testid="outbox-row-subject"]')?.textContent ?? '',
      })),
    );
  }

  /** `{ id, subject }` of every Sent row. */
  async sent(): Promise<{ id: string; subject: string }[]> {
    return this.sentRows().evaluateAll((rows) =>
      rows.map((row) => ({
        id: row.getAttribute('data-id') ?? '',
        subject: row.querySelector('[data-testid="sent-row-subject"]')?.textContent ?? '',
      })),
    );
  }
}
