import { cmpIds, type EventId } from '../../common/ids';
import { errorOf, type Logger } from '../../common/log';
import type { StreamCounters } from '../../storage/counters';
import type { EventStore, ParkingRule } from '../../storage/store';
import { INTERNAL_CHUNK_BYTES, type ChunkLimits } from '../limits';
import { Backlog, type WarehouseOpener } from '../backlog';
import { ChunkReader, type EventSource, type EventTooLarge } from '../reader';
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
import { endsSession, widerEnd, type ControlMessage } from '../../storage/coordination/control';
import type { Coordinator, Lease } from '../../storage/coordination/coordinator';
import { takeoverWaitMs } from '../../storage/coordination/options';

export interface HubEvents {
  pushError(consumer: string, err: unknown): void;
  queueOverflow(consumer: string, dropped: number): void;
  /** An event was parked for the consumer (see ReliableSession). */
  eventParked?(consumer: string, park: ParkReport): void;
}

const wantKey = (want: readonly string[] | null): string =>
  want ? [...new Set(want)].sort().join(':') : '*';

/** The least time (ms) between one session's calls when `sessions` share `perS` calls a second. */
const shareIntervalMs = (sessions: number, perS: number): number =>
  perS > 0 ? (sessions * 1000) / perS : 0;

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

  /**
   * The first member makes the channel read up to the horizon at once: an event committed after
   * `tailId` and announced while no channel was there to read it (see PushHub.wake) would wait
   * for the backstop's next poll, which may be long (poll_min_ms).
   */
  join(member: Session): void {
    this.members.add(member);
    if (this.members.size === 1) this.hub.catchUp(this);
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
  /** onEvents calls per second the LIVE sessions share at most (0: no limit). */
  liveCallsPerS: number;
  /**
   * onEvents calls per second the reliable sessions share at most for new events that do not
   * fill a batch (0: no limit).
   */
  reliableCallsPerS: number;
  /** Default ADMIN_HINTS. */
  hints?: OperatorHints;
  /** Where reliable consumers' catch-up finds what the discarder deleted (none by default). */
  warehouse?: WarehouseOpener | null;
}

/** A receiver that asked for a reliable consumer and waits for its turn (a standby). */
interface Waiting {
  want: readonly string[] | null;
  target: PushTarget;
  limits: ChunkLimits;
  gone: boolean;
}

/** A reliable consumer as this node sees it: its session, its lock, its standbys. */
interface Slot {
  readonly ident: string;
  active: ReliableSession | null;
  lease: Lease | null;
  /** The owner epoch of this node's last acquisition (for a clean release). */
  epoch: string | null;
  /** Receivers waiting for the consumer here, first come first. */
  readonly waiting: Waiting[];
  /** A takeover or a release runs. */
  busy: boolean;
  /**
   * An end asked for while a session was starting here: up to this owner epoch ('' any). The
   * starting session read the consumer before it, so it reads it again (see start).
   */
  endedUpTo: string | null;
  probing: boolean;
  /** When this node last asked the others to probe (monotonic ms). */
  probeAskedAt: number;
}

/** Reliable and LIVE sessions' counts, and standbys, for metrics and the admin interface. */
export interface PushHubStats {
  reliable: number;
  live: number;
  standby: number;
}

/**
 * The push engine of one event table: sessions of connected consumers, the shared channels of
 * new events per `want`, and what wakes them.
 *
 * One push session per reliable consumer across every node over the database: a node pushes a
 * consumer only while it holds the consumer's lock (see Coordinator), and each acquisition bumps
 * the consumer's owner epoch, which every pointer write of the session requires (fencing). First
 * wins: a readyToReceive for a consumer pushed already (here or on another node) waits as a
 * standby — two live replicas of a consumer service never take it from each other — and takes
 * over when that session ends. The waiting receiver makes whoever pushes the consumer ping its
 * own receiver: one that does not answer within probe_ms (a half-open connection) loses its
 * session at once. A node that took a consumer from another that did not let go cleanly waits
 * past that node's fence before it pushes.
 */
export class PushHub implements SessionHost {
  private readonly channels = new Map<string, WantChannel>();
  private readonly slots = new Map<string, Slot>();
  private readonly live = new Set<LiveSession>();
  /** Slots with an active session: reliable sessions here. */
  private reliableActive = 0;
  private readonly reader: ChunkReader;
  private readonly backlog: Backlog;
  private readonly waker: Waker;
  private isClosed = false;
  private isDraining = false;
  private readonly counters: StreamCounters;
  /** Per consumer, the event too large for its channel that was logged last (logged once). */
  private readonly tooLargeLogged = new Map<string, EventId>();
  /** Per consumer, what its next session goes on narrowing down (see ReliableSession). */
  private readonly narrowHints = new Map<string, NarrowHint>();
  private readonly coordinator: Coordinator;
  /** Takeover waits in progress: close() ends them at once. */
  private readonly pauses = new Set<() => void>();

  constructor(
    readonly store: EventStore,
    readonly log: Logger,
    private readonly options: PushHubOptions,
    private readonly events: HubEvents,
  ) {
    this.reader = new ChunkReader(store);
    this.counters = store.counters;
    this.backlog = new Backlog(store, options.warehouse ?? null, log, store.counters);
    this.coordinator = store.coordinator();
    this.coordinator.on('control', this.onControl);
    this.coordinator.on('tick', this.retryWaiting);
    this.coordinator.on('up', this.retryWaiting);
    this.coordinator.on('fenced', this.onFenced);
    this.waker = new Waker(store, store.eventTable, (w) => this.wake(w), options.waker, log);
    this.waker.start();
  }

  /** Consumers with a session now. */
  get sessions(): number {
    return this.reliableSessions().length + this.live.size;
  }

  /** Sessions and standbys here now. */
  stats(): PushHubStats {
    let reliable = 0;
    let standby = 0;
    for (const slot of this.slots.values()) {
      if (slot.active) reliable++;
      standby += slot.waiting.filter((w) => !w.gone).length;
    }
    return { reliable, live: this.live.size, standby };
  }

  /**
   * Starts pushing to a registered consumer, from its stored pointer, as soon as this node may
   * (see the class comment): at once when nobody pushes it, else as a standby. False if the
   * consumer is not registered.
   */
  async openReliable(
    ident: string,
    want: readonly string[] | null,
    target: PushTarget,
    limits: ChunkLimits,
  ): Promise<boolean> {
    this.refuseWhileDraining();
    if ((await this.store.consumerPointer(ident)) === null) return false;
    // Checked again: the service may have started draining while the store answered.
    this.refuseWhileDraining();
    if (this.isClosed) return true;
    const slot = this.slotOf(ident);
    const waiting: Waiting = { want, target, limits, gone: false };
    slot.waiting.push(waiting);
    target.onClose(() => {
      waiting.gone = true;
      this.prune(slot);
      this.settle(slot);
    });
    if (slot.active) {
      this.log.info(
        `${ident}: another receiver connected; it waits as a standby while the one pushed to answers`,
        { consumer: ident },
      );
      void this.probeActive(slot);
    } else if (!slot.busy) {
      // Answered once the session started, or once it waits (for a lock, for a fence).
      await this.takeOver(slot);
    }
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
      ...(target.goingAway ? { goingAway: (reason: string) => target.goingAway?.(reason) } : {}),
      ...(target.probe
        ? { probe: (ms: number) => target.probe?.(ms) ?? Promise.resolve(true) }
        : {}),
    };
  }

  backlogOf(consumer: string): EventSource {
    return this.backlog.forConsumer(consumer);
  }

  private slotOf(ident: string): Slot {
    let slot = this.slots.get(ident);
    if (!slot) {
      slot = {
        ident,
        active: null,
        lease: null,
        epoch: null,
        waiting: [],
        busy: false,
        probing: false,
        endedUpTo: null,
        probeAskedAt: -Infinity,
      };
      this.slots.set(ident, slot);
    }
    return slot;
  }

  private prune(slot: Slot): void {
    const live = slot.waiting.filter((w) => !w.gone);
    slot.waiting.splice(0, slot.waiting.length, ...live);
  }

  private lockName(ident: string): string {
    return `consumer/${this.store.consumerTable}/${ident}`;
  }

  /**
   * Moves a consumer on from where it stands, unless something runs for it already: a standby
   * takes over when no session runs; a lock nobody waits for is let go.
   */
  private settle(slot: Slot): void {
    if (slot.busy || slot.active) return;
    this.prune(slot);
    if (slot.waiting.length > 0 && !this.isClosed && !this.isDraining) void this.takeOver(slot);
    else if (slot.lease) void this.release(slot);
    else if (slot.waiting.length === 0) this.slots.delete(slot.ident);
  }

  /**
   * Takes the consumer for its first standby: its lock (unless held already), then the claim
   * (a new owner epoch) and, if another node had it without letting go, a wait past that node's
   * fence. An attempt that cannot take the lock asks its holder to probe its receiver, and is
   * tried again at the next heartbeat (or when the holder lets go).
   */
  private async takeOver(slot: Slot): Promise<void> {
    slot.busy = true;
    // Ends asked for before this attempt concern sessions before it.
    slot.endedUpTo = null;
    const { ident } = slot;
    let waiting = false;
    try {
      if (!slot.lease?.valid) {
        slot.lease = null;
        const lease = await this.coordinator.tryAcquire(this.lockName(ident));
        if (!lease) {
          this.askProbe(slot);
          return;
        }
        slot.lease = lease;
      }
      const lease = slot.lease;
      const claim = await this.store.claimConsumer(ident, this.coordinator.node);
      if (!claim) {
        this.dropWaiting(slot, 'it is no longer registered');
        return;
      }
      slot.epoch = claim.epoch;
      // Alone (SQLite, coordination off), no other node can be pushing it.
      const other = claim.previous !== null && claim.previous !== this.coordinator.node;
      if (other && this.coordinator.kind === 'database') {
        waiting = true;
        void this.startAfterFence(slot, lease, claim.epoch, claim.previous ?? '');
        return;
      }
      await this.start(slot, lease, claim);
    } catch (err) {
      this.log.warn(`${ident}: taking the consumer failed: ${String(err)}; trying again`, {
        consumer: ident,
        err: errorOf(err),
      });
    } finally {
      if (!waiting) this.attempted(slot);
    }
  }

  /**
   * The node that had the consumer did not let go cleanly (it died, or lost the database): it
   * stops pushing fence_ms after its last heartbeat at the latest, which came before its lock
   * was freed. Wait past that, then start from where the consumer stands then.
   */
  private async startAfterFence(
    slot: Slot,
    lease: Lease,
    epoch: string,
    previous: string,
  ): Promise<void> {
    const { ident } = slot;
    try {
      const wait = takeoverWaitMs(this.coordinator.settings);
      this.log.info(
        `${ident}: taking over from node ${previous} (epoch ${epoch}), which did not let go cleanly: waiting ${wait} ms, past its fence`,
        { consumer: ident, node: this.coordinator.node, previous_node: previous, epoch },
      );
      await this.pause(wait);
      if (!lease.valid || this.isClosed) return;
      const position = await this.store.consumerOwned(ident);
      if (position?.epoch === epoch) await this.start(slot, lease, position);
    } catch (err) {
      this.log.warn(`${ident}: taking the consumer failed: ${String(err)}; trying again`, {
        consumer: ident,
        err: errorOf(err),
      });
    } finally {
      this.attempted(slot);
    }
  }

  /**
   * Starts the session of the first standby, from `position` (which the lease's claim read).
   * An end asked for meanwhile (an administrator moved the consumer after that read) makes it
   * claim and read the consumer again: nothing is pushed from a position read before it.
   */
  private async start(
    slot: Slot,
    lease: Lease,
    position: { pointer: EventId; epoch: string; move: string | null },
  ): Promise<void> {
    const { ident } = slot;
    let rule: ParkingRule;
    for (;;) {
      // A new session starts from the stored pointer: a pending move is applied by that.
      if (position.move !== null) await this.store.consumerMovesApplied(ident, position.move);
      rule = await this.store.parkingRule(ident);
      const ended = slot.endedUpTo;
      slot.endedUpTo = null;
      if (ended === null || !endsSession(position.epoch, ended)) break;
      if (!lease.valid || this.isClosed) return;
      const again = await this.store.claimConsumer(ident, this.coordinator.node);
      if (!again) {
        this.dropWaiting(slot, 'it is no longer registered');
        return;
      }
      slot.epoch = again.epoch;
      position = again;
    }
    this.prune(slot);
    const next = slot.waiting[0];
    // Draining: a standby gets no session here (its receiver connects again, elsewhere).
    if (!next || !lease.valid || this.isClosed || this.isDraining) return;
    slot.waiting.shift();
    const narrow = this.narrowHints.get(ident) ?? null;
    this.narrowHints.delete(ident);
    const session = new ReliableSession(
      this,
      ident,
      next.want,
      this.instrumented(next.target, ident),
      { pointer: position.pointer, rule, narrow },
      { ...this.options.session, limits: next.limits },
      {
        epoch: position.epoch,
        get valid() {
          return lease.valid;
        },
      },
    );
    if (!slot.active) this.reliableActive++;
    slot.active = session;
    this.log.info(
      `${ident}: pushing from node ${this.coordinator.node} (epoch ${position.epoch}, after event ${position.pointer})`,
      {
        consumer: ident,
        session: session.id,
        node: this.coordinator.node,
        epoch: position.epoch,
        event_id: position.pointer,
      },
    );
    session.start();
  }

  /** A takeover attempt ended: only what changed moves on now (a failure waits for a heartbeat). */
  private attempted(slot: Slot): void {
    slot.busy = false;
    if (slot.active) return;
    this.prune(slot);
    if (slot.waiting.length === 0 || this.isClosed) this.settle(slot);
  }

  /** Lets go of a consumer nobody here waits for: cleanly, so a successor need not wait. */
  private async release(slot: Slot): Promise<void> {
    slot.busy = true;
    const { ident, lease, epoch } = slot;
    slot.lease = null;
    slot.epoch = null;
    const work = (async () => {
      // The session has ended: nothing more is sent under this epoch.
      if (epoch !== null) {
        await this.store
          .releaseConsumer(ident, epoch)
          .catch((err: unknown) =>
            this.log.warn(`${ident}: clearing its owner failed: ${String(err)}`),
          );
      }
      await lease?.release();
      if (epoch !== null) {
        await this.coordinator
          .send({ kind: 'released', scope: this.store.consumerTable, subject: ident, info: '' })
          .catch(() => undefined);
      }
    })();
    this.coordinator.track(work);
    await work;
    slot.busy = false;
    this.settle(slot);
  }

  /** Waits `ms`, or less if the hub closes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.pauses.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.pauses.add(done);
    });
  }

  /** Asks the node pushing the consumer to probe its receiver (at most once per fence bound). */
  private askProbe(slot: Slot): void {
    const at = performance.now();
    if (at - slot.probeAskedAt < this.coordinator.settings.fenceMs) return;
    slot.probeAskedAt = at;
    void this.coordinator
      .send({ kind: 'probe', scope: this.store.consumerTable, subject: slot.ident, info: '' })
      .catch((err: unknown) =>
        this.log.debug(`${slot.ident}: asking for a probe failed: ${String(err)}`),
      );
  }

  /** Pings the receiver of the session here; ends the session if it does not answer. */
  private async probeActive(slot: Slot): Promise<void> {
    const session = slot.active;
    if (!session || slot.probing) return;
    slot.probing = true;
    const ms = this.coordinator.settings.probeMs;
    try {
      const alive = await session.probe(ms);
      if (!alive && slot.active === session) {
        session.end(
          `its receiver did not answer a ping within ${ms} ms while another waits for it`,
        );
      }
    } finally {
      slot.probing = false;
    }
  }

  private dropWaiting(slot: Slot, reason: string): void {
    for (const w of slot.waiting.splice(0)) {
      w.gone = true;
      this.disconnect(slot.ident, w.target, reason);
    }
  }

  private disconnect(ident: string, target: PushTarget, reason: string): void {
    if (target.disconnect) target.disconnect(reason);
    else this.log.warn(`${ident}: ${reason}; its channel cannot be closed from here`);
  }

  private readonly onControl = (message: ControlMessage): void => {
    if (message.scope !== this.store.consumerTable || this.isClosed) return;
    const slot = this.slots.get(message.subject);
    if (!slot) return;
    if (message.kind === 'probe') void this.probeActive(slot);
    else if (message.kind === 'end')
      this.endSession(
        message.subject,
        message.info || `node ${message.from} ended its session`,
        message.epoch,
      );
    else if (message.kind === 'released' && !slot.active && !slot.busy) this.settle(slot);
  };

  /** At each heartbeat (and once connected): standbys try to take over. */
  private readonly retryWaiting = (): void => {
    for (const slot of [...this.slots.values()]) {
      if (!slot.active && !slot.busy) this.settle(slot);
    }
  };

  /**
   * This node lost its coordination: every reliable session ends at once and every channel
   * waiting for one is closed, so that receivers connect again (through the load balancer, to a
   * node that can serve them).
   */
  private readonly onFenced = (reason: string): void => {
    const why = `this node lost its coordination with the database (${reason})`;
    for (const slot of [...this.slots.values()]) {
      slot.lease = null;
      this.dropWaiting(slot, why);
      slot.active?.end(why);
    }
  };

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

  /** Has `channel` read up to the horizon now (see WantChannel.join). */
  catchUp(channel: WantChannel): void {
    if (this.isClosed || this.isDraining) return;
    channel
      .poke(() => this.store.horizon())
      .catch((err: unknown) =>
        this.log.warn('Push: reading new events failed', { err: errorOf(err) }),
      );
  }

  dropChannel(channel: WantChannel): void {
    if (this.channels.get(channel.key) === channel && channel.size === 0)
      this.channels.delete(channel.key);
  }

  closed(session: Session): void {
    if (session instanceof ReliableSession) {
      const slot = this.slots.get(session.consumer);
      if (slot?.active !== session) return;
      slot.active = null;
      this.reliableActive--;
      this.log.info(`${session.consumer}: push session ended here (epoch ${session.epoch})`, {
        consumer: session.consumer,
        session: session.id,
        epoch: session.epoch,
      });
      this.settle(slot);
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
          { consumer, event_id: err.eventId },
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
          { consumer, event_id: err.eventId },
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
      { consumer, event_id: e.id, attempts: park.attempts, error_code: park.errorCode },
    );
    if (park.suspended) {
      this.log.error(
        `${consumer}: ${park.streak} events parked in a row with none delivered in between:` +
          ` parking stops, and delivery waits on the next failing event as without max_attempts` +
          ` until an event goes through again, or until max_attempts is set again` +
          ` (${hints.setMaxAttempts(consumer)}). Its receiver may be failing on every event.`,
        { consumer, event_id: e.id, streak: park.streak },
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
    this.slots.get(ident)?.active?.refreshRule();
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
    const out: { consumer: string; queued: number; inFlight: number }[] = [];
    for (const slot of this.slots.values()) {
      if (slot.active) out.push({ consumer: slot.ident, ...slot.active.backlog });
    }
    return out;
  }

  /** LIVE sessions here. */
  get liveSessions(): number {
    return this.live.size;
  }

  /**
   * The least time between the starts of one LIVE session's onEvents calls: the LIVE sessions
   * share liveCallsPerS calls a second (0: no limit).
   */
  get liveCallIntervalMs(): number {
    return shareIntervalMs(this.live.size, this.options.liveCallsPerS);
  }

  /**
   * The least time between the starts of one reliable session's onEvents calls for new events
   * that do not fill a batch: the reliable sessions share reliableCallsPerS calls a second (0: no
   * limit). What they read while catching up, and whole batches, go at once.
   */
  get reliableCallIntervalMs(): number {
    return shareIntervalMs(this.reliableActive, this.options.reliableCallsPerS);
  }

  /**
   * Ends the consumer's session here, if any, closing its channel (see ReliableSession.end).
   * With `epoch`, only a session of that owner epoch or an older one: a later one started after
   * whatever called for the end, and goes by it already.
   */
  endSession(ident: string, reason: string, epoch?: string): boolean {
    const slot = this.slots.get(ident);
    const session = slot?.active;
    if (slot && !session && slot.busy) {
      // A session may be starting from what it read before: it reads again (see start).
      const upTo = epoch ?? '';
      slot.endedUpTo = slot.endedUpTo === null ? upTo : widerEnd(slot.endedUpTo, upTo);
    }
    if (!session || !endsSession(session.epoch, epoch)) return false;
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
        this.log.warn('Push: reading new events failed', { err: errorOf(r.reason) });
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
    const reliable = [...this.slots.values()].flatMap((slot) => (slot.active ? [slot.active] : []));
    await Promise.all([...reliable, ...this.live].map((s) => s.drain()));
  }

  /**
   * Ends every session; the consumers' locks are let go cleanly (tracked by the coordinator).
   * When draining, their WebSocket channels (standbys' too) are closed as going away, so that
   * receivers connect again at once, to another node.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.waker.stop();
    for (const done of [...this.pauses]) done();
    this.coordinator.off('control', this.onControl);
    this.coordinator.off('tick', this.retryWaiting);
    this.coordinator.off('up', this.retryWaiting);
    this.coordinator.off('fenced', this.onFenced);
    for (const slot of [...this.slots.values()]) {
      const standbys = slot.waiting.splice(0);
      const session = slot.active;
      if (session) session.close();
      else this.settle(slot);
      if (this.isDraining) {
        session?.target.goingAway?.(SHUTTING_DOWN);
        for (const w of standbys) if (!w.gone) w.target.goingAway?.(SHUTTING_DOWN);
      }
    }
    for (const s of [...this.live]) {
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
