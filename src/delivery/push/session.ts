import { cmpIds, maxId, type EventId } from '../../common/ids';
import type { Logger } from '../../common/log';
import { sleep } from '../../storage/retry';
import type { EventStore } from '../../storage/store';
import type { ChunkLimits } from '../limits';
import type { Event } from '../poll/PollService';
import { ChunkReader, toEvents } from '../reader';
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
  limits: ChunkLimits;
}

/** What sessions need from the push hub. */
export interface SessionHost {
  readonly store: EventStore;
  readonly log: Logger;
  pushError(consumer: string, err: unknown): void;
  queueOverflow(consumer: string, dropped: number): void;
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
  /** -1 for a batch of filtered-out events only, which is never sent. */
  seq: number;
  /** Acknowledging this batch means every event up to here was delivered (or filtered out). */
  coversUpTo: EventId;
  state: 'sending' | 'acked' | 'failed';
}

/**
 * A reliable consumer's push session. It reads its backlog from the store (catch-up), then
 * joins the shared channel of its `want` for new events (tail); if its queue overflows, or a
 * push fails, it goes back to reading the store from what was acknowledged, so it never loses an
 * event. Batches carry `seq` 0, 1, 2, ... without gaps; at most `maxInFlight` are unconfirmed
 * (sent, or acknowledged but with the pointer not stored yet), so after any failure at most that
 * many batches are delivered again. The stored pointer moves only past batches whose onEvents
 * returned success, in order. A failed batch is sent again, after a growing delay, with the same
 * seq and starting from the same event, so the receiver's order is kept.
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
  /** Bumped at each rewind, so a read started before it is not used after it. */
  private epoch = 0;
  private writing = false;
  private failing = false;
  private retryDelay: number;
  private isClosed = false;
  private readonly reader: ChunkReader;

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
    this.retryDelay = options.retryMinMs;
    this.reader = new ChunkReader(host.store);
    target.onClose(() => this.close());
  }

  get closedYet(): boolean {
    return this.isClosed;
  }

  start(): void {
    this.pump();
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.leaveChannel();
    this.queue = [];
    this.host.closed(this);
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
    while (!this.isClosed && !this.failing && this.window.length < this.options.maxInFlight) {
      if (this.mode === 'catchup') {
        if (!this.reading) void this.readBacklog();
        return;
      }
      if (this.queue.length > 0) {
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
    const epoch = this.epoch;
    try {
      const chunk = await this.reader.next(this.sentUpTo, this.want, this.options.limits);
      if (this.isClosed || this.failing || this.mode !== 'catchup' || epoch !== this.epoch) return;
      const covers = chunk.complete ? chunk.horizon : chunk.events[chunk.events.length - 1]?.id;
      if (chunk.events.length > 0 || (covers !== undefined && cmpIds(covers, this.sentUpTo) > 0)) {
        this.send(toDeliveries(chunk.events), covers ?? this.sentUpTo);
      }
      if (chunk.complete) this.tryJoinTail(chunk.horizon);
    } catch (err) {
      this.host.log.warn(`${this.consumer}: reading events failed: ${(err as Error).message}`);
      await sleep(this.nextRetryDelay());
    } finally {
      this.reading = false;
    }
    this.pump();
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
      this.window.push({ seq: -1, coversUpTo, state: 'acked' });
      void this.writePointer();
      return;
    }
    const batch: Batch = { seq: this.seq++, coversUpTo, state: 'sending' };
    this.window.push(batch);
    this.target
      .send(
        batch.seq,
        chunk.map((d) => d.event),
      )
      .then(
        () => {
          batch.state = 'acked';
          this.retryDelay = this.options.retryMinMs;
          void this.writePointer();
          this.settle();
        },
        (err: unknown) => {
          batch.state = 'failed';
          if (this.isClosed) return;
          this.host.pushError(this.consumer, err);
          if (!this.failing) {
            this.failing = true;
            this.backToCatchup();
          }
          this.settle();
        },
      );
  }

  /** After a failure, once nothing is on its way, resume from the first unacknowledged batch. */
  private settle(): void {
    if (!this.failing || this.isClosed || this.window.some((b) => b.state === 'sending')) {
      this.pump();
      return;
    }
    this.epoch++;
    const firstFailed = this.window.findIndex((b) => b.state !== 'acked');
    const resume = this.window[firstFailed];
    if (resume) {
      this.seq = resume.seq;
      this.window = this.window.slice(0, firstFailed);
    }
    this.sentUpTo =
      this.window.length > 0 ? this.window[this.window.length - 1]!.coversUpTo : this.written;
    const delay = this.nextRetryDelay();
    setTimeout(() => {
      this.failing = false;
      this.pump();
    }, delay).unref();
  }

  private nextRetryDelay(): number {
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMaxMs);
    // Jitter, so consumers that failed together do not retry in step.
    return delay / 2 + Math.random() * (delay / 2);
  }

  /** Stores the pointer past the acknowledged prefix of the window, one write at a time. */
  private async writePointer(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      for (;;) {
        let target: EventId | null = null;
        for (const b of this.window) {
          if (b.state !== 'acked') break;
          target = b.coversUpTo;
        }
        if (target === null || cmpIds(target, this.written) <= 0) break;
        await this.host.store.advanceConsumer(this.consumer, target);
        this.written = target;
        const done = target;
        this.window = this.window.filter(
          (b) => !(b.state === 'acked' && cmpIds(b.coversUpTo, done) <= 0),
        );
      }
    } catch (err) {
      this.host.log.warn(`${this.consumer}: storing the pointer failed: ${(err as Error).message}`);
      setTimeout(() => void this.writePointer(), this.nextRetryDelay()).unref();
    } finally {
      this.writing = false;
    }
    this.pump();
  }
}

/**
 * A LIVE consumer's push session: new events only, best effort, no state stored. When the
 * consumer falls behind by more than the queue holds, the oldest queued events are dropped and
 * the next `seq` skips a number to show the gap.
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
