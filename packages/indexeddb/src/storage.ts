/**
 * Helpers over the Storage API (navigator.storage): ask the browser to keep the outbox, and
 * report how much of the origin's quota is used.
 */

/** Usage and quota of the origin, in bytes. */
export interface StorageEstimate {
  /** Bytes the origin uses (all its storage, not only this outbox). */
  readonly usage: number;
  /** Bytes the origin may use before writes fail with `QUOTA_EXCEEDED`. */
  readonly quota: number;
  /** Whether the browser promised not to evict the origin's data under storage pressure. */
  readonly persisted: boolean;
}

function storageManager(): StorageManager | undefined {
  return (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
}

/**
 * Asks the browser to make the origin's storage persistent, so an unsent outbox is not evicted
 * under storage pressure. Resolves `true` when storage is (or already was) persistent, `false`
 * when the browser declined or the Storage API is missing (workers lack `persist()`). Never
 * rejects.
 */
export async function requestPersistentStorage(): Promise<boolean> {
  const storage = storageManager();
  try {
    if (await storage?.persisted?.()) return true;
    return (await storage?.persist?.()) ?? false;
  } catch {
    return false;
  }
}

/**
 * Resolves with the origin's usage and quota, or `undefined` when the Storage API is missing
 * or refuses. Never rejects.
 */
export async function storageEstimate(): Promise<StorageEstimate | undefined> {
  const storage = storageManager();
  if (!storage?.estimate) return undefined;
  try {
    const [estimate, persisted] = await Promise.all([
      storage.estimate(),
      storage.persisted ? storage.persisted().catch(() => false) : Promise.resolve(false),
    ]);
    return { usage: estimate.usage ?? 0, quota: estimate.quota ?? 0, persisted };
  } catch {
    return undefined;
  }
}
