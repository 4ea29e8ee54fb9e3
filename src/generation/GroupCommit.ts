import type { EventId } from '../common/ids';
import type { NewEvent } from '../storage/dialects';

export interface GroupCommitLimits {
  /** Events per transaction at most. */
  maxEvents: number;
  /** JSON bytes per transaction at most (one oversized event still goes alone). */
  maxBytes: number;
}

/** Where GroupCommit stores its batches (the store). */
export interface EventSink {
  /** Stores `events` in one transaction; their IDs, in order, once committed. */
  addEvents(events: readonly NewEvent[], table?: string): Promise<EventId[]>;
}

interface Waiting {
  event: NewEvent;
  bytes: number;
  resolve: (id: EventId) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: concurrent addEvent calls share transactions. While one batch commits, new
 * events queue; the next batch takes them all (up to the limits) in one multi-row INSERT. A lone
 * caller waits for nothing but its own commit, and every caller gets its ID only once its event
 * is committed, so durability is that of a transaction per event at a fraction of the cost.
 */
export class GroupCommit {
  private queue: Waiting[] = [];
  private draining = false;

  constructor(
    private readonly store: () => Promise<EventSink>,
    private readonly limits: GroupCommitLimits,
    private readonly table?: string,
  ) {}

  add(event: NewEvent, bytes: number): Promise<EventId> {
    return new Promise<EventId>((resolve, reject) => {
      this.queue.push({ event, bytes, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Events waiting for a batch (not counting the one committing). */
  get waiting(): number {
    return this.queue.length;
  }

  private take(): Waiting[] {
    let bytes = 0;
    let n = 0;
    for (const w of this.queue) {
      if (n >= this.limits.maxEvents || (n > 0 && bytes + w.bytes > this.limits.maxBytes)) break;
      bytes += w.bytes;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        await this.commit(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  private async commit(batch: Waiting[]): Promise<void> {
    try {
      const store = await this.store();
      const ids = await store.addEvents(
        batch.map((w) => w.event),
        this.table,
      );
      batch.forEach((w, i) => w.resolve(ids[i] ?? ''));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]?.reject(err);
        return;
      }
      // One event the database refuses must not fail its neighbours: retry them one by one.
      for (const w of batch) await this.commit([w]);
    }
  }
}
