/**
 * Every file of the relay and limits projects ends with its tenants' due mail delivered (see `settled`), so
 * that no delivery it started runs on while vitest tears the file down.
 */
import { afterAll, inject } from 'vitest';
import { settled } from './helpers.js';

afterAll(async () => {
  await settled(inject('shards'));
}, 30_000);
