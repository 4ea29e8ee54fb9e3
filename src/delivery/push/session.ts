import { performance } from 'perf_hooks';
import { sleep } from '../../common/async';
import { Backoff } from '../../common/backoff';
import { isEvtError } from '../../common/errors';
import { cmpIds, type EventId } from '../../common/ids';
import { errorOf, type LogFields, type Logger } from '../../common/log';
import type { Event } from '../../common/event';
import type { ParkingRule, ParkRecord, StoredEvent } from '../../storage/store';
import type { ChunkLimits } from '../limits';
import { ChunkReader, EventTooLarge, type EventSource } from '../reader';
import { PointerWriter, type PointerStore } from './pointer-writer';
import { DeliveryQueue, toDeliveries, type Delivery } from './queue';
import { DeliveryWindow, type Batch, type FailOutcome, type NarrowHint } from './window';

/** The consumer's end of a push session: its futoin.evt.receiver over the channel. */
export interface PushTarget {
  /** Calls onEvents(seq, events of `items`); resolves once the receiver answered true. */
  send(seq: number, items: readonly Delivery[]): Promise<void>;
  /** Calls `cb` once when the channel closes. */
  onClose(cb: () => void): void;
  /**
   * Closes the channel, so that the consumer connects again and starts a new session (absent
   * for in-process channels, which have no connection to close).
   */
  disconnect?(reason: string): void;
  /**
   * Closes the channel because the service is shutting down, so that the consumer connects
   * again, elsewhere (absent for in-process channels).
   */
  goingAway?(reason: string): void;
  /**
   * Whether the consumer's end still answers within `timeoutMs` (a WebSocket ping): false for a
   * half-open connection whose peer is gone. Absent where a channel cannot be half-open (in
   * process): then it is taken to answer.
   */
  probe?(timeoutMs: number): Promise<boolean>;
}

/**
 * What a reliable session holds its consumer by: the owner epoch of its acquisition (every
 * pointer write requires it) and whether it may still push (its node holds the consumer's
 * lock and heard from the database lately).
 */
export interface Ownership {
  readonly epoch: string;
  readonly valid: boolean;
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
  /**
   * Parks in a row (with nothing delivered in between) after which a consumer parks no more and
   * waits on the failing event as without max_attempts, until an event is delivered again.
   */
  parkMaxStreak: number;
  limits: ChunkLimits;
}

/** What a reliable session needs from the store. */
export interface SessionStore extends EventSource, PointerStore {
  /** The consumer's stored pointer and pending administrator move; null if not registered. */
  consumerPosition(ident: string): Promise<{ pointer: EventId; move: string | null } | null>;
  parkingRule(ident: string): Promise<ParkingRule>;
  /**
   * Records a parked event; resolves with the consumer's streak of parks, or null when the
   * consumer's owner epoch is no longer `park.epoch` (nothing recorded).
   */
  parkEvent(ident: string, park: ParkRecord): Promise<number | null>;
  clearParkStreak(ident: string): Promise<void>;
  parkedReplays(ident: string, after: EventId, limit: number): Promise<StoredEvent[]>;
  parkedReplayed(ident: string, ids: readonly EventId[]): Promise<number>;
}

/** A park as the session reports it. */
export interface ParkReport {
  event: Event;
  attempts: number;
  errorCode: string;
  errorInfo: string;
  /** Parks in a row now, and whether parking stopped at that (parkMaxStreak). */
  streak: number;
  suspended: boolean;
}

/** How a reliable session starts (read by the hub before it opens one). */
export interface SessionStart {
  pointer: EventId;
  rule: ParkingRule;
  /** What a session before it began narrowing down, if anything. */
  narrow: NarrowHint | null;
}

/** What sessions need from the push hub. */
export interface SessionHost {
  readonly store: SessionStore;
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
  /**
   * What a reliable consumer's catch-up reads: its backlog, from the warehouse where the
   * discarder deleted it (see Backlog). One per session: it reports a jump once.
   */
  backlogOf(consumer: string): EventSource;
  /** An event was parked for the consumer (recorded). */
  parked(consumer: string, park: ParkReport): void;
  /** Parked events were delivered again. */
  replayed(consumer: string, events: number): void;
  /** The session ends so that its successor goes on narrowing down a failing batch. */
  narrowInNextSession(consumer: string, hint: NarrowHint): void;
  /** The channel of `want` (created at `startAt` if there is none yet). */
  channelOf(want: readonly string[] | null, startAt: EventId): TailChannel;
  /** The least time between the starts of one LIVE session's onEvents calls, ms (0: none). */
  readonly liveCallIntervalMs: number;
  /**
   * The least time between the starts of one reliable session's onEvents calls that carry new
   * events not filling a batch, ms (0: none).
   */
  readonly reliableCallIntervalMs: number;
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
  readonly target: PushTarget;
  /** Names the session in logs: `r12` (reliable) or `l3` (LIVE), counted per process. */
  readonly id: string;
  /** New events from the channel, in ID order; `coversUpTo`: nothing else up to it passed the filter. */
  offer(items: readonly Delivery[], coversUpTo: EventId): void;
  /**
   * Sends nothing new; resolves once the calls in flight have their answers and, for a
   * reliable consumer, the pointer is stored past what was acknowledged (or the session closed).
   */
  drain(): Promise<void>;
  close(): void;
}

/**
 * The timer of a paced session: calls `fire` at the earliest time asked for (performance.now()
 * ms). A timer already set stays, unless it is due later (the interval shrank as sessions left):
 * then it is set again.
 */
class PaceTimer {
  private timer: NodeJS.Timeout | null = null;
  private due = 0;

  constructor(private readonly fire: () => void) {}

  at(due: number, now: number): void {
    if (this.timer) {
      if (this.due <= due + 1) return;
      clearTimeout(this.timer);
    }
    this.due = due;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.fire();
      },
      Math.ceil(due - now),
    );
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Resolves the waiters of a drain once `settled()` holds (checked at each change). */
class DrainWaiters {
  private readonly waiters: (() => void)[] = [];

  wait(check: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.check(check);
    });
  }

  check(settled: () => boolean): void {
    if (this.waiters.length > 0 && settled()) for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * A reliable consumer's push session: the I/O around its DeliveryWindow and PointerWriter. It
 * reads the backlog from the store (catch-up), then joins the shared channel of its `want` for
 * new events (tail); the window decides what to send and read, and where the pointer may move.
 * At most `maxInFlight` batches are unconfirmed (sent, or acknowledged but with the pointer not
 * stored yet), so after the connection is lost at most that many are delivered again. A failed
 * batch is sent again as it was after a growing, jittered delay: a reliable receiver holds the
 * later batches until that one succeeds. An event larger than one message of the channel
 * carries is never skipped: the session waits on it (waitOnTooLarge).
 *
 * With the consumer's max_attempts set, a batch failing that often is narrowed down and its
 * failing event parked (see DeliveryWindow); the session records the park before the pointer may
 * pass it. After parkMaxStreak parks in a row it parks no more (a receiver failing on every event
 * must not drain the stream into the parked table) until an event is delivered again. A session
 * first sends the consumer's events to replay, each marked `replayed: true`.
 */
let sessionsMade = 0;
const nextSessionId = (kind: 'r' | 'l'): string => `${kind}${++sessionsMade}`;

export class ReliableSession implements Session {
  readonly id = nextSessionId('r');
  private readonly window: DeliveryWindow;
  private readonly writer: PointerWriter;
  private readonly reader: ChunkReader;
  private channel: TailChannel | null = null;
  /** Consecutive failed reads: the pause before the next doubles. */
  private readFailures = 0;
  /** Attempts at an event too large for this channel: the pause before the next doubles. */
  private tooLargeAttempts = 0;
  private isClosed = false;
  private draining = false;
  private readonly drained = new DrainWaiters();
  /** Retry delays: failed calls, store errors, an event too large. */
  private readonly retry: Backoff;
  private rule: ParkingRule;
  private readingRule = false;
  /** A new session must go on narrowing: end once the batches before `seq` settled. */
  private restart: { seq: number; hint: NarrowHint } | null = null;
  /** Sends what waits for the pace. */
  private readonly pace = new PaceTimer(() => this.pump());

  constructor(
    private readonly host: SessionHost,
    readonly consumer: string,
    private readonly want: readonly string[] | null,
    readonly target: PushTarget,
    start: SessionStart,
    private readonly options: SessionOptions,
    private readonly ownership: Ownership,
  ) {
    const { pointer } = start;
    this.window = new DeliveryWindow(pointer, options, {
      replays: true,
      narrow: start.narrow,
      canRestart: target.disconnect !== undefined,
    });
    this.rule = start.rule;
    this.applyRule();
    this.reader = new ChunkReader(host.backlogOf(consumer));
    this.retry = new Backoff(options.retryMinMs, options.retryMaxMs);
    this.writer = new PointerWriter(
      host.store,
      consumer,
      pointer,
      {
        target: () => this.window.pointerMove(),
        stored: (to) => {
          this.window.pointerStored(to);
          this.pump();
          this.restartIfSettled();
        },
        movedElsewhere: () =>
          this.end('its pointer was moved elsewhere, or another node took the consumer over'),
        failed: (err) =>
          host.log.warn('Push: storing the pointer failed', {
            consumer,
            session: this.id,
            err: errorOf(err),
          }),
      },
      { skipStoreMs: options.skipStoreMs, retry: this.retry, epoch: ownership.epoch },
    );
    target.onClose(() => this.close());
  }

  get closedYet(): boolean {
    return this.isClosed;
  }

  /** The owner epoch this session pushes under. */
  get epoch(): string {
    return this.ownership.epoch;
  }

  /** Whether its receiver still answers (see PushTarget.probe). */
  probe(timeoutMs: number): Promise<boolean> {
    return this.target.probe ? this.target.probe(timeoutMs) : Promise.resolve(true);
  }

  start(): void {
    this.host.log.info('Push: session started', {
      consumer: this.consumer,
      session: this.id,
      event_id: this.writer.pointer,
    });
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
    this.pace.clear();
    this.writer.close();
    this.leaveChannel();
    this.window.close();
    this.host.closed(this);
    this.drained.check(() => true);
  }

  /**
   * Sends and reads nothing new, sends no failed batch again, and stores the pointer past what
   * is acknowledged at once (a move past filtered-out events too). Resolves once no batch waits
   * for its answer and no pointer write is due or running (a failed write is retried as usual).
   */
  drain(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.window.drain();
      this.leaveChannel();
      this.writer.flush();
    }
    return this.drained.wait(this.settled);
  }

  private readonly settled = (): boolean =>
    this.isClosed || (this.window.sending === 0 && this.writer.settled);

  /**
   * Ends the session and closes its channel: the consumer's pointer was moved or the consumer
   * dropped, and a new session (the receiver reconnects) starts from what is stored now. Batches
   * in flight can no longer move the pointer. Unacknowledged batches cannot simply be replaced
   * within this session: the receiver processes `seq` in order and may still be working on one.
   */
  end(reason: string): void {
    if (this.isClosed) return;
    this.close();
    const fields = { consumer: this.consumer, session: this.id, reason };
    this.host.log.info('Push: session ended', fields);
    if (this.target.disconnect) this.target.disconnect(reason);
    else
      this.host.log.warn(
        'Push: the channel cannot be closed from here; the consumer resumes from the stored pointer at its next readyToReceive',
        fields,
      );
  }

  /** The number of events queued in memory, and batches sent and not yet acknowledged and stored. */
  get backlog(): { queued: number; inFlight: number } {
    return { queued: this.window.queued, inFlight: this.window.inFlight };
  }

  /** Reads the consumer's parking rule again (an administrator may have changed it). */
  refreshRule(): void {
    if (this.readingRule || this.isClosed) return;
    this.readingRule = true;
    this.host.store.parkingRule(this.consumer).then(
      (rule) => {
        this.readingRule = false;
        this.rule = rule;
        this.applyRule();
      },
      (err: unknown) => {
        this.readingRule = false;
        this.host.log.warn(`${this.consumer}: reading its parking rule failed: ${String(err)}`, {
          consumer: this.consumer,
          session: this.id,
          err: errorOf(err),
        });
      },
    );
  }

  /** max_attempts as the window applies it: none once the streak of parks reached its bound. */
  private applyRule(): void {
    const { maxAttempts, streak } = this.rule;
    this.window.setMaxAttempts(streak < this.options.parkMaxStreak ? maxAttempts : null);
  }

  offer(items: readonly Delivery[], coversUpTo: EventId): void {
    if (this.isClosed) return;
    // Too far behind for memory: the window reads the store again from what it has sent.
    const dropped = this.window.offer(items, coversUpTo);
    if (dropped > 0) this.host.queueOverflow(this.consumer, dropped);
    this.pump();
  }

  private leaveChannel(): void {
    if (this.channel) {
      this.channel.leave(this);
      this.channel = null;
    }
  }

  /**
   * Starts what the window allows now, then stores the pointer if it may move. The session is a
   * member of the tail channel only while the window is in tail mode.
   */
  private pump(): void {
    const pace = { now: performance.now(), intervalMs: this.host.reliableCallIntervalMs };
    for (let step = this.window.next(pace); step && !this.isClosed; step = this.window.next(pace)) {
      if (step.do === 'send') this.transmit(step.batch);
      else if (step.do === 'read') void this.read(step.after);
      else if (step.do === 'readReplays') void this.readReplays(step.after);
      else {
        this.pace.at(step.until, pace.now);
        break;
      }
    }
    if (this.window.mode !== 'tail' || this.draining) this.leaveChannel();
    this.writer.kick();
    this.drained.check(this.settled);
  }

  private async read(after: EventId): Promise<void> {
    try {
      const chunk = await this.reader.next(after, this.want, this.options.limits);
      this.readFailures = 0;
      this.tooLargeAttempts = 0;
      const last = chunk.events[chunk.events.length - 1];
      this.window.readDone(
        toDeliveries(chunk.events),
        chunk.complete || !last ? chunk.horizon : last.id,
      );
      if (chunk.complete && !this.isClosed) this.tryJoinTail(chunk.horizon);
    } catch (err) {
      if (err instanceof EventTooLarge) {
        await this.waitOnTooLarge(err);
      } else {
        this.host.log.warn('Push: reading events failed', {
          consumer: this.consumer,
          session: this.id,
          event_id: after,
          err: errorOf(err),
        });
        await sleep(this.retry.delay(++this.readFailures));
      }
      this.window.readFailed();
    }
    this.pump();
  }

  /**
   * Reads the consumer's events to replay, marked `replayed: true`. One too large for this
   * channel is left for a later session (with larger messages), with a warning.
   */
  private async readReplays(after: EventId): Promise<void> {
    const { maxEvents, maxBytes } = this.options.limits;
    try {
      const rows = await this.host.store.parkedReplays(this.consumer, after, maxEvents);
      const items: Delivery[] = [];
      let bytes = 0;
      let readUpTo = after;
      let complete = rows.length < maxEvents;
      for (const d of toDeliveries(rows)) {
        if (d.bytes > maxBytes) {
          this.host.log.warn(
            `${this.consumer}: parked event ${d.event.id} (${d.bytes} bytes) is larger than one onEvents call of this session carries; it stays to be replayed at a session with larger messages`,
            { consumer: this.consumer, session: this.id, event_id: d.event.id },
          );
        } else if (bytes + d.bytes > maxBytes) {
          complete = false;
          break;
        } else {
          bytes += d.bytes;
          items.push({ event: { ...d.event, replayed: true }, bytes: d.bytes });
        }
        readUpTo = d.event.id;
      }
      this.readFailures = 0;
      this.window.replaysRead(items, readUpTo, complete);
    } catch (err) {
      this.host.log.warn(`${this.consumer}: reading events to replay failed: ${String(err)}`, {
        consumer: this.consumer,
        session: this.id,
        err: errorOf(err),
      });
      await sleep(this.retry.delay(++this.readFailures));
      this.window.readFailed();
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
    if (this.isClosed || this.window.pending > 0) return;
    try {
      const position = await this.host.store.consumerPosition(this.consumer);
      if (position === null) this.end('it is no longer registered');
      else if (position.move !== null || position.pointer !== this.writer.pointer)
        this.end('its pointer was moved elsewhere');
    } catch (e) {
      this.host.log.warn('Push: reading the pointer failed', {
        consumer: this.consumer,
        session: this.id,
        err: errorOf(e),
      });
    }
  }

  /** Caught up to `horizon`: join the channel if it has not read past it yet. */
  private tryJoinTail(horizon: EventId): void {
    const channel = this.host.channelOf(this.want, horizon);
    if (cmpIds(horizon, channel.tailId) < 0) return; // the channel is ahead: read on
    this.window.enterTail(horizon);
    this.channel = channel;
    channel.join(this);
  }

  /**
   * Sends a batch, unless the session may no longer push (fencing: its node lost the consumer's
   * lock or has not heard from the database within the fence bound); then it ends at once.
   */
  private transmit(batch: Batch): void {
    if (this.isClosed) return;
    if (!this.ownership.valid) {
      this.end('this node may no longer push it (its coordination with the database lapsed)');
      return;
    }
    const { items } = batch;
    this.target.send(batch.seq, items).then(
      () => {
        this.host.pushed(this.consumer, items.length);
        this.host.log.debug('Push: delivered', this.batchFields(batch));
        this.window.acked(batch.seq);
        if (batch.replay) this.resolveReplays(items.map((d) => d.event.id));
        if (this.rule.streak > 0 && items.length > 0) this.clearStreak();
        this.pump();
        this.restartIfSettled();
      },
      (err: unknown) => {
        if (this.isClosed) return;
        const outcome = this.window.failed(batch.seq, { atMs: Date.now(), error: err });
        this.host.log.warn('Push: onEvents failed', {
          ...this.batchFields(batch),
          attempt: outcome.failures,
          err: errorOf(err),
        });
        this.host.pushError(this.consumer, err);
        // Draining: the batch is not sent again here; the consumer's next session sends it.
        this.drained.check(this.settled);
        // An administrator may have set or changed max_attempts since this session began.
        this.refreshRule();
        this.onFailed(batch.seq, outcome);
      },
    );
  }

  /** What a log line says of a batch: the consumer, the session, seq, its last ID and size. */
  private batchFields(batch: Batch): LogFields {
    return {
      consumer: this.consumer,
      session: this.id,
      seq: batch.seq,
      event_id: batch.items[batch.items.length - 1]?.event.id,
      events: batch.items.length,
      epoch: this.ownership.epoch,
    };
  }

  private onFailed(seq: number, outcome: FailOutcome): void {
    switch (outcome.do) {
      case 'retry':
        this.resendLater(seq, outcome.failures);
        break;
      case 'narrow':
        this.pump();
        break;
      case 'park':
        void this.park(seq, outcome);
        break;
      case 'restart':
        this.restart = { seq, hint: outcome.hint };
        this.restartIfSettled();
        break;
    }
  }

  private resendLater(seq: number, failures: number): void {
    setTimeout(() => {
      const again = this.isClosed ? null : this.window.resend(seq);
      if (again) this.transmit(again);
    }, this.retry.delay(failures)).unref();
  }

  /** Records the park, then lets the pointer pass the event; if that fails, tries again later. */
  private async park(seq: number, p: FailOutcome & { do: 'park' }): Promise<void> {
    const error = p.last.error;
    const errorCode = isEvtError(error) ? String(error.code) : 'InternalError';
    const errorInfo = isEvtError(error) ? error.info : String(error);
    const e = p.event;
    let streak: number | null;
    try {
      streak = await this.host.store.parkEvent(this.consumer, {
        event: { id: e.id, type: e.type, data: JSON.stringify(e.data) ?? 'null', ts: e.ts },
        attempts: p.attempts,
        firstFailureMs: p.first.atMs,
        lastFailureMs: p.last.atMs,
        errorCode,
        errorInfo,
        epoch: this.ownership.epoch,
      });
    } catch (err) {
      this.host.log.warn(`${this.consumer}: parking event ${e.id} failed: ${String(err)}`, {
        consumer: this.consumer,
        session: this.id,
        event_id: e.id,
        err: errorOf(err),
      });
      this.resendLater(seq, p.failures);
      return;
    }
    if (this.isClosed) return;
    if (streak === null) {
      this.end(
        `its owner epoch ${this.ownership.epoch} no longer holds (another node took the consumer over, or it was dropped); event ${e.id} was not parked here`,
      );
      return;
    }
    this.window.parked(seq);
    this.rule = { ...this.rule, streak };
    this.applyRule();
    const suspended = this.rule.maxAttempts !== null && streak >= this.options.parkMaxStreak;
    this.host.parked(this.consumer, {
      event: e,
      attempts: p.attempts,
      errorCode,
      errorInfo,
      streak,
      suspended,
    });
    this.pump();
  }

  /** An event went through: the streak of parks starts over (and parking again, if it stopped). */
  private clearStreak(): void {
    this.rule = { ...this.rule, streak: 0 };
    this.applyRule();
    this.host.store.clearParkStreak(this.consumer).catch((err: unknown) => {
      this.host.log.warn(`${this.consumer}: clearing its streak of parks failed: ${String(err)}`, {
        consumer: this.consumer,
        session: this.id,
        err: errorOf(err),
      });
    });
  }

  /**
   * Replayed events were delivered: resolved. Should that fail, they stay marked and are
   * delivered again at the next session (at least once).
   */
  private resolveReplays(ids: EventId[]): void {
    this.host.replayed(this.consumer, ids.length);
    this.host.store.parkedReplayed(this.consumer, ids).catch((err: unknown) => {
      this.host.log.warn(
        `${this.consumer}: recording events ${ids.join(', ')} as replayed failed (they are replayed again at the next session): ${String(err)}`,
        { consumer: this.consumer, session: this.id, err: errorOf(err) },
      );
    });
  }

  /**
   * A restart waits until every batch before the failing one was acknowledged and its pointer
   * stored (else the next session would deliver them again); then the session ends, and the
   * hub hands the narrowing to the next one, from the pointer stored.
   */
  private restartIfSettled(): void {
    const r = this.restart;
    if (!r || this.isClosed || !this.window.settledBefore(r.seq)) return;
    const move = this.window.pointerMove();
    if (move && !move.skipOnly && cmpIds(move.to, this.writer.pointer) > 0) return;
    this.host.narrowInNextSession(this.consumer, { ...r.hint, from: this.writer.pointer });
    this.end(
      'its receiver keeps failing on a batch: a new session narrows it down to the failing event',
    );
  }
}

/**
 * A LIVE consumer's push session: new events only, best effort, no state stored. When the
 * consumer falls behind by more than the queue holds, the oldest queued events are dropped and
 * the next `seq` skips a number to show the gap. An event larger than one message of the channel
 * carries is dropped the same way (reported: see PushHub.eventTooLarge). Its calls start at
 * least the host's liveCallIntervalMs apart: what comes meanwhile waits for the next call.
 */
export class LiveSession implements Session {
  readonly consumer = 'LIVE';
  readonly id = nextSessionId('l');
  private seq = 0;
  private gap = false;
  private readonly queue = new DeliveryQueue();
  private inFlight = 0;
  private isClosed = false;
  private draining = false;
  private readonly drained = new DrainWaiters();
  /** When the last call started (performance.now()). */
  private lastCallAt = Number.NEGATIVE_INFINITY;
  /** Sends what waits for the pace. */
  private readonly pace = new PaceTimer(() => this.pump());

  constructor(
    private readonly host: SessionHost,
    private readonly channel: TailChannel,
    readonly target: PushTarget,
    private readonly options: SessionOptions,
  ) {
    target.onClose(() => this.close());
    channel.join(this);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.pace.clear();
    this.channel.leave(this);
    this.queue.clear();
    this.host.closed(this);
    this.drained.check(() => true);
  }

  /** Sends nothing new; resolves once the calls in flight have their answers. */
  drain(): Promise<void> {
    this.draining = true;
    return this.drained.wait(() => this.isClosed || this.inFlight === 0);
  }

  offer(items: readonly Delivery[]): void {
    if (this.isClosed) return;
    for (const d of items) this.queue.push(d);
    let dropped = 0;
    while (
      this.queue.length > 0 &&
      this.queue.exceeds(this.options.queueMaxEvents, this.options.queueMaxBytes)
    ) {
      this.queue.shift();
      dropped++;
    }
    if (dropped > 0) {
      this.gap = true;
      this.host.queueOverflow(this.consumer, dropped);
    }
    this.pump();
  }

  /**
   * Sends what is queued, up to maxInFlight calls; events that do not fill a batch wait while a
   * call is unanswered (see DeliveryWindow: one call per round trip at a trickle), and while the
   * last call started less than the host's liveCallIntervalMs ago.
   */
  private pump(): void {
    for (
      let head = this.queue.head;
      head &&
      !this.isClosed &&
      !this.draining &&
      this.inFlight < this.options.maxInFlight &&
      (this.inFlight === 0 || this.queue.fills(this.options.limits));
      head = this.queue.head
    ) {
      const { maxBytes, version } = this.options.limits;
      if (head.bytes > maxBytes) {
        this.queue.shift();
        this.gap = true;
        this.host.eventTooLarge(
          this.consumer,
          new EventTooLarge(head.event.id, head.bytes, maxBytes, version),
        );
        continue;
      }
      const now = performance.now();
      const due = this.lastCallAt + this.host.liveCallIntervalMs;
      // A whole batch goes at once: pacing is there to gather events into fewer calls, and a
      // full call has gathered all it can (holding it back would cap the session's throughput).
      if (due > now && !this.queue.fills(this.options.limits)) {
        this.pace.at(due, now);
        return;
      }
      this.lastCallAt = now;
      const chunk = this.queue.take(this.options.limits);
      if (this.gap) {
        this.seq++;
        this.gap = false;
      }
      const seq = this.seq++;
      this.inFlight++;
      this.target
        .send(seq, chunk)
        .then(() => {
          this.host.pushed(this.consumer, chunk.length);
          this.host.log.debug('Push: delivered', {
            consumer: this.consumer,
            session: this.id,
            seq,
            event_id: chunk[chunk.length - 1]?.event.id,
            events: chunk.length,
          });
        })
        .catch((err: unknown) => {
          if (this.isClosed) return;
          this.host.log.warn('Push: onEvents failed; LIVE events are not sent again', {
            consumer: this.consumer,
            session: this.id,
            seq,
            event_id: chunk[0]?.event.id,
            events: chunk.length,
            err: errorOf(err),
          });
          this.host.pushError(this.consumer, err);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
          this.drained.check(() => this.isClosed || this.inFlight === 0);
        });
    }
  }
}
