/**
 * Every file of the relay project ends with its tenants' due mail delivered (see `settled`), so
 * that no delivery it started runs on while vitest tears the file down.
 */
import { afterAll } from 'vitest';
import { settled } from './helpers.js';

afterAll(async () => {
  await settled();
}, 30_000);
