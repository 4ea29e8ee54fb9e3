import { cmpIds, maxId, NO_EVENT, type EventId } from '../../common/ids';
import type { Event } from '../../common/event';
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
  /** Parked events delivered again: they move no pointer. */
  readonly replay: boolean;
}

/** A failed onEvents call: when (ms) and what the receiver answered. */
export interface Failure {
  atMs: number;
  error: unknown;
}

/** Where a session ended to narrow down a failing batch, for the next session to go on. */
export interface NarrowHint {
  kind: 'stream' | 'replay';
  /** The stored pointer before the batch (stream). */
  from: EventId;
  /** Its last event: the first failing event is among those up to here. */
  upTo: EventId;
  /** Failed calls that carried it so far, and the first and last failure. */
  attempts: number;
  first: Failure;
  last: Failure;
}

/** What to do about a failed batch (see DeliveryWindow.failed). */
export type FailOutcome =
  /** Send it again with resend() after a delay for `failures`. */
  | { do: 'retry'; failures: number }
  /** It was split to find the first failing event: call next(). */
  | { do: 'narrow'; failures: number }
  /**
   * Its one event failed max_attempts times: record it parked, then call parked(seq) (or, if
   * that failed, resend() it later).
   */
  | { do: 'park'; failures: number; event: Event; attempts: number; first: Failure; last: Failure }
  /**
   * Narrowing it down needs a new session (later batches are in flight, and the receiver may
   * hold them): nothing more starts; end the session once the batches before it settled.
   */
  | { do: 'restart'; failures: number; hint: NarrowHint };

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
  | { do: 'read'; after: EventId }
  /**
   * Read the consumer's events to replay after `after`, then give them to replaysRead (or call
   * readFailed).
   */
  | { do: 'readReplays'; after: EventId }
  /** New tail events wait for the pace: call next() again at `until` (the Pace clock). */
  | { do: 'wait'; until: number };

/**
 * How far apart the window starts its calls in tail mode (see next()): `now` on a monotonic clock
 * (ms), and the least time between the starts of two calls that do not fill a batch.
 */
export interface Pace {
  now: number;
  intervalMs: number;
}

const UNPACED: Pace = { now: 0, intervalMs: 0 };

interface SentBatch extends Batch {
  items: Delivery[];
  state: 'sending' | 'acked' | 'failed';
  /** Every failure, for the delay before the next attempt. */
  failures: number;
  /** Failures while every batch before it was acknowledged: what max_attempts counts. */
  ownFailures: number;
  first: Failure | null;
  last: Failure | null;
  /** Sent while narrowing down a failing batch: alone in flight. */
  probe: boolean;
}

/** A failing batch being narrowed down to its first failing event. */
interface Suspect {
  kind: 'stream' | 'replay';
  /** The first failing event is among the events up to here not delivered yet. */
  upTo: EventId;
  attempts: number;
  first: Failure;
  last: Failure;
}

/** How a session starts: with events to replay first, narrowing what a session before began. */
export interface WindowStart {
  replays?: boolean;
  narrow?: NarrowHint | null;
  /**
   * Whether the session can end and have its receiver start a new one (default true); if not,
   * a failing batch that needs a new session to be narrowed down is sent again instead.
   */
  canRestart?: boolean;
}

/**
 * Events filtered out by `want`: never sent, acknowledged from the start; or a parked event
 * (recorded parked: the pointer may pass it, and is stored at once as for a batch).
 */
interface Skip {
  readonly coversUpTo: EventId;
  readonly parked?: boolean;
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
 * round trip as load grows, instead of one call per event to each of many sessions. With a pace
 * (see next()) they also wait until an interval has passed since the last call started.
 *
 * A failed batch is sent again as it was, and nothing new is sent while one failed. A move past
 * filtered-out events is a skip entry: consecutive ones merge and they take no place among the
 * `maxInFlight` batches. In tail mode a queue that exceeds its bounds is dropped and the window
 * reads the store again from what it has sent, so a reliable consumer loses nothing.
 *
 * Parking (with max_attempts set, see failed()): the first unacknowledged batch that failed
 * max_attempts times is narrowed down to its first failing event by halving: the first half is
 * sent alone under the same seq (the receiver processed nothing of it); delivered, the rest is
 * narrowed the same way, failed, the half is. An event alone that fails max_attempts times is
 * parked: the session records it and the pointer moves past it. Events to replay (parked before)
 * go first in a session, in ID order, in batches of their own that move no pointer.
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
  /** Nothing new starts (the service is shutting down); what runs may finish. */
  private draining = false;
  /** The pointer as last stored (or at the start). */
  private storedUpTo: EventId;
  /** Events to replay: read after `replayAfter` while `replaysLeft`, queued, sent first. */
  private readonly replayQueue = new DeliveryQueue();
  private replayBatches: SentBatch[] = [];
  private replaysLeft: boolean;
  private replayAfter: EventId = NO_EVENT;
  private readingReplays = false;
  /** Failed calls at which a batch is narrowed down and an event parked; null: never. */
  private maxAttempts: number | null = null;
  private suspect: Suspect | null = null;
  /** A narrowing a session before began, for when the stream starts (after the replays). */
  private hint: NarrowHint | null;
  /** A restart was asked for: nothing more starts. */
  private halted = false;
  private readonly canRestart: boolean;
  /** When the last batch of the stream was sent (the Pace clock). */
  private lastSendAt = Number.NEGATIVE_INFINITY;

  constructor(
    pointer: EventId,
    private readonly options: WindowOptions,
    start: WindowStart = {},
  ) {
    this.sentUpTo = pointer;
    this.covers = pointer;
    this.readUpTo = pointer;
    this.storedUpTo = pointer;
    this.replaysLeft = start.replays ?? false;
    this.canRestart = start.canRestart ?? true;
    this.hint =
      start.narrow?.kind === 'stream' && start.narrow.from !== pointer
        ? null
        : (start.narrow ?? null);
    if (this.hint?.kind === 'replay') this.takeHint();
  }

  /** Parks after `n` failed calls from now on (null: never; see failed()). */
  setMaxAttempts(n: number | null): void {
    this.maxAttempts = n;
  }

  /** Whether a failing batch is being narrowed down now. */
  get narrowing(): boolean {
    return this.suspect !== null;
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
    let n = this.replayBatches.length;
    for (const e of this.entries) if (e.kind === 'batch') n++;
    return n;
  }

  /** Batches sent and not acknowledged yet. */
  private get unacked(): number {
    let n = this.replayBatches.length;
    for (const e of this.entries) if (e.kind === 'batch' && e.batch.state !== 'acked') n++;
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

  /** Batches sent whose answer has not come yet. */
  get sending(): number {
    let n = 0;
    for (const e of this.entries) if (e.kind === 'batch' && e.batch.state === 'sending') n++;
    return n;
  }

  /**
   * The next thing to start, or null when nothing may start now (the window is full, a batch
   * failed, a read runs, or there is nothing to send). Call it until it returns null or a `wait`. Events
   * known to be filtered out become a skip at once: a skip is never sent, so neither a full
   * window nor a failed batch holds it back. With a `pace`, new tail events that do not fill a
   * batch start a call no sooner than `intervalMs` after the last one started: until then the
   * answer is a `wait`.
   */
  next(pace: Pace = UNPACED): Step | null {
    if (this.closed || this.halted || this.draining) return null;
    if (this.queue.length === 0 && cmpIds(this.covers, this.sentUpTo) > 0) {
      this.addSkip(this.covers);
    }
    if (this.failedBatches > 0 || this.inFlight >= this.options.maxInFlight) return null;
    // A probe goes alone: if it fails, nothing sent after it may have been processed.
    if (this.suspect && this.unacked > 0) return null;
    if (this.replayQueue.length > 0) {
      const chunk = this.replayQueue.take(this.options.limits, this.probeSize('replay'));
      return { do: 'send', batch: this.addReplayBatch(chunk) };
    }
    if (this.replaysLeft) {
      if (this.readingReplays) return null;
      this.readingReplays = true;
      return { do: 'readReplays', after: this.replayAfter };
    }
    if (this.hint) this.takeHint();
    const head = this.queue.head;
    // An event too large for one message: wait on it reading the store (where the reader
    // reports it), not queueing new events behind it in memory.
    if (head && head.bytes > this.options.limits.maxBytes) this.toCatchup();
    else if (head) {
      if (
        this.tail &&
        cmpIds(head.event.id, this.readUpTo) > 0 &&
        !this.queue.fills(this.options.limits)
      ) {
        // New events from the tail channel that do not fill a batch wait for the call in flight
        // to be answered, and for the pace, then go together: one call per round trip (or per
        // interval), not one per event, to each of many sessions. What a read returned, or a
        // whole batch, goes at once (the window allowing).
        if (this.awaitingAck()) return null;
        const due = this.lastSendAt + pace.intervalMs;
        if (pace.intervalMs > 0 && due > pace.now) return { do: 'wait', until: due };
      }
      const chunk = this.queue.take(this.options.limits, this.probeSize('stream'));
      const lastId = chunk[chunk.length - 1]!.event.id;
      const covers = this.queue.length === 0 ? maxId(lastId, this.covers) : lastId;
      this.lastSendAt = pace.now;
      return { do: 'send', batch: this.addBatch(chunk, covers) };
    }
    if (this.tail || this.reading) return null;
    this.reading = true;
    return { do: 'read', after: this.sentUpTo };
  }

  /**
   * The read asked for found `items` to replay (in ID order), having read up to `readUpTo` (an
   * event it left out, too large for this channel, stays for a later session); `complete`:
   * there are no more after it.
   */
  replaysRead(items: readonly Delivery[], readUpTo: EventId, complete: boolean): void {
    this.readingReplays = false;
    if (this.closed) return;
    for (const d of items) this.replayQueue.push(d);
    this.replayAfter = maxId(this.replayAfter, readUpTo);
    if (complete) this.replaysLeft = false;
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
    this.readingReplays = false;
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
    const last = b.items[b.items.length - 1]?.event;
    // A probe that reached the end of the suspects: they all went through after all.
    if (b.probe && this.suspect && last && cmpIds(last.id, this.suspect.upTo) >= 0) {
      this.suspect = null;
    }
    this.release(b);
  }

  /**
   * onEvents of `seq` failed; nothing new is sent until it is resolved. Without max_attempts,
   * or for a batch with an earlier one still unacknowledged (the receiver may fail it only
   * because it holds the later ones), it is sent again (resend() after a delay). The first
   * unacknowledged batch that failed max_attempts times is narrowed down (the outcome says how),
   * and an event alone that failed max_attempts times is to be parked.
   */
  failed(seq: number, failure: Failure = { atMs: 0, error: null }): FailOutcome {
    const b = this.batch(seq);
    if (!b || b.state !== 'sending') return { do: 'retry', failures: b?.failures ?? 0 };
    b.state = 'failed';
    b.failures++;
    this.failedBatches++;
    const failures = b.failures;
    if (!this.isFirstUnacked(b)) return { do: 'retry', failures };
    b.ownFailures++;
    b.first ??= failure;
    b.last = failure;
    const max = this.maxAttempts;
    const suspect = this.suspect;
    if (b.probe && suspect) {
      suspect.attempts++;
      suspect.last = failure;
      if (b.items.length > 1) {
        suspect.upTo = b.items[b.items.length - 1]!.event.id;
        this.unsend(b);
        return { do: 'narrow', failures };
      }
      if (max !== null && b.ownFailures >= max)
        return this.toPark(b, suspect.attempts, suspect.first);
      return { do: 'retry', failures };
    }
    if (max === null || b.ownFailures < max) return { do: 'retry', failures };
    const narrowed: Suspect = {
      kind: b.replay ? 'replay' : 'stream',
      upTo: b.items[b.items.length - 1]!.event.id,
      attempts: b.ownFailures,
      first: b.first,
      last: failure,
    };
    // Its seq must be used again (the receiver waits for it), so nothing may follow it.
    if (!this.isLast(b)) {
      if (!this.canRestart) return { do: 'retry', failures };
      this.halted = true;
      return { do: 'restart', failures, hint: { ...narrowed, from: this.startOf(b) } };
    }
    if (b.items.length === 1) return this.toPark(b, b.ownFailures, b.first);
    this.suspect = narrowed;
    this.unsend(b);
    return { do: 'narrow', failures };
  }

  /**
   * The event of the failed batch `seq` was recorded parked: the pointer may move past it, and
   * the next batch takes its seq (the receiver never processed it, and waits for that seq).
   */
  parked(seq: number): void {
    const b = this.batch(seq);
    if (!b || b.state !== 'failed') return;
    this.failedBatches--;
    this.suspect = null;
    this.nextSeq = b.seq;
    b.items = [];
    if (b.replay) {
      this.replayBatches = this.replayBatches.filter((r) => r !== b);
      return;
    }
    const at = this.entries.findIndex((e) => e.kind === 'batch' && e.batch === b);
    this.entries[at] = { kind: 'skip', skip: { coversUpTo: b.coversUpTo, parked: true } };
  }

  /** The failed batch `seq`, to send again now: same seq, same events. */
  resend(seq: number): Batch | null {
    const b = this.batch(seq);
    if (!b || b.state !== 'failed' || this.halted || this.draining) return null;
    b.state = 'sending';
    this.failedBatches--;
    return b;
  }

  /** Whether every batch sent before `seq` is acknowledged (and no batch failed after it). */
  settledBefore(seq: number): boolean {
    for (const e of this.entries)
      if (e.kind === 'batch' && e.batch.seq < seq && e.batch.state !== 'acked') return false;
    return this.replayBatches.every((b) => b.seq >= seq);
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
        if (e.skip.parked) skipOnly = false;
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
    this.storedUpTo = maxId(this.storedUpTo, to);
    this.entries = this.entries.filter(
      (e) => cmpIds(e.kind === 'batch' ? e.batch.coversUpTo : e.skip.coversUpTo, to) > 0,
    );
  }

  /**
   * Nothing new starts, no failed batch is sent again: the batches in flight get their answers
   * and the pointer moves past those acknowledged (pointerMove goes on working).
   */
  drain(): void {
    this.draining = true;
  }

  /** Nothing more starts; the queue is freed. */
  close(): void {
    this.closed = true;
    this.queue.clear();
    this.replayQueue.clear();
  }

  /** An acknowledged batch: a replay leaves at once (it moves no pointer), its events go. */
  private release(b: SentBatch): void {
    b.items = [];
    if (b.replay) this.replayBatches = this.replayBatches.filter((r) => r !== b);
  }

  private toPark(b: SentBatch, attempts: number, first: Failure | null): FailOutcome {
    return {
      do: 'park',
      failures: b.failures,
      event: b.items[0]!.event,
      attempts,
      first: first ?? b.last!,
      last: b.last!,
    };
  }

  /** The narrowing a session before began goes on here. */
  private takeHint(): void {
    const h = this.hint;
    this.hint = null;
    if (h)
      this.suspect = {
        kind: h.kind,
        upTo: h.upTo,
        attempts: h.attempts,
        first: h.first,
        last: h.last,
      };
  }

  /** How many events the next batch of `kind` may take: half the suspects while narrowing. */
  private probeSize(kind: 'stream' | 'replay'): number | undefined {
    const s = this.suspect;
    if (!s || s.kind !== kind) return undefined;
    const n = (kind === 'replay' ? this.replayQueue : this.queue).countUpTo(s.upTo);
    return n > 1 ? Math.ceil(n / 2) : 1;
  }

  private isFirstUnacked(b: SentBatch): boolean {
    return this.settledBefore(b.seq);
  }

  /** No batch was sent after it. */
  private isLast(b: SentBatch): boolean {
    return b.seq === this.nextSeq - 1;
  }

  /** The stored pointer before a stream batch: the end of what was sent before it. */
  private startOf(b: SentBatch): EventId {
    let start = this.storedUpTo;
    for (const e of this.entries) {
      if (e.kind === 'batch' && e.batch === b) break;
      start = e.kind === 'batch' ? e.batch.coversUpTo : e.skip.coversUpTo;
    }
    return start;
  }

  /**
   * Takes back the last batch sent, unacknowledged: its events go back to the front of their
   * queue and its seq is used again (the receiver processed nothing of it). Skips after it go
   * too: they are made again once its events are sent.
   */
  private unsend(b: SentBatch): void {
    this.failedBatches--;
    this.nextSeq = b.seq;
    if (b.replay) {
      this.replayBatches = this.replayBatches.filter((r) => r !== b);
      this.replayQueue.unshift(b.items);
      return;
    }
    const start = this.startOf(b);
    const at = this.entries.findIndex((e) => e.kind === 'batch' && e.batch === b);
    this.entries = this.entries.slice(0, at);
    this.sentUpTo = start;
    this.queue.unshift(b.items);
  }

  private toCatchup(): void {
    this.tail = false;
    this.queue.clear();
    this.covers = this.sentUpTo;
  }

  private newBatch(chunk: Delivery[], coversUpTo: EventId, replay: boolean): SentBatch {
    return {
      seq: this.nextSeq++,
      items: [...chunk],
      coversUpTo,
      replay,
      state: 'sending',
      failures: 0,
      ownFailures: 0,
      first: null,
      last: null,
      probe: this.suspect?.kind === (replay ? 'replay' : 'stream'),
    };
  }

  private addBatch(chunk: Delivery[], coversUpTo: EventId): SentBatch {
    const batch = this.newBatch(chunk, coversUpTo, false);
    this.sentUpTo = coversUpTo;
    this.entries.push({ kind: 'batch', batch });
    return batch;
  }

  private addReplayBatch(chunk: Delivery[]): SentBatch {
    const batch = this.newBatch(chunk, this.sentUpTo, true);
    this.replayBatches.push(batch);
    return batch;
  }

  private addSkip(coversUpTo: EventId): void {
    this.sentUpTo = coversUpTo;
    const last = this.entries[this.entries.length - 1];
    // Skips in a row are one: a pile of them must not grow with every commit.
    if (last?.kind === 'skip') last.skip = { coversUpTo, parked: last.skip.parked ?? false };
    else this.entries.push({ kind: 'skip', skip: { coversUpTo } });
  }

  private batch(seq: number): SentBatch | undefined {
    for (const e of this.entries) if (e.kind === 'batch' && e.batch.seq === seq) return e.batch;
    return this.replayBatches.find((b) => b.seq === seq);
  }
}
