import { sleep } from '../../common/async';
import { Backoff } from '../../common/backoff';
import { cmpIds, maxId, type EventId } from '../../common/ids';
import type { Logger } from '../../common/log';
import type { EventStore } from '../../storage/store';
import type { ChunkLimits } from '../limits';
import type { Event } from '../../common/event';
import { ChunkReader, EventTooLarge, toEvents } from '../reader';
import { eventBytes } from '../limits';

/** An event ready to push, parsed once and shared by every session it goes to. */
export interface Delivery {
  event: Event;
  bytes: number;
}

export const toDeliveries = (rows: Parameters<typeof toEvents>[0]): Delivery[] => {
  const events = toEvents(rows);
  return events.map((event, i) => ({ event, bytes: eventBytes(rows[i]!) }));
};

/** The consumer's end of a push session: its futoin.evt.receiver over the channel. */
export interface PushTarget {
  /** Calls onEvents(seq, events); resolves once the receiver answered true. */
  send(seq: number, events: Event[]): Promise<void>;
  /** Calls `cb` once when the channel closes. */
  onClose(cb: () => void): void;
  /**
   * Closes the channel, so that the consumer connects again and starts a new session (absent
   * for in-process channels, which have no connection to close).
   */
  disconnect?(reason: string): void;
}

export interface SessionOptions {
  /** onEvents calls in flight at most (for reliable sessions: not yet acknowledged and stored). */
  maxInFlight: number;
  /** Events and bytes a session queues in memory at most. */
  queueMaxEvents: number;
  queueMaxBytes: number;
  /** Retry delays after a failed push: from the first, doubling up to the last. */
  retryMinMs: number;
  retryMaxMs: number;
  /**
   * A reliable consumer's pointer moved past filtered-out events only (nothing to acknowledge)
   * is stored at most this often; a pointer write for an acknowledged batch stores it at once.
   */
  skipStoreMs: number;
  limits: ChunkLimits;
}

/** What sessions need from the push hub. */
export interface SessionHost {
  readonly store: EventStore;
  readonly log: Logger;
  pushError(consumer: string, err: unknown): void;
  /**
   * The next event for `consumer` is larger than one message of its channel carries: reported
   * at each attempt (reliable) or for each skipped event (LIVE).
   */
  eventTooLarge(consumer: string, err: EventTooLarge): void;
  queueOverflow(consumer: string, dropped: number): void;
  /** onEvents succeeded with `events` events. */
  pushed(consumer: string, events: number): void;
  /** The channel of `want` (created at `startAt` if there is none yet). */
  channelOf(want: readonly string[] | null, startAt: EventId): TailChannel;
  closed(session: Session): void;
}

/** The shared reader of new events for one `want` filter. */
export interface TailChannel {
  /** Every event up to here has been offered to the channel's members. */
  readonly tailId: EventId;
  join(member: Session): void;
  leave(member: Session): void;
}

export interface Session {
  readonly consumer: string;
  /** New events from the channel, in ID order; `coversUpTo`: nothing else up to it passed the filter. */
  offer(items: readonly Delivery[], coversUpTo: EventId): void;
  close(): void;
}

/** Takes the longest prefix of `queue` that fits the limits (at least one event). */
function takeChunk(queue: Delivery[], limits: ChunkLimits): Delivery[] {
  let bytes = 0;
  let n = 0;
  while (n < queue.length && n < limits.maxEvents) {
    const size = queue[n]!.bytes;
    if (n > 0 && bytes + size > limits.maxBytes) break;
    bytes += size;
    n++;
  }
  return queue.splice(0, n);
}

interface Batch {
  /**
   * -1 for a marker of filtered-out events only, which is never sent: it is acknowledged from
   * the start, does not count against maxInFlight, and is merged into a marker right before it.
   */
  seq: number;
  /** Kept until acknowledged, to send the batch again as it was. */
  events: Event[];
  /** Failed sends so far: the retry delay doubles with each. */
  failures: number;
  /** Acknowledging this batch means every event up to here was delivered (or filtered out). */
  coversUpTo: EventId;
  state: 'sending' | 'acked' | 'failed';
}

/**
 * A reliable consumer's push session. It reads its backlog from the store (catch-up), then
 * joins the shared channel of its `want` for new events (tail); if its queue overflows, it goes
 * back to reading the store from what it has sent, so it never loses an event. Batches carry
 * `seq` 0, 1, 2, ... without gaps; at most `maxInFlight` are unconfirmed (sent, or acknowledged
 * but with the pointer not stored yet), so after the connection is lost at most that many
 * batches are delivered again. The stored pointer moves only past batches whose onEvents
 * returned success, in order. A failed batch is sent again as it was (same seq, same events)
 * after a growing, jittered delay, while nothing new is sent: a reliable receiver holds the later
 * batches until that one succeeds, so it must not wait for them. An event larger than one
 * message of the channel carries is never skipped: the session waits on it (waitOnTooLarge).
 *
 * Events the consumer's `want` filters out move the pointer too, but storing each such move
 * would cost a write transaction per group commit for a consumer of rare types: a move past
 * filtered-out events only is stored at most every skipStoreMs (see writePointer).
 */
export class ReliableSession implements Session {
  private seq = 0;
  /** Everything up to here is in a batch (or known filtered out). */
  private sentUpTo: EventId;
  /** The stored pointer. */
  private written: EventId;
  private window: Batch[] = [];
  private queue: Delivery[] = [];
  private queueBytes = 0;
  /** In tail mode: the channel has offered everything up to here. */
  private tailCovers: EventId;
  private mode: 'catchup' | 'tail' = 'catchup';
  private channel: TailChannel | null = null;
  private reading = false;
  private writing = false;
  /** Batches that failed and wait to be sent again; nothing new is sent meanwhile. */
  private failed = 0;
  /** Consecutive failures to read or write the store: the pause before trying again doubles. */
  private storeFailures = 0;
  /** Attempts at an event too large for this channel: the pause before the next doubles. */
  private tooLargeAttempts = 0;
  private isClosed = false;
  private readonly reader: ChunkReader;
  /** Retry delays: failed calls, store errors, an event too large. */
  private readonly retry: Backoff;
  /** When the last pointer write started (performance.now()). */
  private lastWriteAt = -Infinity;
  /** The deferred write of a move past filtered-out events only. */
  private skipTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: SessionHost,
    readonly consumer: string,
    private readonly want: readonly string[] | null,
    private readonly target: PushTarget,
    pointer: EventId,
    private readonly options: SessionOptions,
  ) {
    this.sentUpTo = pointer;
    this.written = pointer;
    this.tailCovers = pointer;
    this.reader = new ChunkReader(host.store);
    this.retry = new Backoff(options.retryMinMs, options.retryMaxMs);
    target.onClose(() => this.close());
  }

  get closedYet(): boolean {
    return this.isClosed;
  }

  start(): void {
    this.pump();
  }

  /**
   * Stops the session. A pending move past filtered-out events only is dropped, not written: the
   * session that replaces this one (a second readyToReceive) starts from the pointer stored now,
   * and a write from here would make its own compare-and-set fail and end it; at shutdown the
   * store may be closing. Dropping it costs only re-reading and filtering those events again.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.skipTimer) clearTimeout(this.skipTimer);
    this.skipTimer = null;
    this.leaveChannel();
    this.queue = [];
    this.host.closed(this);
  }

  /**
   * Ends the session and closes its channel: the consumer's pointer was moved or the consumer
   * dropped, and a new session (the receiver reconnects) starts from what is stored now. Batches
   * in flight can no longer move the pointer (see writePointer). Unacknowledged batches cannot
   * simply be replaced within this session: the receiver processes `seq` in order and may still
   * be working on one.
   */
  end(reason: string): void {
    if (this.isClosed) return;
    this.close();
    this.host.log.info(`${this.consumer}: session ended, ${reason}`);
    if (this.target.disconnect) this.target.disconnect(reason);
    else
      this.host.log.warn(
        `${this.consumer}: ${reason}; its channel cannot be closed from here, it resumes from the stored pointer at its next readyToReceive`,
      );
  }

  /** The number of events queued in memory, and batches sent and not yet acknowledged and stored. */
  get backlog(): { queued: number; inFlight: number } {
    return { queued: this.queue.length, inFlight: this.inFlight };
  }

  /** Batches sent and not yet acknowledged and stored (markers of filtered-out events aside). */
  private get inFlight(): number {
    let n = 0;
    for (const b of this.window) if (b.seq >= 0) n++;
    return n;
  }

  offer(items: readonly Delivery[], coversUpTo: EventId): void {
    if (this.isClosed || this.mode !== 'tail') return;
    const last =
      this.queue.length > 0 ? this.queue[this.queue.length - 1]!.event.id : this.sentUpTo;
    for (const d of items) {
      if (cmpIds(d.event.id, last) <= 0) continue;
      this.queue.push(d);
      this.queueBytes += d.bytes;
    }
    this.tailCovers = maxId(this.tailCovers, coversUpTo);
    if (
      this.queue.length > this.options.queueMaxEvents ||
      this.queueBytes > this.options.queueMaxBytes
    ) {
      // Too far behind for memory: drop the queue and read from the store again.
      this.host.queueOverflow(this.consumer, this.queue.length);
      this.backToCatchup();
    }
    this.pump();
  }

  private backToCatchup(): void {
    this.leaveChannel();
    this.queue = [];
    this.queueBytes = 0;
    this.mode = 'catchup';
  }

  private leaveChannel(): void {
    if (this.channel) {
      this.channel.leave(this);
      this.channel = null;
    }
  }

  /** Starts whatever can start now: batches while the window has room, or a catch-up read. */
  private pump(): void {
    while (!this.isClosed && this.failed === 0 && this.inFlight < this.options.maxInFlight) {
      if (this.mode === 'catchup') {
        if (!this.reading) void this.readBacklog();
        return;
      }
      if (this.queue.length > 0) {
        if (this.queue[0]!.bytes > this.options.limits.maxBytes) {
          // It cannot be sent on this channel: wait on it reading the store (readBacklog), not
          // queueing new events behind it in memory.
          this.backToCatchup();
          continue;
        }
        const chunk = takeChunk(this.queue, this.options.limits);
        for (const d of chunk) this.queueBytes -= d.bytes;
        const lastId = chunk[chunk.length - 1]!.event.id;
        this.send(chunk, this.queue.length === 0 ? maxId(lastId, this.tailCovers) : lastId);
      } else if (cmpIds(this.tailCovers, this.sentUpTo) > 0) {
        // Only filtered-out events: count them as delivered once what precedes them is.
        this.send([], this.tailCovers);
      } else {
        return;
      }
    }
  }

  private async readBacklog(): Promise<void> {
    this.reading = true;
    try {
      const chunk = await this.reader.next(this.sentUpTo, this.want, this.options.limits);
      this.storeFailures = 0;
      this.tooLargeAttempts = 0;
      if (this.isClosed || this.mode !== 'catchup') return;
      const covers = chunk.complete ? chunk.horizon : chunk.events[chunk.events.length - 1]?.id;
      if (chunk.events.length > 0 || (covers !== undefined && cmpIds(covers, this.sentUpTo) > 0)) {
        this.send(toDeliveries(chunk.events), covers ?? this.sentUpTo);
      }
      if (chunk.complete) this.tryJoinTail(chunk.horizon);
    } catch (err) {
      if (err instanceof EventTooLarge) {
        await this.waitOnTooLarge(err);
      } else {
        this.host.log.warn(`${this.consumer}: reading events failed: ${String(err)}`);
        await sleep(this.retry.delay(++this.storeFailures));
      }
    } finally {
      this.reading = false;
    }
    this.pump();
  }

  /**
   * The next event is larger than one onEvents message of this channel carries (a
   * futoin.evt.receiver 1.0 takes 64 KiB; events this large come from addXferEvent or an
   * in-process addEvent). Skipping it would lose a committed event, and sending it fails every
   * time, so the session waits on it: the hub reports each attempt ('pushError',
   * evtstream_push_failures_total) and logs one error line per consumer and event, saying how to
   * get past it; attempts back off like failed calls (retry_min_ms doubling to retry_max_ms).
   * Between attempts the session checks the stored pointer: once someone moved it (an
   * administrator's move, or the consumer acknowledging the event with a futoin.evt.poll 1.1
   * pollEvents, whose responses carry 8 MiB), the session ends and the receiver's next one
   * starts from there. A receiver that connects again with futoin.evt.receiver 1.1 gets a new
   * session, with 8 MiB messages.
   */
  private async waitOnTooLarge(err: EventTooLarge): Promise<void> {
    const attempt = ++this.tooLargeAttempts;
    this.host.eventTooLarge(this.consumer, err);
    await sleep(this.retry.delay(attempt));
    // Batches before the event still unconfirmed (or a move past filtered-out events not stored
    // yet, at most skipStoreMs): their pointer write notices a move itself.
    if (this.isClosed || this.window.length > 0) return;
    try {
      const position = await this.host.store.consumerPosition(this.consumer);
      if (position === null) this.end('it is no longer registered');
      else if (position.move !== null || position.pointer !== this.written)
        this.end('its pointer was moved elsewhere');
    } catch (e) {
      this.host.log.warn(`${this.consumer}: reading the pointer failed: ${String(e)}`);
    }
  }

  /** Caught up to `horizon`: join the channel if it has not read past it yet. */
  private tryJoinTail(horizon: EventId): void {
    const channel = this.host.channelOf(this.want, horizon);
    if (cmpIds(horizon, channel.tailId) < 0) return; // the channel is ahead: read on
    this.mode = 'tail';
    this.tailCovers = maxId(this.sentUpTo, horizon);
    this.channel = channel;
    channel.join(this);
  }

  private send(chunk: readonly Delivery[], coversUpTo: EventId): void {
    this.sentUpTo = coversUpTo;
    if (chunk.length === 0) {
      // Markers in a row are one: a pile of them must not grow with every commit.
      const prev = this.window[this.window.length - 1];
      if (prev && prev.seq < 0 && prev.state === 'acked') prev.coversUpTo = coversUpTo;
      else this.window.push({ seq: -1, events: [], failures: 0, coversUpTo, state: 'acked' });
      void this.writePointer();
      return;
    }
    const batch: Batch = {
      seq: this.seq++,
      events: chunk.map((d) => d.event),
      failures: 0,
      coversUpTo,
      state: 'sending',
    };
    this.window.push(batch);
    this.transmit(batch);
  }

  private transmit(batch: Batch): void {
    batch.state = 'sending';
    this.target.send(batch.seq, batch.events).then(
      () => {
        this.host.pushed(this.consumer, batch.events.length);
        batch.state = 'acked';
        batch.events = [];
        void this.writePointer();
        this.pump();
      },
      (err: unknown) => {
        if (this.isClosed) return;
        batch.state = 'failed';
        this.failed++;
        this.host.pushError(this.consumer, err);
        setTimeout(() => {
          this.failed--;
          if (!this.isClosed) this.transmit(batch);
        }, this.retry.delay(++batch.failures)).unref();
      },
    );
  }

  /**
   * Stores the pointer past the acknowledged prefix of the window, one write at a time: at once
   * when that prefix holds an acknowledged batch (the write takes the filtered-out events after
   * it along), and when it holds only markers of filtered-out events, at most every skipStoreMs
   * (see deferSkipWrite). Never past a batch not acknowledged yet.
   */
  private async writePointer(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      for (;;) {
        let target: EventId | null = null;
        let batchAcked = false;
        for (const b of this.window) {
          if (b.state !== 'acked') break;
          target = b.coversUpTo;
          if (b.seq >= 0) batchAcked = true;
        }
        if (target === null || cmpIds(target, this.written) <= 0) break;
        if (this.isClosed) break;
        if (!batchAcked && this.deferSkipWrite()) break;
        this.lastWriteAt = performance.now();
        // Only from the pointer this session stored: if it is not that any more, someone else
        // moved it (an administrator, or a session of this consumer in another process).
        const moved = !(await this.host.store.advanceConsumer(this.consumer, target, this.written));
        if (moved) {
          this.end('its pointer was moved elsewhere');
          break;
        }
        this.storeFailures = 0;
        this.written = target;
        const done = target;
        this.window = this.window.filter(
          (b) => !(b.state === 'acked' && cmpIds(b.coversUpTo, done) <= 0),
        );
      }
    } catch (err) {
      this.host.log.warn(`${this.consumer}: storing the pointer failed: ${(err as Error).message}`);
      setTimeout(() => void this.writePointer(), this.retry.delay(++this.storeFailures)).unref();
    } finally {
      this.writing = false;
    }
    this.pump();
  }

  /**
   * A move past filtered-out events only: true if it must wait (skipStoreMs since the last write
   * has not passed yet), with a timer set to write it then; false if it is due now. Storing it
   * late is harmless: a new session starts from the older pointer and filters those events out
   * again, and the discarder keeps them that much longer.
   */
  private deferSkipWrite(): boolean {
    const wait = this.lastWriteAt + this.options.skipStoreMs - performance.now();
    if (wait <= 0) return false;
    if (!this.skipTimer) {
      this.skipTimer = setTimeout(() => {
        this.skipTimer = null;
        void this.writePointer();
      }, Math.ceil(wait));
      this.skipTimer.unref();
    }
    return true;
  }
}

/**
 * A LIVE consumer's push session: new events only, best effort, no state stored. When the
 * consumer falls behind by more than the queue holds, the oldest queued events are dropped and
 * the next `seq` skips a number to show the gap. An event larger than one message of the channel
 * carries is dropped the same way (reported: see PushHub.eventTooLarge).
 */
export class LiveSession implements Session {
  readonly consumer = 'LIVE';
  private seq = 0;
  private gap = false;
  private queue: Delivery[] = [];
  private queueBytes = 0;
  private inFlight = 0;
  private isClosed = false;

  constructor(
    private readonly host: SessionHost,
    private readonly channel: TailChannel,
    private readonly target: PushTarget,
    private readonly options: SessionOptions,
  ) {
    target.onClose(() => this.close());
    channel.join(this);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.channel.leave(this);
    this.queue = [];
    this.host.closed(this);
  }

  offer(items: readonly Delivery[]): void {
    if (this.isClosed) return;
    for (const d of items) {
      this.queue.push(d);
      this.queueBytes += d.bytes;
    }
    let dropped = 0;
    while (
      this.queue.length > 0 &&
      (this.queue.length > this.options.queueMaxEvents ||
        this.queueBytes > this.options.queueMaxBytes)
    ) {
      this.queueBytes -= this.queue.shift()!.bytes;
      dropped++;
    }
    if (dropped > 0) {
      this.gap = true;
      this.host.queueOverflow(this.consumer, dropped);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.isClosed && this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const head = this.queue[0]!;
      const { maxBytes, version } = this.options.limits;
      if (head.bytes > maxBytes) {
        this.queue.shift();
        this.queueBytes -= head.bytes;
        this.gap = true;
        this.host.eventTooLarge(
          this.consumer,
          new EventTooLarge(head.event.id, head.bytes, maxBytes, version),
        );
        continue;
      }
      const chunk = takeChunk(this.queue, this.options.limits);
      for (const d of chunk) this.queueBytes -= d.bytes;
      if (this.gap) {
        this.seq++;
        this.gap = false;
      }
      const seq = this.seq++;
      this.inFlight++;
      this.target
        .send(
          seq,
          chunk.map((d) => d.event),
        )
        .then(() => this.host.pushed(this.consumer, chunk.length))
        .catch((err: unknown) => {
          if (!this.isClosed) this.host.pushError(this.consumer, err);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
