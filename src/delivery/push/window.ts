import { cmpIds, maxId, type EventId } from '../../common/ids';
import type { ChunkLimits } from '../limits';
import { DeliveryQueue, type Delivery } from './queue';

export interface WindowOptions {
  /** Batches sent and not yet acknowledged and stored, at most. */
  maxInFlight: number;
  /** Events and bytes queued in memory at most (in tail mode). */
  queueMaxEvents: number;
  queueMaxBytes: number;
  limits: ChunkLimits;
}

/** A batch as sent: a failed one is sent again exactly so. */
export interface Batch {
  readonly seq: number;
  readonly items: readonly Delivery[];
  /** Acknowledging it means every event up to here was delivered (or filtered out). */
  readonly coversUpTo: EventId;
}

/** A pointer move the window allows now. */
export interface PointerMove {
  to: EventId;
  /** Only past filtered-out events: no acknowledged batch in it. */
  skipOnly: boolean;
}

/** What the I/O loop should start now (see DeliveryWindow.next). */
export type Step =
  | { do: 'send'; batch: Batch }
  /** Read the store after `after`, then give the result to readDone (or call readFailed). */
  | { do: 'read'; after: EventId };

interface SentBatch extends Batch {
  items: Delivery[];
  state: 'sending' | 'acked' | 'failed';
  failures: number;
}

/** Events filtered out by `want`: never sent, acknowledged from the start. */
interface Skip {
  readonly coversUpTo: EventId;
}

type Entry = { kind: 'batch'; batch: SentBatch } | { kind: 'skip'; skip: Skip };

/**
 * The pure core of a reliable push session: no I/O, no timers. It takes events as read (from
 * the store while catching up, from the shared tail channel after that), each time with the ID
 * they cover up to, cuts batches by the limits and numbers them 0, 1, 2, ... without gaps. It
 * tracks the batches until their pointer is stored, and answers where the stored pointer may
 * move: past the acknowledged prefix only, so never past a batch still in flight.
 *
 * In tail mode, new events that do not fill a batch wait while a batch is unanswered, and then
 * go in one: a session sends one call per round trip at a trickle, and batches grow with the
 * round trip as load grows, instead of one call per event to each of many sessions.
 *
 * A failed batch is sent again as it was, and nothing new is sent while one failed. A move past
 * filtered-out events is a skip entry: consecutive ones merge and they take no place among the
 * `maxInFlight` batches. In tail mode a queue that exceeds its bounds is dropped and the window
 * reads the store again from what it has sent, so a reliable consumer loses nothing.
 */
export class DeliveryWindow {
  private nextSeq = 0;
  /** Everything up to here is in an entry. */
  private sentUpTo: EventId;
  /** Everything up to here is queued or in an entry (or known filtered out). */
  private covers: EventId;
  /** Queued events up to here came from reads of the store: they go without waiting. */
  private readUpTo: EventId;
  private entries: Entry[] = [];
  private readonly queue = new DeliveryQueue();
  private tail = false;
  private reading = false;
  /** Batches that failed and were not sent again yet. */
  private failedBatches = 0;
  private closed = false;

  constructor(
    pointer: EventId,
    private readonly options: WindowOptions,
  ) {
    this.sentUpTo = pointer;
    this.covers = pointer;
    this.readUpTo = pointer;
  }

  /** Tail: new events come from the shared channel; catch-up: from reads of the store. */
  get mode(): 'catchup' | 'tail' {
    return this.tail ? 'tail' : 'catchup';
  }

  /** Events queued in memory. */
  get queued(): number {
    return this.queue.length;
  }

  /** Batches sent and not yet acknowledged and stored (skips aside). */
  get inFlight(): number {
    let n = 0;
    for (const e of this.entries) if (e.kind === 'batch') n++;
    return n;
  }

  /** Whether a batch was sent and not answered yet. */
  private awaitingAck(): boolean {
    for (const e of this.entries)
      if (e.kind === 'batch' && e.batch.state === 'sending') return true;
    return false;
  }

  /** Batches and runs of skips whose pointer is not stored yet. */
  get pending(): number {
    return this.entries.length;
  }

  /**
   * The next thing to start, or null when nothing may start now (the window is full, a batch
   * failed, a read runs, or there is nothing to send). Call it until it returns null. Events
   * known to be filtered out become a skip at once: a skip is never sent, so neither a full
   * window nor a failed batch holds it back.
   */
  next(): Step | null {
    if (this.closed) return null;
    if (this.queue.length === 0 && cmpIds(this.covers, this.sentUpTo) > 0) {
      this.addSkip(this.covers);
    }
    if (this.failedBatches > 0 || this.inFlight >= this.options.maxInFlight) return null;
    const head = this.queue.head;
    // An event too large for one message: wait on it reading the store (where the reader
    // reports it), not queueing new events behind it in memory.
    if (head && head.bytes > this.options.limits.maxBytes) this.toCatchup();
    else if (
      head &&
      this.tail &&
      cmpIds(head.event.id, this.readUpTo) > 0 &&
      this.awaitingAck() &&
      !this.queue.fills(this.options.limits)
    ) {
      // New events from the tail channel that do not fill a batch wait for the call in flight
      // to be answered, then go together: one call per round trip, not one per event, to each
      // of many sessions. What a read returned goes at once (the window allowing).
      return null;
    } else if (head) {
      const chunk = this.queue.take(this.options.limits);
      const lastId = chunk[chunk.length - 1]!.event.id;
      const covers = this.queue.length === 0 ? maxId(lastId, this.covers) : lastId;
      return { do: 'send', batch: this.addBatch(chunk, covers) };
    }
    if (this.tail || this.reading) return null;
    this.reading = true;
    return { do: 'read', after: this.sentUpTo };
  }

  /** The read asked for returned `items`; with them, everything up to `coversUpTo` was read. */
  readDone(items: readonly Delivery[], coversUpTo: EventId): void {
    this.reading = false;
    if (this.closed) return;
    for (const d of items) this.queue.push(d);
    const last = items[items.length - 1];
    if (last) this.readUpTo = maxId(this.readUpTo, last.event.id);
    this.covers = maxId(this.covers, coversUpTo);
  }

  readFailed(): void {
    this.reading = false;
  }

  /** The store was read up to `horizon` and the tail channel goes on from there. */
  enterTail(horizon: EventId): void {
    if (this.closed) return;
    this.tail = true;
    this.covers = maxId(this.covers, horizon);
  }

  /**
   * New events from the tail channel; nothing else up to `coversUpTo` passed the filter.
   * Ignored unless in tail mode. Returns the number of events dropped when the queue overflowed
   * (then the window went back to reading the store, from the end of what it sent), else 0.
   */
  offer(items: readonly Delivery[], coversUpTo: EventId): number {
    if (this.closed || !this.tail) return 0;
    const last = this.queue.lastId ?? this.sentUpTo;
    for (const d of items) if (cmpIds(d.event.id, last) > 0) this.queue.push(d);
    this.covers = maxId(this.covers, coversUpTo);
    if (!this.queue.exceeds(this.options.queueMaxEvents, this.options.queueMaxBytes)) return 0;
    const dropped = this.queue.length;
    this.toCatchup();
    return dropped;
  }

  /** onEvents of `seq` succeeded. */
  acked(seq: number): void {
    const b = this.batch(seq);
    if (!b || b.state === 'acked') return;
    if (b.state === 'failed') this.failedBatches--;
    b.state = 'acked';
    b.items = [];
  }

  /**
   * onEvents of `seq` failed: send it again with resend() after a delay; nothing new is sent
   * meanwhile. Returns how many times it failed so far (for the delay).
   */
  failed(seq: number): number {
    const b = this.batch(seq);
    if (!b || b.state !== 'sending') return b?.failures ?? 0;
    b.state = 'failed';
    b.failures++;
    this.failedBatches++;
    return b.failures;
  }

  /** The failed batch `seq`, to send again now: same seq, same events. */
  resend(seq: number): Batch | null {
    const b = this.batch(seq);
    if (!b || b.state !== 'failed') return null;
    b.state = 'sending';
    this.failedBatches--;
    return b;
  }

  /**
   * Where the stored pointer may move now: to the end of the acknowledged prefix (batches and
   * skips), never past a batch not acknowledged yet. Null when there is no such move.
   */
  pointerMove(): PointerMove | null {
    let to: EventId | null = null;
    let skipOnly = true;
    for (const e of this.entries) {
      if (e.kind === 'batch') {
        if (e.batch.state !== 'acked') break;
        skipOnly = false;
        to = e.batch.coversUpTo;
      } else {
        to = e.skip.coversUpTo;
      }
    }
    return to === null ? null : { to, skipOnly };
  }

  /**
   * The pointer was stored at `to` (a move pointerMove allowed): the entries it covers, all
   * acknowledged or skips, leave the window.
   */
  pointerStored(to: EventId): void {
    this.entries = this.entries.filter(
      (e) => cmpIds(e.kind === 'batch' ? e.batch.coversUpTo : e.skip.coversUpTo, to) > 0,
    );
  }

  /** Nothing more starts; the queue is freed. */
  close(): void {
    this.closed = true;
    this.queue.clear();
  }

  private toCatchup(): void {
    this.tail = false;
    this.queue.clear();
    this.covers = this.sentUpTo;
  }

  private addBatch(chunk: readonly Delivery[], coversUpTo: EventId): SentBatch {
    const batch: SentBatch = {
      seq: this.nextSeq++,
      items: [...chunk],
      coversUpTo,
      state: 'sending',
      failures: 0,
    };
    this.sentUpTo = coversUpTo;
    this.entries.push({ kind: 'batch', batch });
    return batch;
  }

  private addSkip(coversUpTo: EventId): void {
    this.sentUpTo = coversUpTo;
    const last = this.entries[this.entries.length - 1];
    // Skips in a row are one: a pile of them must not grow with every commit.
    if (last?.kind === 'skip') last.skip = { coversUpTo };
    else this.entries.push({ kind: 'skip', skip: { coversUpTo } });
  }

  private batch(seq: number): SentBatch | undefined {
    for (const e of this.entries) if (e.kind === 'batch' && e.batch.seq === seq) return e.batch;
    return undefined;
  }
}
