import { systemClock, type Clock } from '../../common/async';
import type { Backoff } from '../../common/backoff';
import { cmpIds, type EventId } from '../../common/ids';
import type { PointerCondition } from '../../storage/dialects';
import type { PointerMove } from './window';

/** What the pointer writer needs from the store. */
export interface PointerStore {
  /**
   * Moves the consumer's pointer forward to `to` if `condition` still holds (written with other
   * sessions' writes: EventStore.storePointer); true if it is `to` now, false if someone else
   * moved it, or (with an epoch in `condition`) another acquisition took the consumer. A write
   * no longer `wanted` when it would be written is left out.
   */
  storePointer(
    ident: string,
    to: EventId,
    condition: PointerCondition,
    wanted: () => boolean,
  ): Promise<boolean>;
}

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
 * each a compare-and-set from the pointer it stored last and, with an epoch, the owner epoch of
 * the session's acquisition (its condition, see PointerCondition; the store groups the writes of
 * many sessions into one commit), so that a move made by someone else (an administrator, a
 * session of the consumer elsewhere, a node that took the consumer over) is noticed and ends the
 * session. A
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
  /** Write every move at once, skips too (the session is draining). */
  private flushing = false;

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
    if (move.skipOnly && !this.flushing) {
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

  /**
   * Whether nothing is left to store: no write running or waiting to be retried, and no move
   * due beyond what is stored.
   */
  get settled(): boolean {
    if (this.closed) return true;
    if (this.writing || this.waiting?.for === 'retry') return false;
    const move = this.hooks.target();
    return move === null || cmpIds(move.to, this.stored) <= 0;
  }

  /** From now on every move is written at once, a move past filtered-out events too. */
  flush(): void {
    this.flushing = true;
    if (this.waiting?.for === 'skip') {
      this.waiting.cancel();
      this.waiting = null;
    }
    this.kick();
  }

  /** No more writes; one running may finish, but changes nothing here. */
  close(): void {
    this.closed = true;
    this.waiting?.cancel();
    this.waiting = null;
  }

  /**
   * What a write checks: that the pointer is still where this writer stored it last, and the
   * consumer's owner epoch still the session's (fencing), when it has one.
   */
  private condition(): PointerCondition {
    const { epoch } = this.options;
    return epoch === undefined ? { from: this.stored } : { from: this.stored, epoch };
  }

  private readonly open = (): boolean => !this.closed;

  private readonly wake = (): void => {
    this.waiting = null;
    this.kick();
  };

  private async write(to: EventId): Promise<void> {
    this.writing = true;
    this.lastWriteAt = this.clock.now();
    let ok: boolean;
    try {
      ok = await this.store.storePointer(this.ident, to, this.condition(), this.open);
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
