/**
 * Exponential backoff with jitter: the ceiling starts at `minMs` and doubles per consecutive
 * failure up to `maxMs`; each delay is drawn from the upper half of the ceiling, so even the
 * unluckiest draw waits at least half of it (never a tight loop) and many clients that failed
 * together do not retry in lockstep.
 */
export class Backoff {
  private failures = 0;

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
  ) {
    if (!(minMs > 0) || !(maxMs >= minMs)) {
      throw new RangeError(`Invalid backoff range: ${minMs}..${maxMs} ms`);
    }
  }

  /** The delay before the next attempt; counts one more consecutive failure. */
  next(): number {
    // The exponent is capped so the ceiling stays finite however long the failures last.
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
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
