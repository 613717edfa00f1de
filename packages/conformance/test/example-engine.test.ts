/**
 * The engine-author guide's example engine (examples/map-engine.ts) passes the whole suite, with
 * the harness hooks that let the suite reach below the contract.
 */

import { MapEngine, MapStore } from '../examples/map-engine.js';
import { runConformance } from '../src/index.js';

const stores = new Map<string, MapStore>();

runConformance<MapEngine>({
  name: 'MapEngine (the engine-author guide example)',
  createEngine: ({ clock, store, maxMessageBytes }) => {
    const shared = stores.get(store) ?? new MapStore();
    stores.set(store, shared);
    return new MapEngine({ clock, store: shared, ...(maxMessageBytes ? { maxMessageBytes } : {}) });
  },
  disposeEngine: (_engine, { store }) => {
    stores.delete(store);
  },
  injectFault: (engine, write) => engine.store.failAtWrite(write),
  footprint: (engine) => engine.store.footprint(),
  modelRuns: 25,
});
