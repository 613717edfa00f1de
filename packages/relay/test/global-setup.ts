/**
 * Vitest globalSetup for the workerd tests: starts the scripted SMTP peer, a "canary" SMTP
 * server that injection tests must never reach, a raw SMTP server that holds its reply to QUIT,
 * and the HTTP control server, all on 127.0.0.1, and hands their ports to the tests with
 * `provide()` (read with `inject()`).
 */
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startRawSmtp } from './support/raw-smtp.js';
import { type SmtpPeer, startControl, startSmtpPeer } from './support/smtp-peer.js';

declare module 'vitest' {
  export interface ProvidedContext {
    smtpPort: number;
    canaryPort: number;
    rawPort: number;
    controlPort: number;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const main: SmtpPeer = await startSmtpPeer();
  const canary: SmtpPeer = await startSmtpPeer();
  const raw = await startRawSmtp({ holdQuit: true });
  const control = await startControl({ main, canary }, raw);
  project.provide('smtpPort', main.port);
  project.provide('canaryPort', canary.port);
  project.provide('rawPort', raw.port);
  project.provide('controlPort', (control.address() as AddressInfo).port);
  return async () => {
    control.closeAllConnections();
    await new Promise<void>((resolve) => control.close(() => resolve()));
    await Promise.all([main.close(), canary.close(), raw.close()]);
  };
}
