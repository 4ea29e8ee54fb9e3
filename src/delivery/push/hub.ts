import { cmpIds, type EventId } from '../../common/ids';
import type { Logger } from '../../common/log';
import type { StreamCounters } from '../../storage/counters';
import type { EventStore } from '../../storage/store';
import { INTERNAL_CHUNK_BYTES, type ChunkLimits } from '../limits';
import { ChunkReader, type EventTooLarge } from '../reader';
import { ErrorCode, EvtError } from '../../common/errors';
import { ATTR, OPERATIONS, setBatch, traced } from '../../common/tracing';
import { LIVE_COMPONENT, MAX_EVENTS_PER_LIST } from '../../common/constants';
import {
  LiveSession,
  ReliableSession,
  type PushTarget,
  type Session,
  type SessionHost,
  type ParkReport,
  type SessionOptions,
  type TailChannel,
} from './session';
import type { NarrowHint } from './window';
import { toDeliveries } from './queue';
import { Waker, type Wake, type WakeResult, type WakerOptions } from './waker';

export interface HubEvents {
  pushError(consumer: string, err: unknown): void;
  queueOverflow(consumer: string, dropped: number): void;
  /** An event was parked for the consumer (see ReliableSession). */
  eventParked?(consumer: string, park: ParkReport): void;
}

const wantKey = (want: readonly string[] | null): string =>
  want ? [...new Set(want)].sort().join(':') : '*';

/** A channel's reads are shared by its members, whatever their message limits. */
const CHANNEL_LIMITS: ChunkLimits = {
  maxEvents: MAX_EVENTS_PER_LIST,
  maxBytes: INTERNAL_CHUNK_BYTES,
  version: '1.1',
};

/** Where a channel's read goes up to: the gap-safe horizon, by what woke the hub. */
type HorizonSource = () => Promise<EventId>;

/**
 * New events for every session with the same `want`: one read from the store, offered to all
 * members. Its position only moves forward, up to the gap-safe horizon.
 */
class WantChannel implements TailChannel {
  private readonly members = new Set<Session>();
  private reading = false;
  /** Set by a wake during a read: read again, up to the horizon that wake gives. */
  private again: HorizonSource | null = null;

  constructor(
    private readonly hub: PushHub,
    readonly key: string,
    private readonly want: readonly string[] | null,
    public tailId: EventId,
    private readonly reader: ChunkReader,
  ) {}

  get size(): number {
    return this.members.size;
  }

  join(member: Session): void {
    this.members.add(member);
  }

  leave(member: Session): void {
    this.members.delete(member);
    if (this.members.size === 0) this.hub.dropChannel(this);
  }

  /** Reads what is new up to `horizon` (again after the running read, if one runs); true if anything was. */
  async poke(horizon: HorizonSource): Promise<boolean> {
    if (this.reading) {
      this.again = horizon;
      return true;
    }
    this.reading = true;
    let found = false;
    try {
      for (let source: HorizonSource | null = horizon; source && this.members.size > 0;) {
        this.again = null;
        const upTo = await source();
        while (this.members.size > 0 && cmpIds(upTo, this.tailId) > 0) {
          const chunk = await this.reader.next(this.tailId, this.want, CHANNEL_LIMITS, upTo);
          const covers = chunk.complete ? upTo : chunk.events[chunk.events.length - 1]!.id;
          const items = toDeliveries(chunk.events);
          this.tailId = covers;
          found = true;
          for (const m of [...this.members]) m.offer(items, covers);
        }
        source = this.again;
      }
    } finally {
      this.reading = false;
    }
    return found;
  }
}

/**
 * How an operator does what a log line advises. Below the app they are said in terms of the
 * admin interface and the database; the app names its own tools instead (the CLI).
 */
export interface OperatorHints {
  /** How to read event `id` of `table`, whatever its size. */
  readEvent(table: string, id: EventId): string;
  /** How to move `consumer`'s pointer to `id`, so that delivery goes on after it. */
  skipTo(consumer: string, id: EventId): string;
  /** How to have parked event `id` delivered again (ADMIN_HINTS' when absent). */
  replayParked?(consumer: string, id: EventId): string;
  /** How to resolve parked event `id` without delivering it (ADMIN_HINTS' when absent). */
  skipParked?(consumer: string, id: EventId): string;
  /** How to set `consumer`'s max_attempts again (ADMIN_HINTS' when absent). */
  setMaxAttempts?(consumer: string): string;
}

export const ADMIN_HINTS: Required<OperatorHints> = {
  readEvent: (table, id) => `a query of the row with id ${id} in ${table}`,
  skipTo: (consumer, id) => `ftn18es.admin moveConsumer ${consumer} to id ${id}`,
  replayParked: (consumer, id) => `ftn18es.admin replayParked ${consumer} event_id ${id}`,
  skipParked: (consumer, id) => `ftn18es.admin skipParked ${consumer} event_id ${id}`,
  setMaxAttempts: (consumer) => `ftn18es.admin setMaxAttempts ${consumer}`,
};

/** The engine's settings: a push service's options, checked by pushSettings. */
export interface PushHubOptions {
  session: Omit<SessionOptions, 'limits'>;
  waker: WakerOptions;
  /** Default ADMIN_HINTS. */
  hints?: OperatorHints;
}

/**
 * The push engine of one event table: sessions of connected consumers, the shared channels of
 * new events per `want`, and what wakes them. One reliable session per consumer: a second
 * readyToReceive replaces the first.
 */
export class PushHub implements SessionHost {
  private readonly channels = new Map<string, WantChannel>();
  private readonly reliable = new Map<string, ReliableSession>();
  private readonly live = new Set<LiveSession>();
  private readonly reader: ChunkReader;
  private readonly waker: Waker;
  private isClosed = false;
  private isDraining = false;
  private readonly counters: StreamCounters;
  /** Per consumer, the event too large for its channel that was logged last (logged once). */
  private readonly tooLargeLogged = new Map<string, EventId>();
  /** Per consumer, what its next session goes on narrowing down (see ReliableSession). */
  private readonly narrowHints = new Map<string, NarrowHint>();

  constructor(
    readonly store: EventStore,
    readonly log: Logger,
    private readonly options: PushHubOptions,
    private readonly events: HubEvents,
  ) {
    this.reader = new ChunkReader(store);
    this.counters = store.counters;
    this.waker = new Waker(store, store.eventTable, (w) => this.wake(w), options.waker, log);
    this.waker.start();
  }

  /** Consumers with a session now. */
  get sessions(): number {
    return this.reliable.size + this.live.size;
  }

  /** Starts pushing to a registered consumer from its stored pointer; false if not registered. */
  async openReliable(
    ident: string,
    want: readonly string[] | null,
    target: PushTarget,
    limits: ChunkLimits,
  ): Promise<boolean> {
    this.refuseWhileDraining();
    const [position, rule] = await Promise.all([
      this.store.consumerPosition(ident),
      this.store.parkingRule(ident),
    ]);
    if (position === null) return false;
    // Checked again: the service may have started draining while the store answered.
    this.refuseWhileDraining();
    // A new session always starts from the stored pointer: a pending move is applied by that.
    const { pointer } = position;
    if (position.move !== null) await this.store.consumerMovesApplied(ident, position.move);
    if (this.isClosed) return true;
    this.reliable.get(ident)?.close();
    const narrow = this.narrowHints.get(ident) ?? null;
    this.narrowHints.delete(ident);
    const session = new ReliableSession(
      this,
      ident,
      want,
      this.instrumented(target, ident),
      { pointer, rule, narrow },
      {
        ...this.options.session,
        limits,
      },
    );
    this.reliable.set(ident, session);
    session.start();
    return true;
  }

  /** Starts pushing new events (from now on) to a LIVE consumer. */
  async openLive(
    want: readonly string[] | null,
    target: PushTarget,
    limits: ChunkLimits,
  ): Promise<void> {
    this.refuseWhileDraining();
    const horizon = await this.store.horizon();
    this.refuseWhileDraining();
    if (this.isClosed) return;
    this.live.add(
      new LiveSession(
        this,
        this.channelOf(want, horizon),
        this.instrumented(target, LIVE_COMPONENT),
        {
          ...this.options.session,
          limits,
        },
      ),
    );
  }

  /**
   * The target with each onEvents call in a span, and its success counted as the acknowledgement
   * of its events for delivery latency (StreamCounters.latency).
   */
  private instrumented(target: PushTarget, consumer: string): PushTarget {
    const table = this.store.eventTable;
    return {
      send: (seq, items) =>
        traced(OPERATIONS.onEvents, table, async (span) => {
          if (span.isRecording()) {
            span.setAttribute(ATTR.consumer, consumer);
            span.setAttribute(ATTR.seq, seq);
            setBatch(
              span,
              items.map((d) => d.event),
            );
          }
          await target.send(seq, items);
          this.counters.latency?.acknowledged(
            consumer,
            table,
            items.map((d) => d.event),
          );
        }),
      onClose: (cb) => target.onClose(cb),
      ...(target.disconnect ? { disconnect: (reason: string) => target.disconnect?.(reason) } : {}),
    };
  }

  channelOf(want: readonly string[] | null, startAt: EventId): WantChannel {
    const key = wantKey(want);
    let channel = this.channels.get(key);
    if (!channel) {
      channel = new WantChannel(this, key, want, startAt, this.reader);
      this.channels.set(key, channel);
      this.waker.resume();
    }
    return channel;
  }

  dropChannel(channel: WantChannel): void {
    if (this.channels.get(channel.key) === channel && channel.size === 0)
      this.channels.delete(channel.key);
  }

  closed(session: Session): void {
    if (session instanceof ReliableSession) {
      if (this.reliable.get(session.consumer) === session) this.reliable.delete(session.consumer);
    } else if (session instanceof LiveSession) {
      this.live.delete(session);
    }
  }

  pushError(consumer: string, err: unknown): void {
    this.counters.pushFailures++;
    this.events.pushError(consumer, err);
  }

  /**
   * An event larger than one message of the consumer's channel carries. Each attempt (each
   * skipped event for LIVE) counts as a push failure and emits 'pushError' with the FutoIn
   * error (NotSupportedVersion when FTN18 1.1 would carry it); a skipped LIVE event counts as
   * dropped too. The log gets one line per consumer and event, not one per attempt: an error
   * for a reliable consumer, which waits on the event until it gets past it, a warning for LIVE.
   */
  eventTooLarge(consumer: string, err: EventTooLarge): void {
    const live = consumer === LIVE_COMPONENT;
    this.counters.pushFailures++;
    if (live) this.counters.liveDropped++;
    if (this.tooLargeLogged.get(consumer) !== err.eventId) {
      this.tooLargeLogged.set(consumer, err.eventId);
      const what =
        `event ${err.eventId} (${err.bytes} bytes) is larger than one onEvents call to a` +
        ` futoin.evt.receiver ${err.version} carries (${err.limit} bytes of events)`;
      if (live) {
        this.log.warn(
          `LIVE: ${what}; skipped for LIVE consumers (counted as dropped; their seq skips a number).` +
            (err.code === ErrorCode.NotSupportedVersion
              ? ' futoin.evt.receiver 1.1 receives events up to 8 MiB.'
              : ''),
        );
      } else {
        const hints = this.options.hints ?? ADMIN_HINTS;
        const skip = hints.skipTo(consumer, err.eventId);
        this.log.error(
          `${consumer}: ${what}; push delivery waits on it, never skips it, and tries again` +
            ` backing off (each attempt emits pushError). ` +
            (err.code === ErrorCode.NotSupportedVersion
              ? `To deliver it, connect the consumer with futoin.evt.push 1.1 (its` +
                ` futoin.evt.receiver 1.1 takes 8 MiB messages), or fetch it with` +
                ` futoin.evt.poll 1.1 pollEvents (8 MiB responses)` +
                ` and acknowledge it with the next poll's last_id; push then goes on after it.` +
                ` To skip it: ${skip}`
              : `No FTN18 message carries it (8 MiB at most): read it with` +
                ` ${hints.readEvent(this.store.eventTable, err.eventId)}, then skip it: ${skip}`),
        );
      }
    }
    this.events.pushError(consumer, err);
  }

  pushed(consumer: string, events: number): void {
    this.counters.pushed(consumer, events);
  }

  /**
   * One warning per park (consumer, event, attempts, the receiver's error, how to replay or
   * skip it); an error when parking stopped at the bound of parks in a row.
   */
  parked(consumer: string, park: ParkReport): void {
    this.counters.consumer(consumer).parked++;
    const hints = { ...ADMIN_HINTS, ...this.options.hints };
    const e = park.event;
    this.log.warn(
      `${consumer}: parked event ${e.id} (${e.type}) after ${park.attempts} failed onEvents calls,` +
        ` the last answered ${park.errorCode}: ${park.errorInfo}; delivery goes on after it.` +
        ` To deliver it again once the receiver is fixed: ${hints.replayParked(consumer, e.id)};` +
        ` to resolve it without delivery: ${hints.skipParked(consumer, e.id)}`,
    );
    if (park.suspended) {
      this.log.error(
        `${consumer}: ${park.streak} events parked in a row with none delivered in between:` +
          ` parking stops, and delivery waits on the next failing event as without max_attempts` +
          ` until an event goes through again, or until max_attempts is set again` +
          ` (${hints.setMaxAttempts(consumer)}). Its receiver may be failing on every event.`,
      );
    }
    this.events.eventParked?.(consumer, park);
  }

  replayed(consumer: string, events: number): void {
    this.counters.consumer(consumer).replayed += events;
  }

  narrowInNextSession(consumer: string, hint: NarrowHint): void {
    this.narrowHints.set(consumer, hint);
  }

  /** The consumer's session here reads its parking rule again (an administrator changed it). */
  refreshParking(ident: string): void {
    this.reliable.get(ident)?.refreshRule();
  }

  /** Parks in a row after which a consumer parks no more (push option park_max_streak). */
  get parkMaxStreak(): number {
    return this.options.session.parkMaxStreak;
  }

  queueOverflow(consumer: string, dropped: number): void {
    if (consumer === LIVE_COMPONENT) this.counters.liveDropped += dropped;
    else this.counters.queueOverflows++;
    this.events.queueOverflow(consumer, dropped);
  }

  /** Reliable consumers with a session here, with what each has queued and in flight. */
  reliableSessions(): { consumer: string; queued: number; inFlight: number }[] {
    return [...this.reliable.values()].map((s) => ({ consumer: s.consumer, ...s.backlog }));
  }

  /** LIVE sessions here. */
  get liveSessions(): number {
    return this.live.size;
  }

  /** Ends the consumer's session here, if any, closing its channel (see ReliableSession.end). */
  endSession(ident: string, reason: string): boolean {
    const session = this.reliable.get(ident);
    if (!session) return false;
    session.end(reason);
    return true;
  }

  /**
   * Reads new events for every channel, up to one horizon: after a commit of this process the
   * one that commit allows (no probe where one writer at a time is guaranteed), else a fresh one.
   */
  async wake(wake: Wake = { by: 'poll' }): Promise<WakeResult> {
    if (this.isClosed || this.channels.size === 0)
      return { idle: true, found: false, waiting: false };
    let horizon: Promise<EventId> | null = null;
    const source = (): Promise<EventId> =>
      (horizon ??= wake.by === 'commit' ? this.store.horizonAfterCommit() : this.store.horizon());
    const results = await Promise.allSettled(
      [...this.channels.values()].map((c) => c.poke(source)),
    );
    for (const r of results) {
      if (r.status === 'rejected')
        this.log.warn(`Reading new events failed: ${(r.reason as Error).message}`);
    }
    return {
      idle: false,
      found: results.some((r) => r.status === 'fulfilled' && r.value),
      waiting: this.store.horizonOf(this.store.eventTable).waiting,
    };
  }

  /** Whether drain() was called: new sessions are refused. */
  get draining(): boolean {
    return this.isDraining;
  }

  /**
   * For a shutdown: new sessions are refused (DefenseRejected, which receivers take as a reason
   * to connect again, elsewhere), nothing new is read or sent, and the batches in flight get
   * their answers and their pointer writes (see Session.drain). Resolves once every session is
   * settled; the sessions stay open until close().
   */
  async drain(): Promise<void> {
    this.isDraining = true;
    this.waker.stop();
    await Promise.all([...this.reliable.values(), ...this.live].map((s) => s.drain()));
  }

  /**
   * Ends every session. When draining, their WebSocket channels are closed as going away, so
   * that receivers connect again at once, to another node.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.waker.stop();
    for (const s of [...this.reliable.values(), ...this.live]) {
      s.close();
      if (this.isDraining) s.target.goingAway?.(SHUTTING_DOWN);
    }
  }

  private refuseWhileDraining(): void {
    if (this.isDraining) throw new EvtError(ErrorCode.DefenseRejected, SHUTTING_DOWN);
  }
}

/** Why new sessions are refused and open ones closed at a shutdown. */
export const SHUTTING_DOWN = 'The service is shutting down: connect again, to another node';
