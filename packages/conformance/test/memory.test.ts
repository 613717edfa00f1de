import { MemoryEngine, MemoryStore } from '@mailspool/core';
import { runConformance } from '../src/index.js';

// Same store name → same MemoryStore, so a second engine shares the first one's state.
const stores = new Map<string, MemoryStore>();

runConformance({
  name: 'MemoryEngine',
  createEngine: ({ clock, store, maxMessageBytes }) => {
    const shared = stores.get(store) ?? new MemoryStore();
    stores.set(store, shared);
    return new MemoryEngine({
      clock,
      store: shared,
      ...(maxMessageBytes ? { maxMessageBytes } : {}),
    });
  },
  disposeEngine: (_engine, { store }) => {
    stores.delete(store);
  },
  modelRuns: Number(process.env.CONFORMANCE_RUNS ?? 100),
});
