/**
 * The conformance harness hooks for the IndexedDB engine, shared by the Node (fake-indexeddb)
 * and browser runs: a write fault through the engine's `beforeWrite` seam, the footprint read
 * from the database itself (rows of both stores, bytes of contents), and a restart that closes
 * the engine's connection and opens the database again.
 */
import type { ConformanceOptions, EngineContext } from '@mailspool/conformance';
import { ErrorCode, MailspoolError } from '@mailspool/core';
import { wrap } from 'idb';
import { IndexedDbEngine, type IndexedDbEngineOptions } from '../src/index.js';

/** Armed faults, per store (database) name. */
const faults = new Map<string, { at: number; writes: number }>();

type Hooks = Pick<
  ConformanceOptions<IndexedDbEngine>,
  'createEngine' | 'injectFault' | 'footprint' | 'restart'
>;

/** The hooks, for engines built by `build(context, options)` on database `context.store`. */
export function conformanceHooks(
  factoryOf: (store: string) => IDBFactory | undefined,
  extra: Partial<IndexedDbEngineOptions> = {},
): Hooks {
  const build = ({ clock, store, maxMessageBytes }: EngineContext) =>
    new IndexedDbEngine({
      ...extra,
      name: store,
      indexedDB: factoryOf(store),
      clock,
      ...(maxMessageBytes ? { maxMessageBytes } : {}),
      beforeWrite: () => {
        const fault = faults.get(store);
        if (fault === undefined) return;
        if (++fault.writes === fault.at) {
          faults.delete(store);
          throw new MailspoolError(ErrorCode.UNAVAILABLE, 'storage write failed (injected fault)');
        }
      },
    });
  return {
    createEngine: build,
    injectFault: (_engine, write, { store }) => {
      if (write === undefined) faults.delete(store);
      else faults.set(store, { at: write, writes: 0 });
    },
    footprint: async (_engine, { store }) => {
      const request = (factoryOf(store) ?? indexedDB).open(store);
      const db = wrap(
        await new Promise<IDBDatabase>((resolve, reject) => {
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        }),
      );
      try {
        const tx = db.transaction(['messages', 'contents'], 'readonly');
        const [messages, contents] = await Promise.all([
          tx.objectStore('messages').count(),
          tx.objectStore('contents').getAll(),
        ]);
        const bytes = contents.reduce((sum, value) => sum + (value as Uint8Array).byteLength, 0);
        return { rows: messages + contents.length, bytes };
      } finally {
        db.close();
      }
    },
    restart: async (engine, context) => {
      await engine.close();
      return build(context);
    },
  };
}
