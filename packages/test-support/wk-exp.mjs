import { launchWebKit } from './src/browsers.js';
import { serveFiles } from './src/net.js';

const srv = await serveFiles({ '/': { type: 'text/html', body: '<!doctype html><p>x' } });
const w = await launchWebKit();
try {
  await w.browser.url(srv.origin + '/');
  const r = await w.browser.executeAsync((done) => {
    const req = indexedDB.open('t' + Math.random(), 1);
    req.onupgradeneeded = () => {
      const s = req.result.createObjectStore('m', { keyPath: 'id' });
      s.createIndex('r', 'r');
    };
    req.onsuccess = async () => {
      const db = req.result;
      const tx = db.transaction('m', 'readwrite');
      const s = tx.objectStore('m');
      s.put({ id: 'a', r: null });
      s.put({ id: 'b', r: 5 });
      s.put({ id: 'c' });
      tx.oncomplete = () => {
        const t2 = db.transaction('m');
        const ix = t2.objectStore('m').index('r');
        const out = {};
        const a = ix.getAllKeys();
        a.onsuccess = () => (out.noArg = a.result);
        const b = ix.getAllKeys(undefined);
        b.onsuccess = () => (out.undef = b.result);
        const c = ix.getAllKeys(null);
        c.onsuccess = () => (out.nul = c.result);
        const d = ix.getAllKeys(undefined, 10);
        d.onsuccess = () => (out.undefCount = d.result);
        const g = ix.getAllKeys(IDBKeyRange.lowerBound(-Infinity));
        g.onsuccess = () => (out.range = g.result);
        const h = ix.getAllKeys(IDBKeyRange.upperBound(100));
        h.onsuccess = () => (out.upper = h.result);
        const k = ix.openKeyCursor();
        const ck = [];
        k.onsuccess = () => {
          if (k.result) {
            ck.push(k.result.primaryKey);
            k.result.continue();
          } else out.cursor = ck;
        };
        out.secure = isSecureContext;
        const e = ix.count();
        e.onsuccess = () => (out.count = e.result);
        const f = ix.getAll(undefined, 1);
        f.onsuccess = () => (out.getAll1 = f.result);
        out.durability = String(t2.durability);
        out.storage = typeof navigator.storage?.estimate;
        out.bc = typeof BroadcastChannel;
        out.locks = typeof navigator.locks;
        t2.oncomplete = () => done(out);
      };
    };
  });
  console.log(r);
} finally {
  await w.close();
  await srv.close();
}
