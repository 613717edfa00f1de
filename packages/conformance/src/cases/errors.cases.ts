/** Cases for the error contract: NOT_FOUND, SESSION_CLOSED, TypeError and TOO_LARGE, each leaving the store as it was. */
import type { Lease, StorageSession } from '@mailspool/core';
import { expect } from 'vitest';
import {
  type ConformanceCase,
  expectCode,
  expectTypeError,
  sampleMeta,
  snapshot,
} from '../harness.js';

const UNKNOWN = 'never-claimed-0123456789';

/** Every call that must reject NOT_FOUND for an id that does not exist (never claimed or deleted). */
function notFoundCalls(session: StorageSession, id: string): [string, () => Promise<unknown>][] {
  return [
    ['getMessageMeta', () => session.getMessageMeta(id)],
    ['getMessageMetaKey', () => session.getMessageMetaKey(id, 'sender')],
    ['setMessageMeta', () => session.setMessageMeta(id, { a: 1 })],
    ['setMessageMetaKey', () => session.setMessageMetaKey(id, 'a', 1)],
    ['setMessageMetaKey(undefined)', () => session.setMessageMetaKey(id, 'a', undefined)],
    ['getMessageContents', () => session.getMessageContents(id)],
    ['setMessageContents', () => session.setMessageContents(id, 'late')],
    ['setMessageRetry', () => session.setMessageRetry(id, 0)],
    ['lockMessage', () => session.lockMessage(id, 1000)],
    ['acquireLease', () => session.acquireLease(id, 1000)],
  ];
}

export const errorCases: ConformanceCase[] = [
  {
    name: 'reads and writes of a never-claimed id reject NOT_FOUND and create nothing',
    async run(h) {
      const session = await h.session();
      for (const [what, call] of notFoundCalls(session, UNKNOWN))
        await expectCode(call(), 'NOT_FOUND', what);
      expect(await session.getAllMessages()).toEqual([]);
      expect(await session.stats()).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
    },
  },
  {
    name: 'a deleted id is gone: late writers get NOT_FOUND and never resurrect it',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({
        meta: sampleMeta(),
        contents: 'x',
        retryAt: h.clock.now() + 5,
      });
      await session.lockMessage(id, 10_000);
      await session.deleteMessage(id);
      for (const [what, call] of notFoundCalls(session, id))
        await expectCode(call(), 'NOT_FOUND', what);
      expect(await session.getAllMessages()).toEqual([]);
      expect(await session.getActiveMessages()).toEqual([]);
      expect(await session.getDeferredMessages()).toEqual([]);
      expect(await session.stats()).toEqual({ total: 0, active: 0, deferred: 0, due: 0 });
    },
  },
  {
    name: 'deleteMessage is idempotent and, like unlockMessage, succeeds silently on unknown ids',
    async run(h) {
      const session = await h.session();
      await session.deleteMessage(UNKNOWN);
      await session.unlockMessage(UNKNOWN);
      const id = await session.storeMessage({ meta: {}, contents: 'x' });
      await session.deleteMessage(id);
      await session.deleteMessage(id);
      await session.unlockMessage(id);
      expect(await session.getAllMessages()).toEqual([]);
    },
  },
  {
    name: 'after close every call rejects SESSION_CLOSED, close is idempotent, and other sessions go on',
    async run(h) {
      const other = await h.session();
      const id = await other.storeMessage({ meta: {}, contents: 'x' });
      const lease: Lease = { id, token: 1, expiresAt: 0 };
      const session = await h.session();
      await session.close();
      await session.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['getActiveMessages', () => session.getActiveMessages()],
        ['getDeferredMessages', () => session.getDeferredMessages()],
        ['getAllMessages', () => session.getAllMessages()],
        ['claimMessageId', () => session.claimMessageId()],
        ['setMessageMeta', () => session.setMessageMeta(id, {})],
        ['setMessageMetaKey', () => session.setMessageMetaKey(id, 'a', 1)],
        ['getMessageMeta', () => session.getMessageMeta(id)],
        ['getMessageMetaKey', () => session.getMessageMetaKey(id, 'a')],
        ['setMessageContents', () => session.setMessageContents(id, 'y')],
        ['getMessageContents', () => session.getMessageContents(id)],
        ['setMessageRetry', () => session.setMessageRetry(id, 0)],
        ['lockMessage', () => session.lockMessage(id, 10)],
        ['unlockMessage', () => session.unlockMessage(id)],
        ['deleteMessage', () => session.deleteMessage(id)],
        ['storeMessage', () => session.storeMessage({ meta: {}, contents: 'x' })],
        ['storeMessages', () => session.storeMessages([])],
        ['acquireLease', () => session.acquireLease(id, 10)],
        ['renewLease', () => session.renewLease(lease, 10)],
        ['releaseLease', () => session.releaseLease(lease)],
        ['claimDue', () => session.claimDue({ limit: 1, ttl: 10 })],
        ['deleteMessages', () => session.deleteMessages([])],
        ['commitAttempt', () => session.commitAttempt(lease, { delete: true })],
        ['stats', () => session.stats()],
        // Even malformed arguments: a closed session says it is closed first.
        ['getMessageMeta(bad id)', () => session.getMessageMeta('bad id')],
      ];
      for (const [what, call] of calls) await expectCode(call(), 'SESSION_CLOSED', what);
      expect(await other.getAllMessages()).toEqual([id]);
      expect(await other.stats()).toEqual({ total: 1, active: 0, deferred: 0, due: 1 });
    },
  },
  {
    name: 'await using closes the session at the end of the block',
    async run(h) {
      const engine = await h.engine();
      let escaped: StorageSession | undefined;
      {
        await using session = await engine.connect();
        escaped = session;
        await session.claimMessageId();
      }
      await expectCode(escaped.getAllMessages(), 'SESSION_CLOSED');
    },
  },
  {
    name: 'malformed ids reject with TypeError and change nothing',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: sampleMeta(), contents: 'x' });
      const before = await snapshot(session);
      const bad: unknown[] = [
        '',
        'has space',
        'slash/no',
        'x'.repeat(129),
        'ü',
        42,
        null,
        undefined,
        {},
        ['a'],
      ];
      for (const value of bad) {
        const b = value as string;
        const label = `id ${JSON.stringify(value)}`;
        await expectTypeError(session.getMessageMeta(b), `getMessageMeta(${label})`);
        await expectTypeError(session.getMessageMetaKey(b, 'k'), `getMessageMetaKey(${label})`);
        await expectTypeError(session.setMessageMeta(b, {}), `setMessageMeta(${label})`);
        await expectTypeError(session.setMessageMetaKey(b, 'k', 1), `setMessageMetaKey(${label})`);
        await expectTypeError(session.getMessageContents(b), `getMessageContents(${label})`);
        await expectTypeError(session.setMessageContents(b, 'x'), `setMessageContents(${label})`);
        await expectTypeError(session.setMessageRetry(b, 0), `setMessageRetry(${label})`);
        await expectTypeError(session.lockMessage(b, 10), `lockMessage(${label})`);
        await expectTypeError(session.unlockMessage(b), `unlockMessage(${label})`);
        await expectTypeError(session.deleteMessage(b), `deleteMessage(${label})`);
        await expectTypeError(session.acquireLease(b, 10), `acquireLease(${label})`);
      }
      // The longest legal id is accepted (as an unknown id).
      await expectCode(session.getMessageMeta('a'.repeat(128)), 'NOT_FOUND');
      expect(await snapshot(session)).toEqual(before);
      expect(await session.getMessageMeta(id)).toEqual(sampleMeta());
    },
  },
  {
    name: 'meta that is not flat JSON rejects with TypeError and leaves the stored meta unchanged',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: { keep: 'me' }, contents: 'x' });
      const before = await snapshot(session);
      const badMeta: unknown[] = [
        null,
        'string',
        42,
        ['array'],
        new Date(0),
        new Map(),
        { nested: { a: 1 } },
        { n: Number.NaN },
        { n: Number.POSITIVE_INFINITY },
        { d: new Date(0) },
        { u: undefined },
        { f: () => 1 },
        { list: ['a', 1] },
        { list: [null] },
        { big: 10n },
        { bytes: new Uint8Array(1) },
      ];
      for (const meta of badMeta) {
        await expectTypeError(
          session.setMessageMeta(id, meta as never),
          `setMessageMeta(${String(meta)})`,
        );
        await expectTypeError(
          session.storeMessage({ meta: meta as never, contents: 'x' }),
          'storeMessage(bad meta)',
        );
      }
      const badValues: unknown[] = [
        Number.NaN,
        Number.NEGATIVE_INFINITY,
        {},
        [1],
        new Date(0),
        () => 1,
        10n,
      ];
      for (const value of badValues) {
        await expectTypeError(
          session.setMessageMetaKey(id, 'k', value as never),
          `setMessageMetaKey(${String(value)})`,
        );
      }
      await expectTypeError(
        session.setMessageMetaKey(id, 42 as never, 'v'),
        'setMessageMetaKey(number key)',
      );
      await expectTypeError(
        session.getMessageMetaKey(id, null as never),
        'getMessageMetaKey(null key)',
      );
      expect(await snapshot(session)).toEqual(before);
    },
  },
  {
    name: 'meta larger than 64 KiB as JSON rejects TOO_LARGE and changes nothing',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: { keep: 'me' }, contents: 'x' });
      const before = await snapshot(session);
      await expectCode(
        session.setMessageMeta(id, { big: 'x'.repeat(70_000) }),
        'TOO_LARGE',
        'setMessageMeta',
      );
      await expectCode(
        session.setMessageMetaKey(id, 'big', 'x'.repeat(70_000)),
        'TOO_LARGE',
        'setMessageMetaKey',
      );
      await expectCode(
        session.storeMessage({ meta: { big: 'x'.repeat(70_000) }, contents: 'x' }),
        'TOO_LARGE',
      );
      expect(await snapshot(session)).toEqual(before);
    },
  },
  {
    name: 'contents of a wrong type reject with TypeError; oversize contents reject TOO_LARGE; nothing changes',
    async run(h) {
      const engine = await h.createEngine({ maxMessageBytes: 1024 });
      const session = await h.session(engine);
      const id = await session.storeMessage({ meta: {}, contents: 'keep' });
      const before = await snapshot(session);
      for (const contents of [
        null,
        42,
        {},
        [1, 2],
        new ArrayBuffer(4),
        new Uint16Array(2),
        undefined,
      ]) {
        await expectTypeError(
          session.setMessageContents(id, contents as never),
          `setMessageContents(${String(contents)})`,
        );
        await expectTypeError(
          session.storeMessage({ meta: {}, contents: contents as never }),
          'storeMessage',
        );
      }
      await expectCode(
        session.setMessageContents(id, new Uint8Array(1025)),
        'TOO_LARGE',
        'setMessageContents(1025 bytes)',
      );
      await expectCode(
        session.setMessageContents(id, 'é'.repeat(513)),
        'TOO_LARGE',
        'setMessageContents(1026 UTF-8 bytes)',
      );
      await expectCode(
        session.storeMessage({ meta: {}, contents: new Uint8Array(1025) }),
        'TOO_LARGE',
        'storeMessage',
      );
      expect(await snapshot(session)).toEqual(before);
      // Exactly the limit is accepted.
      await session.setMessageContents(id, new Uint8Array(1024));
      expect((await session.getMessageContents(id)).byteLength).toBe(1024);
    },
  },
  {
    name: 'a batch with one bad message stores none of them',
    async run(h) {
      const engine = await h.createEngine({ maxMessageBytes: 1024 });
      const session = await h.session(engine);
      const good = { meta: sampleMeta(), contents: 'ok' };
      await expectTypeError(
        session.storeMessages([good, { meta: { n: Number.NaN }, contents: 'x' }]),
        'bad meta',
      );
      await expectCode(
        session.storeMessages([good, { meta: {}, contents: new Uint8Array(2000) }]),
        'TOO_LARGE',
        'oversize',
      );
      await expectTypeError(
        session.storeMessages([good, { meta: {}, contents: 'x', retryAt: Number.NaN }]),
        'bad retryAt',
      );
      await expectTypeError(session.storeMessages([good, null as never]), 'null item');
      await expectTypeError(session.storeMessages('nope' as never), 'not an array');
      expect(await session.getAllMessages()).toEqual([]);
    },
  },
  {
    name: 'bad ttl, limit, times and leases reject with TypeError and change nothing',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({ meta: {}, contents: 'x' });
      const lease = (await session.acquireLease(id, 1000))!;
      const before = await snapshot(session);
      for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '10', null]) {
        await expectTypeError(
          session.lockMessage(id, ttl as never),
          `lockMessage ttl ${String(ttl)}`,
        );
        await expectTypeError(
          session.acquireLease(id, ttl as never),
          `acquireLease ttl ${String(ttl)}`,
        );
        await expectTypeError(
          session.renewLease(lease, ttl as never),
          `renewLease ttl ${String(ttl)}`,
        );
        await expectTypeError(
          session.claimDue({ limit: 1, ttl: ttl as never }),
          `claimDue ttl ${String(ttl)}`,
        );
      }
      for (const limit of [-1, 1.5, Number.NaN, '1', null]) {
        await expectTypeError(
          session.claimDue({ limit: limit as never, ttl: 10 }),
          `claimDue limit ${String(limit)}`,
        );
      }
      await expectTypeError(session.claimDue(null as never), 'claimDue(null)');
      await expectTypeError(
        session.claimDue({ limit: 1, ttl: 10, now: Number.NaN }),
        'claimDue now NaN',
      );
      for (const at of [Number.NaN, Number.POSITIVE_INFINITY, '0', null]) {
        await expectTypeError(
          session.setMessageRetry(id, at as never),
          `setMessageRetry ${String(at)}`,
        );
        await expectTypeError(
          session.storeMessage({ meta: {}, contents: 'x', retryAt: at as never }),
          `storeMessage retryAt ${String(at)}`,
        );
      }
      await expectTypeError(
        session.setMessageRetry(id, undefined as never),
        'setMessageRetry(undefined)',
      );
      await expectTypeError(session.getDeferredMessages(Number.NaN), 'getDeferredMessages(NaN)');
      const badLeases: unknown[] = [
        null,
        {},
        { ...lease, token: 0 },
        { ...lease, token: 1.5 },
        { ...lease, token: '1' },
        { ...lease, id: 'bad id' },
        { ...lease, expiresAt: Number.NaN },
      ];
      for (const bad of badLeases) {
        await expectTypeError(
          session.renewLease(bad as never, 10),
          `renewLease(${JSON.stringify(bad)})`,
        );
        await expectTypeError(
          session.releaseLease(bad as never),
          `releaseLease(${JSON.stringify(bad)})`,
        );
        await expectTypeError(
          session.deleteMessages([bad as never]),
          `deleteMessages([${JSON.stringify(bad)}])`,
        );
        await expectTypeError(
          session.setMessageRetry(id, 0, { lease: bad as never }),
          'setMessageRetry bad lease',
        );
      }
      await expectTypeError(session.deleteMessages('x' as never), 'deleteMessages(string)');
      await expectTypeError(
        session.deleteMessages([lease, lease]),
        'deleteMessages with a duplicate',
      );
      await expectTypeError(session.setMessageRetry(id, 0, 'x' as never), 'options not an object');
      // The message is still there and the lease still current: nothing above touched it.
      const after = await snapshot(session);
      expect(after.messages).toEqual(before.messages);
      expect(after.active).toEqual([id]);
      await session.releaseLease(lease);
    },
  },
  {
    name: 'a lease for another message rejects with TypeError',
    async run(h) {
      const session = await h.session();
      const [a, b] = await session.storeMessages([
        { meta: {}, contents: 'a' },
        { meta: {}, contents: 'b' },
      ]);
      const lease = (await session.acquireLease(a!, 1000))!;
      await expectTypeError(session.setMessageRetry(b!, 0, { lease }), 'setMessageRetry');
      await expectTypeError(session.setMessageMeta(b!, {}, { lease }), 'setMessageMeta');
      await expectTypeError(session.setMessageMetaKey(b!, 'k', 1, { lease }), 'setMessageMetaKey');
      await expectTypeError(session.deleteMessage(b!, { lease }), 'deleteMessage');
      expect((await session.getAllMessages()).sort()).toEqual([a, b].sort());
      expect(await session.getMessageMeta(b!)).toEqual({});
    },
  },
];
