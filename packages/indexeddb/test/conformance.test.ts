import 'fake-indexeddb/auto';
import { runConformance } from '@mailspool/conformance';
import { IDBFactory } from 'fake-indexeddb';
import { IndexedDbEngine } from '../src/index.js';

// One fake-indexeddb factory per store name: same name → same databases (persistence cases),
// different names → isolated. The database name is the store name, fresh for every case.
const factories = new Map<string, IDBFactory>();

runConformance({
  name: 'IndexedDbEngine (fake-indexeddb)',
  createEngine: ({ clock, store, maxMessageBytes }) => {
    const factory = factories.get(store) ?? new IDBFactory();
    factories.set(store, factory);
    return new IndexedDbEngine({
      name: store,
      indexedDB: factory,
      clock,
      ...(maxMessageBytes ? { maxMessageBytes } : {}),
    });
  },
  disposeEngine: async (engine, { store }) => {
    await (engine as IndexedDbEngine).close();
    factories.delete(store);
  },
  modelRuns: Number(process.env.CONFORMANCE_RUNS ?? 50),
});
