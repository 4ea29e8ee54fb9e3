import type { Backoff } from '../../common/backoff';
import { cmpIds, type EventId } from '../../common/ids';
import type { PointerMove } from './window';

/** What the pointer writer needs from the store. */
export interface PointerStore {
  /**
   * Moves the consumer's pointer forward to `to`, only if it is still `from` (and, with `epoch`,
   * while the consumer's owner_epoch is still that one); true if it is `to` now, false if
   * someone else moved it (or another acquisition took the consumer).
   */
  advanceConsumer(ident: string, to: EventId, from: EventId, epoch?: string): Promise<boolean>;
}

/** Time for the writer: now (ms, monotonic) and a cancellable timer. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns what cancels it. */
  later(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  later: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface PointerWriterHooks {
  /** Where the pointer may move now (see DeliveryWindow.pointerMove). */
  target(): PointerMove | null;
  /** The pointer is stored at `to`. */
  stored(to: EventId): void;
  /** Someone else moved the pointer: the writer stopped, the session must end. */
  movedElsewhere(): void;
  /** A write failed; it is tried again after `delayMs`. */
  failed(err: unknown, delayMs: number): void;
}

export interface PointerWriterOptions {
  /** A move past filtered-out events only is stored at most this often (ms). */
  skipStoreMs: number;
  /** Delays before retrying a failed write. */
  retry: Backoff;
  /**
   * The owner epoch of the session's acquisition (fencing): every write also requires it, so
   * a session whose node lost the consumer to another never moves the pointer.
   */
  epoch?: string;
}

/**
 * Stores a reliable consumer's pointer as its session's window allows: one write at a time,
 * each a compare-and-set from the pointer it stored last (and the session's owner epoch), so
 * that a move made by someone else (an administrator, a session of the consumer elsewhere, a
 * node that took the consumer over) is noticed and ends the session. A
 * move with an acknowledged batch is written at once; a move past filtered-out events only at
 * most every skipStoreMs after the last write started (storing it late only makes a new session
 * filter those events out again). A failed write is retried, backing off, with what is due then.
 */
export class PointerWriter {
  private writing = false;
  /** A pending timer: a retry after a failed write, or a deferred move past skips. */
  private waiting: { for: 'retry' | 'skip'; cancel: () => void } | null = null;
  private lastWriteAt = -Infinity;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly store: PointerStore,
    private readonly ident: string,
    private stored: EventId,
    private readonly hooks: PointerWriterHooks,
    private readonly options: PointerWriterOptions,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The pointer as this writer stored it last (or found it at the start). */
  get pointer(): EventId {
    return this.stored;
  }

  /** Writes what is due now, unless a write runs or waits to be retried. */
  kick(): void {
    if (this.closed || this.writing || this.waiting?.for === 'retry') return;
    const move = this.hooks.target();
    if (move === null || cmpIds(move.to, this.stored) <= 0) return;
    if (move.skipOnly) {
      const wait = this.lastWriteAt + this.options.skipStoreMs - this.clock.now();
      if (wait > 0) {
        this.waiting ??= { for: 'skip', cancel: this.clock.later(Math.ceil(wait), this.wake) };
        return;
      }
    }
    this.waiting?.cancel();
    this.waiting = null;
    void this.write(move.to);
  }

  /** No more writes; one running may finish, but changes nothing here. */
  close(): void {
    this.closed = true;
    this.waiting?.cancel();
    this.waiting = null;
  }

  private readonly wake = (): void => {
    this.waiting = null;
    this.kick();
  };

  private async write(to: EventId): Promise<void> {
    this.writing = true;
    this.lastWriteAt = this.clock.now();
    let ok: boolean;
    try {
      ok = await this.store.advanceConsumer(this.ident, to, this.stored, this.options.epoch);
    } catch (err) {
      this.writing = false;
      if (this.closed) return;
      const delay = this.options.retry.delay(++this.failures);
      this.waiting = { for: 'retry', cancel: this.clock.later(delay, this.wake) };
      this.hooks.failed(err, delay);
      return;
    }
    this.writing = false;
    if (this.closed) return;
    if (!ok) {
      this.close();
      this.hooks.movedElsewhere();
      return;
    }
    this.failures = 0;
    this.stored = to;
    this.hooks.stored(to);
    this.kick();
  }
}
