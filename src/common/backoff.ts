import { checkDelayRange } from './options';

/**
 * Exponential backoff with jitter: the ceiling starts at `minMs` and doubles per consecutive
 * failure up to `maxMs`; each delay is drawn from the upper half of the ceiling, so even the
 * unluckiest draw waits at least half of it (never a tight loop) and many clients that failed
 * together do not retry in lockstep. The one implementation of this rule: the receivers'
 * reconnects, the push sessions' retries, the push waker's LISTEN reconnects and the store's
 * retries of transient database errors (withRetry) all use it.
 */
export class Backoff {
  private failures = 0;

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
  ) {
    checkDelayRange('Backoff', 'minMs', 'maxMs', minMs, maxMs);
  }

  /**
   * The delay before retry `n` (1, 2, ...), that is after `n` consecutive failures, without
   * counting anything: for callers that count failures themselves (per batch, say).
   */
  delay(n: number): number {
    // The exponent is capped so the ceiling stays finite however long the failures last.
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(Math.max(n, 1) - 1, 30));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  /** The delay before the next attempt; counts one more consecutive failure. */
  next(): number {
    return this.delay(++this.failures);
  }

  /** After a success: the next failure starts from `minMs` again. */
  reset(): void {
    this.failures = 0;
  }

  /** Consecutive failures counted so far. */
  get attempts(): number {
    return this.failures;
  }
}
