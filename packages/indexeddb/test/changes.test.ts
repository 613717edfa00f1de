/**
 * Change events across engines (another tab, here another engine on the same database): the
 * BroadcastChannel posts are coalesced (src/changes.ts), and every event still arrives, in order.
 */
import 'fake-indexeddb/auto';
import type { ChangeEvent } from '@mailspool/core';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChangeBridge, POST_GAP_MS } from '../src/changes.js';
import { channelName, IndexedDbEngine } from '../src/index.js';

let counter = 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Every message posted on the channel of database `name`, as its `ChangeEvent`. */
function spyPosts(name: string): ChangeEvent[] {
  const posts: ChangeEvent[] = [];
  const post = BroadcastChannel.prototype.postMessage;
  vi.spyOn(BroadcastChannel.prototype, 'postMessage').mockImplementation(function (
    this: BroadcastChannel,
    message: unknown,
  ) {
    if (this.name === channelName(name)) posts.push(structuredClone(message) as ChangeEvent);
    post.call(this, message);
  });
  return posts;
}

const flatIds = (events: readonly ChangeEvent[], type: ChangeEvent['type']) =>
  events.filter((e) => e.type === type).flatMap((e) => e.ids);

describe('change events posted to other contexts', () => {
  // Regression: every storeMessage posted its own BroadcastChannel message, which in Chromium
  // made a loop of relaxed single writes ~0.8× of raw idb (bench/README.md, issue 8).
  it('a loop of single writes posts a few coalesced messages, and another engine hears every id in order', async () => {
    const factory = new IDBFactory();
    const name = `burst-${counter++}`;
    const writer = new IndexedDbEngine({ name, indexedDB: factory });
    const reader = new IndexedDbEngine({ name, indexedDB: factory });
    cleanups.push(
      () => writer.close(),
      () => reader.close(),
    );
    const heard: ChangeEvent[] = [];
    reader.subscribe((event) => heard.push(event));
    const posts = spyPosts(name);
    const s = await writer.connect();
    const ids: string[] = [];
    for (let n = 0; n < 200; n++) ids.push(await s.storeMessage({ meta: { n }, contents: `${n}` }));
    const leases = await s.claimDue({ limit: 200, ttl: 60_000 });
    for (const lease of leases) await s.deleteMessage(lease.id, { lease });
    await vi.waitFor(() => expect(flatIds(heard, 'deleted')).toHaveLength(200), {
      timeout: 5000,
      interval: 5,
    });
    const claimed = leases.map((lease) => lease.id);
    expect([...claimed].sort()).toEqual([...ids].sort());
    expect(flatIds(heard, 'stored')).toEqual(ids);
    expect(flatIds(heard, 'updated')).toEqual(claimed);
    expect(flatIds(heard, 'deleted')).toEqual(claimed);
    // Types arrive in the order they were published: all stored, then the claim, then deletes.
    const types = heard.map((e) => e.type).filter((t, k, all) => t !== all[k - 1]);
    expect(types).toEqual(['stored', 'updated', 'deleted']);
    expect(posts).toEqual(heard);
    // 401 changes; without coalescing, 401 posts.
    expect(posts.length).toBeLessThan(100);
  });

  it("a lone write's event is posted in the turn it committed, not after the gap", async () => {
    const name = `lone-${counter++}`;
    const e = new IndexedDbEngine({ name, indexedDB: new IDBFactory() });
    cleanups.push(() => e.close());
    const posts = spyPosts(name);
    const s = await e.connect();
    const id = await s.storeMessage({ meta: {}, contents: 'x' });
    expect(posts).toEqual([{ type: 'stored', ids: [id] }]);
  });
});

describe('ChangeBridge', () => {
  it('posts the first event at the end of the turn, merges what follows within the gap, and close() posts what is pending', async () => {
    const name = `bridge-${counter++}`;
    const bridge = new ChangeBridge(name);
    cleanups.push(() => bridge.close());
    const local: ChangeEvent[] = [];
    bridge.subscribe((event) => local.push(event));
    const posts = spyPosts(name);
    bridge.publish('stored', ['a']);
    bridge.publish('stored', ['b']);
    expect(posts).toEqual([]);
    await Promise.resolve();
    expect(posts).toEqual([{ type: 'stored', ids: ['a', 'b'] }]);
    // Within the gap (this code does not yield, so no timer can run): held and merged.
    bridge.publish('stored', ['c']);
    bridge.publish('stored', ['d', 'c']);
    bridge.publish('deleted', ['a']);
    bridge.publish('stored', ['e']);
    expect(posts).toHaveLength(1);
    bridge.close();
    expect(posts).toEqual([
      { type: 'stored', ids: ['a', 'b'] },
      { type: 'stored', ids: ['c', 'd'] },
      { type: 'deleted', ids: ['a'] },
      { type: 'stored', ids: ['e'] },
    ]);
    // This engine's own subscribers heard each event at once, as published.
    expect(local).toEqual([
      { type: 'stored', ids: ['a'] },
      { type: 'stored', ids: ['b'] },
      { type: 'stored', ids: ['c'] },
      { type: 'stored', ids: ['d', 'c'] },
      { type: 'deleted', ids: ['a'] },
      { type: 'stored', ids: ['e'] },
    ]);
    bridge.publish('stored', ['late']);
    await new Promise((resolve) => setTimeout(resolve, POST_GAP_MS * 2));
    expect(posts).toHaveLength(4);
  });

  it('posts held events once the gap has passed, without another publish', async () => {
    const name = `bridge-${counter++}`;
    const bridge = new ChangeBridge(name);
    cleanups.push(() => bridge.close());
    const posts = spyPosts(name);
    bridge.publish('updated', ['a']);
    await Promise.resolve();
    bridge.publish('updated', ['b']);
    expect(posts).toEqual([{ type: 'updated', ids: ['a'] }]);
    await vi.waitFor(() => expect(posts).toHaveLength(2), { timeout: 2000, interval: 2 });
    expect(posts[1]).toEqual({ type: 'updated', ids: ['b'] });
  });
});
