import { MemoryEngine, MemoryStore } from '@mailspool/core';
import { runConformance } from '../src/index.js';

// Same store name → same MemoryStore, so a second engine shares the first one's state.
const stores = new Map<string, MemoryStore>();

runConformance<MemoryEngine>({
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
  // MemoryEngine's primitives are synchronous between awaits, so no write can fail half-way:
  // there is no fault to inject. Its footprint is the store's map.
  footprint: (engine) => {
    let rows = 0;
    let bytes = 0;
    for (const { contents } of engine.store.messages.values()) {
      rows += contents === null ? 1 : 2;
      bytes += contents?.byteLength ?? 0;
    }
    return { rows, bytes };
  },
  modelRuns: Number(process.env.CONFORMANCE_RUNS ?? 100),
});
