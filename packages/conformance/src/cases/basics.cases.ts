/** Cases for the seed's methods on the happy path: ids, meta, contents, storing. */
import { isMessageId } from '@mailspool/core';
import { expect } from 'vitest';
import { type ConformanceCase, expectCode, sampleMeta, utf8 } from '../harness.js';

export const basicCases: ConformanceCase[] = [
  {
    name: 'claimMessageId returns a new well-formed id that getAllMessages lists at once',
    async run(h) {
      const session = await h.session();
      const a = await session.claimMessageId();
      const b = await session.claimMessageId();
      expect(isMessageId(a)).toBe(true);
      expect(a).not.toBe(b);
      expect((await session.getAllMessages()).sort()).toEqual([a, b].sort());
    },
  },
  {
    name: 'a claimed id has empty meta, no contents, and is neither active, deferred nor due',
    async run(h) {
      const session = await h.session();
      const id = await session.claimMessageId();
      expect(await session.getMessageMeta(id)).toEqual({});
      expect(await session.getMessageMetaKey(id, 'sender')).toBeUndefined();
      await expectCode(
        session.getMessageContents(id),
        'NOT_FOUND',
        'getMessageContents before any write',
      );
      expect(await session.getActiveMessages()).toEqual([]);
      expect(await session.getDeferredMessages()).toEqual([]);
      expect(await session.stats()).toEqual({ total: 1, active: 0, deferred: 0, due: 0 });
      expect(await session.claimDue({ limit: 10, ttl: 1000 })).toEqual([]);
    },
  },
  {
    name: 'setMessageMeta replaces the whole meta and every value type round-trips exactly',
    async run(h) {
      const session = await h.session();
      const id = await session.claimMessageId();
      const meta = {
        text: 'héllo ✉ \u0000 "quoted"',
        empty: '',
        int: 42,
        negative: -7,
        float: 0.1 + 0.2,
        big: Number.MAX_SAFE_INTEGER,
        zero: 0,
        yes: true,
        no: false,
        nothing: null,
        list: ['x', 'y', ''],
        none: [],
      };
      await session.setMessageMeta(id, meta);
      const read = await session.getMessageMeta(id);
      expect(read).toEqual(meta);
      expect(Object.keys(read).sort()).toEqual(Object.keys(meta).sort());
      expect(typeof read.int).toBe('number');
      expect(Array.isArray(read.none)).toBe(true);
      await session.setMessageMeta(id, { only: 'this' });
      expect(await session.getMessageMeta(id)).toEqual({ only: 'this' });
    },
  },
  {
    name: 'setMessageMetaKey sets one key, undefined deletes it, getMessageMetaKey reads it',
    async run(h) {
      const session = await h.session();
      const id = await session.claimMessageId();
      await session.setMessageMeta(id, { attempts: 0, sender: 's@example.com' });
      await session.setMessageMetaKey(id, 'attempts', 1);
      await session.setMessageMetaKey(id, 'recipients', ['r@example.com']);
      expect(await session.getMessageMeta(id)).toEqual({
        attempts: 1,
        sender: 's@example.com',
        recipients: ['r@example.com'],
      });
      expect(await session.getMessageMetaKey(id, 'attempts')).toBe(1);
      expect(await session.getMessageMetaKey(id, 'recipients')).toEqual(['r@example.com']);
      await session.setMessageMetaKey(id, 'sender', undefined);
      expect(await session.getMessageMetaKey(id, 'sender')).toBeUndefined();
      expect(await session.getMessageMeta(id)).toEqual({
        attempts: 1,
        recipients: ['r@example.com'],
      });
      // Deleting an absent key is a no-op, not an error.
      await session.setMessageMetaKey(id, 'absent', undefined);
      expect(await session.getMessageMetaKey(id, 'toString')).toBeUndefined();
    },
  },
  {
    name: 'contents round-trip byte for byte; strings are stored as UTF-8',
    async run(h) {
      const session = await h.session();
      const id = await session.claimMessageId();
      const bytes = new Uint8Array(70_000);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 255;
      await session.setMessageContents(id, bytes);
      const read = await session.getMessageContents(id);
      expect(read).toBeInstanceOf(Uint8Array);
      expect(read.byteLength).toBe(bytes.byteLength);
      expect(Array.from(read)).toEqual(Array.from(bytes));

      const text = 'Subject: ünïcödé ✉\r\n\r\nBody 🚀\r\n';
      await session.setMessageContents(id, text);
      expect(Array.from(await session.getMessageContents(id))).toEqual(Array.from(utf8(text)));

      await session.setMessageContents(id, new Uint8Array(0));
      expect((await session.getMessageContents(id)).byteLength).toBe(0);
    },
  },
  {
    name: 'a subarray view is stored as exactly its own bytes',
    async run(h) {
      const session = await h.session();
      const backing = utf8('xxxxHELLOyyyy');
      const view = backing.subarray(4, 9);
      const id = await session.storeMessage({ meta: {}, contents: view });
      expect(new TextDecoder().decode(await session.getMessageContents(id))).toBe('HELLO');
    },
  },
  {
    name: 'storeMessage stores meta and contents in one step and the message is due at once',
    async run(h) {
      const session = await h.session();
      const id = await session.storeMessage({
        meta: sampleMeta(1),
        contents: 'Subject: hi\r\n\r\nbody\r\n',
      });
      expect(await session.getAllMessages()).toEqual([id]);
      expect(await session.getMessageMeta(id)).toEqual(sampleMeta(1));
      expect(new TextDecoder().decode(await session.getMessageContents(id))).toBe(
        'Subject: hi\r\n\r\nbody\r\n',
      );
      expect(await session.stats()).toEqual({ total: 1, active: 0, deferred: 0, due: 1 });
      expect(await session.getDeferredMessages()).toEqual([]);
      const leases = await session.claimDue({ limit: 5, ttl: 1000 });
      expect(leases.map((lease) => lease.id)).toEqual([id]);
    },
  },
  {
    name: 'storeMessage with a future retryAt is deferred and becomes due exactly at that time',
    async run(h) {
      const session = await h.session();
      const at = h.clock.now() + 60_000;
      const id = await session.storeMessage({ meta: sampleMeta(), contents: 'x', retryAt: at });
      expect(await session.getDeferredMessages()).toEqual([id]);
      expect(await session.getDeferredMessages(at - 1)).toEqual([]);
      expect(await session.getDeferredMessages(at)).toEqual([id]);
      expect(await session.stats()).toEqual({ total: 1, active: 0, deferred: 1, due: 0 });
      expect(await session.claimDue({ limit: 5, ttl: 1000 })).toEqual([]);
      h.clock.advance(59_999);
      expect(await session.claimDue({ limit: 5, ttl: 1000 })).toEqual([]);
      h.clock.advance(1);
      expect(await session.stats()).toEqual({ total: 1, active: 0, deferred: 0, due: 1 });
      expect((await session.claimDue({ limit: 5, ttl: 1000 })).map((l) => l.id)).toEqual([id]);
    },
  },
  {
    name: 'storeMessages stores every message of a batch; an empty batch stores nothing',
    async run(h) {
      const session = await h.session();
      expect(await session.storeMessages([])).toEqual([]);
      const items = Array.from({ length: 25 }, (_, n) => ({
        meta: sampleMeta(n),
        contents: `message ${n}`,
      }));
      const ids = await session.storeMessages(items);
      expect(ids).toHaveLength(25);
      expect(new Set(ids).size).toBe(25);
      expect((await session.getAllMessages()).sort()).toEqual([...ids].sort());
      for (const [n, id] of ids.entries()) {
        expect(await session.getMessageMeta(id)).toEqual(sampleMeta(n));
        expect(new TextDecoder().decode(await session.getMessageContents(id))).toBe(`message ${n}`);
      }
      expect((await session.stats()).due).toBe(25);
    },
  },
  {
    name: 'values read are copies, and values written are copied: later mutation changes nothing stored',
    async run(h) {
      const session = await h.session();
      const meta = { recipients: ['a@example.com'], n: 1 };
      const contents = utf8('original');
      const id = await session.storeMessage({ meta, contents });
      meta.recipients.push('mutated@example.com');
      meta.n = 2;
      contents[0] = 0;
      const read = await session.getMessageMeta(id);
      expect(read).toEqual({ recipients: ['a@example.com'], n: 1 });
      (read.recipients as string[]).push('again');
      const bytes = await session.getMessageContents(id);
      bytes[0] = 0;
      expect(await session.getMessageMeta(id)).toEqual({ recipients: ['a@example.com'], n: 1 });
      expect(new TextDecoder().decode(await session.getMessageContents(id))).toBe('original');
    },
  },
  {
    name: 'sessions of one engine share one store',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      const id = await a.storeMessage({ meta: { k: 'v' }, contents: 'c' });
      expect(await b.getMessageMeta(id)).toEqual({ k: 'v' });
      await b.setMessageMetaKey(id, 'k', 'w');
      expect(await a.getMessageMetaKey(id, 'k')).toBe('w');
      await a.close();
      expect(await b.getAllMessages()).toEqual([id]);
    },
  },
];
