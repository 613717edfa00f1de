import 'fake-indexeddb/auto';
import { runConformance } from '@mailspool/conformance';
import { IDBFactory } from 'fake-indexeddb';
import type { IndexedDbEngine } from '../src/index.js';
import { conformanceHooks } from './conformance-hooks.js';

// One fake-indexeddb factory per store name: same name → same databases (persistence cases),
// different names → isolated. The database name is the store name, fresh for every case.
const factories = new Map<string, IDBFactory>();
const factoryOf = (store: string) => {
  const factory = factories.get(store) ?? new IDBFactory();
  factories.set(store, factory);
  return factory;
};

runConformance<IndexedDbEngine>({
  name: 'IndexedDbEngine (fake-indexeddb)',
  ...conformanceHooks(factoryOf),
  disposeEngine: async (engine, { store }) => {
    await engine.close();
    factories.delete(store);
  },
  modelRuns: Number(process.env.CONFORMANCE_RUNS ?? 50),
});
