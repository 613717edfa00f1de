/**
 * `FailoverRelayer`: an ordered list of smarthosts, each an {@link SmtpRelayer}. Every delivery
 * starts with the first; when a smarthost can not be reached (the connection fails, or it answers
 * its greeting, EHLO or STARTTLS with a 4xx: see `SmtpAttempt.unreachable`) the next one is tried
 * within the same attempt, so a down or overloaded smarthost costs the message no attempt and no
 * retry delay. Any other answer is final for the attempt: a 5xx at connect, a refused login or a
 * reply to MAIL, RCPT or DATA is that smarthost's word on the message, and trying another one
 * could deliver it twice or hide a configuration error.
 */
import {
  type DeliverOptions,
  type DeliveryResult,
  formatDiagnostic,
  type OutgoingMessage,
  type Relayer,
} from '../relayer.js';
import type { SmtpRelayer } from './relayer.js';

/** A smarthost that could not be reached, and the next one about to be tried. */
export interface FailoverEvent {
  /** The queue id of the message. */
  readonly id: string;
  /** `host:port` of the smarthost that could not be reached. */
  readonly from: string;
  /** `host:port` of the one tried next. */
  readonly to: string;
  /** Why: the first recipient's diagnostic, as one line. */
  readonly reason: string;
}

export interface FailoverRelayerOptions {
  /** Called on every failover; exceptions it throws are ignored. */
  readonly onFailover?: (event: FailoverEvent) => void;
}

/** A `Relayer` over an ordered list of smarthosts, tried in order on connection failures. */
export class FailoverRelayer implements Relayer {
  readonly #relayers: readonly SmtpRelayer[];
  readonly #onFailover: ((event: FailoverEvent) => void) | undefined;

  /** Throws `TypeError` for an empty list. */
  constructor(relayers: readonly SmtpRelayer[], options: FailoverRelayerOptions = {}) {
    if (!Array.isArray(relayers) || relayers.length === 0)
      throw new TypeError('a FailoverRelayer needs at least one smarthost');
    this.#relayers = [...relayers];
    this.#onFailover = options.onFailover;
  }

  /** Resolves once every smarthost's connections are closed (see {@link SmtpRelayer.idle}). */
  async idle(): Promise<void> {
    await Promise.all(this.#relayers.map((relayer) => relayer.idle()));
  }

  /**
   * Delivers through the first smarthost that can be reached; when none can, resolves with the
   * last one's outcomes (every recipient deferred). Rejects only as `SmtpRelayer.deliver` does.
   */
  async deliver(message: OutgoingMessage, options: DeliverOptions): Promise<DeliveryResult> {
    const last = this.#relayers.length - 1;
    for (let index = 0; ; index++) {
      const relayer = this.#relayers[index]!;
      const attempt = await relayer.attempt(message, options);
      if (!attempt.unreachable || index === last) return attempt.result;
      const first = attempt.result.recipients[0];
      try {
        this.#onFailover?.({
          id: message.id,
          from: relayer.address,
          to: this.#relayers[index + 1]!.address,
          reason: first ? formatDiagnostic(first.diagnostic) : '',
        });
      } catch {
        // A logging hook must not change the delivery.
      }
    }
  }
}
