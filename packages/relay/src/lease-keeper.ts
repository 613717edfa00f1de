/**
 * Keeps a lease alive during a long delivery: renews it every `interval` through the injected
 * timers, and aborts `signal` as soon as the lease is known to be lost (someone else locked the
 * message: `STALE_LEASE`), or could not be renewed before it expired (someone else may take it
 * now). The relay loop passes `signal` to the relayer and writes nothing once it is aborted.
 */
import {
  type Clock,
  ErrorCode,
  isMailspoolError,
  type Lease,
  type StorageSession,
} from '@mailspool/core';
import { RelayError, RelayErrorCode } from './errors.js';
import type { Timers } from './timers.js';

/** Options of {@link keepLease}. */
export interface KeepLeaseOptions {
  /** The lease duration to renew with (ms). */
  readonly ttl: number;
  /** Renew this often (ms); default `ttl / 3`, so two renewals may fail before the lease expires. */
  readonly interval?: number;
  readonly timers: Timers;
  readonly clock: Clock;
  /** Called with each renewal failure that did not (yet) lose the lease. */
  readonly onRenewError?: (error: unknown) => void;
}

/** A running renewal loop. */
export interface LeaseKeeper {
  /** Aborted (reason: a `RelayError` with code `LEASE_LOST`) once the lease is lost. */
  readonly signal: AbortSignal;
  /** The latest lease (same token, later `expiresAt` after each renewal). */
  readonly lease: Lease;
  /** Stops renewing; resolves once no renewal is in flight. Never rejects. */
  stop(): Promise<void>;
}

/** Starts renewing `lease` on `session`. Throws `TypeError` for a ttl or interval that is not > 0. */
export function keepLease(
  session: StorageSession,
  lease: Lease,
  options: KeepLeaseOptions,
): LeaseKeeper {
  const { ttl, timers, clock, onRenewError } = options;
  const interval = options.interval ?? ttl / 3;
  if (!(ttl > 0) || !(interval > 0)) throw new TypeError('ttl and interval must be > 0');
  const controller = new AbortController();
  let current = lease;
  let handle: unknown;
  let inflight: Promise<void> | undefined;
  let stopped = false;

  const lose = (why: string, cause?: unknown): void => {
    if (controller.signal.aborted) return;
    controller.abort(
      new RelayError(RelayErrorCode.LEASE_LOST, `lease on ${lease.id} lost: ${why}`, { cause }),
    );
  };

  const renew = async (): Promise<void> => {
    try {
      current = await session.renewLease(current, ttl);
    } catch (error) {
      if (isMailspoolError(error, ErrorCode.STALE_LEASE)) {
        lose('it was taken over', error);
        return;
      }
      // The store may be briefly unavailable: keep the lease while it has not expired, since
      // nobody else can take it before then.
      if (clock.now() >= current.expiresAt) {
        lose('it expired before a renewal succeeded', error);
        return;
      }
      onRenewError?.(error);
    }
  };

  const schedule = (): void => {
    if (stopped || controller.signal.aborted) return;
    handle = timers.setTimeout(() => {
      inflight = renew().finally(() => {
        inflight = undefined;
        schedule();
      });
    }, interval);
  };
  schedule();

  return {
    signal: controller.signal,
    get lease() {
      return current;
    },
    async stop() {
      stopped = true;
      timers.clearTimeout(handle);
      await inflight;
    },
  };
}
