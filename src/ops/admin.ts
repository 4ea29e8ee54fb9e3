import type { MoveTarget } from '../common/faces/AdminFace';
import { ErrorCode, EvtError } from '../common/errors';
import { minId, NO_EVENT, type EventId } from '../common/ids';
import { sqlTime } from '../common/time';
import type { Event } from '../common/event';
import { toEvents } from '../delivery/reader';
import type { PushHub } from '../delivery/push/hub';
import { HISTORY_TABLE } from '../storage/list';
import { PUSH_DEFAULTS } from '../delivery/push/options';
import type { EventStore, MoveRecord, ParkedEvent, ParkState } from '../storage/store';

/** How the consumer reads now (as seen by this process). */
export type DeliveryMode = 'push' | 'poll' | 'idle';

export interface ConsumerInfo {
  ident: string;
  user: string;
  component: string;
  pointer: EventId;
  /** Committed events after the pointer, counted up to the limit asked for. */
  lag_events: number;
  lag_capped: boolean;
  /** Age of the oldest event not acknowledged yet, 0 when none. */
  lag_ms: number;
  last_time: string;
  connected: boolean;
  mode: DeliveryMode;
  /** Parked events not resolved yet. */
  parked: number;
  /** Failed push calls after which an event is parked; 0: never. */
  max_attempts: number;
  /** Parking stopped at the bound of parks in a row (see the push option park_max_streak). */
  parking_suspended: boolean;
}

export type { MoveRecord } from '../storage/store';

/** A parked event as ftn18es.admin gives it (ParkedInfo). */
export interface ParkedInfo {
  ident: string;
  event: Event;
  state: ParkState;
  attempts: number;
  first_failure: string;
  last_failure: string;
  error_code: string;
  error_info: string;
  parked_at: string;
  acted_by?: string;
  acted_reason?: string;
  acted_at?: string;
  resolved_at?: string;
}

/** Where a move puts (or, in a dry run, would put) a pointer, and the lag from there. */
export interface MoveResult {
  from: EventId;
  pointer: EventId;
  lag_events: number;
  lag_capped: boolean;
}

/** Milliseconds as seconds to a tenth. */
const tenthsOfSeconds = (ms: number): number => Math.round(ms / 100) / 10;

/** Lag counted after a move, at most. */
const MOVE_LAG_LIMIT = 100_000;

export interface StreamStats {
  newest_id: EventId;
  oldest_id: EventId;
  horizon: EventId;
  active_events: number;
  /** How old active_events is, seconds: 0 when counted for this call (see TableCounts). */
  active_events_age_s: number;
  warehouse_events?: number;
  /** How old warehouse_events is, seconds (as active_events_age_s). */
  warehouse_events_age_s?: number;
  events_per_sec: number;
  rate_window_s: number;
  consumers: number;
  push_sessions: number;
  server_time: string;
}

export interface ReadQuery {
  source: 'active' | 'warehouse';
  fromId?: EventId | null;
  toId?: EventId | null;
  types?: readonly string[] | null;
  /** Times (common/time: ISO 8601, or an age such as '2h'). */
  since?: string | null;
  until?: string | null;
  limit: number;
  last?: boolean;
}

export interface AdminCoreOptions {
  /** The push engine of this process: sessions, and ending one when a consumer moves. */
  hub?: () => Promise<PushHub | null>;
  /** A store on the warehouse, for its size and its events (null: no warehouse). */
  warehouse?: () => Promise<EventStore | null>;
}

/** The largest max_attempts (as ftn18es.admin's MaxAttempts). */
export const MAX_ATTEMPTS_LIMIT = 1000;

/** A parked event for the wire: the event parsed, absent fields left out. */
function parkedInfo(p: ParkedEvent): ParkedInfo {
  return {
    ident: p.ident,
    event: toEvents([p.event])[0]!,
    state: p.state,
    attempts: p.attempts,
    first_failure: p.firstFailure,
    last_failure: p.lastFailure,
    error_code: p.errorCode,
    error_info: p.errorInfo,
    parked_at: p.parkedAt,
    ...(p.actedBy === null ? {} : { acted_by: p.actedBy }),
    ...(p.actedReason === null ? {} : { acted_reason: p.actedReason }),
    ...(p.actedAt === null ? {} : { acted_at: p.actedAt }),
    ...(p.resolvedAt === null ? {} : { resolved_at: p.resolvedAt }),
  };
}

/** A consumer polling within this long counts as connected (mode 'poll'). */
export const POLL_ACTIVE_MS = 60_000;
/** The rate of new events is measured over about this long. */
const RATE_WINDOW_MS = 60_000;
/** Without earlier samples, the rate is counted among at most this many newest events. */
const RATE_SCAN_EVENTS = 1_000_000n;

/** A time asked for (see common/time) as the SQL parameter form; InvalidRequest if it is none. */
function requestedTime(text: string): string {
  const sql = sqlTime(text);
  if (sql === null) throw new EvtError(ErrorCode.InvalidRequest, `Invalid time: ${text}`);
  return sql;
}

const splitIdent = (ident: string): { user: string; component: string } => {
  const at = ident.lastIndexOf(':');
  return { user: ident.slice(0, at), component: ident.slice(at + 1) };
};

/**
 * What the admin interface does, on the active store (and the warehouse): consumers with their
 * lag, pointer moves and drops (recorded in evt_consumer_moves), parked events (replay, skip,
 * max_attempts; recorded the same way), statistics, event reads. Used by the ftn18es.admin
 * service, by the CLI directly on a database, and by /metrics.
 */
export class AdminCore {
  /** (time, newest ID) seen by stats(), for the rate of new events. */
  private samples: { ms: number; newest: bigint }[] = [];

  constructor(
    readonly store: EventStore,
    private readonly options: AdminCoreOptions = {},
  ) {}

  private async hub(): Promise<PushHub | null> {
    return (await this.options.hub?.()) ?? null;
  }

  async listConsumers(lagLimit = 100_000): Promise<ConsumerInfo[]> {
    const store = this.store;
    const [consumers, horizon, hub, rules, parked] = await Promise.all([
      store.consumers(),
      store.horizon(),
      this.hub(),
      store.parkingRules(),
      store.parkedCounts(),
    ]);
    const maxStreak = hub?.parkMaxStreak ?? PUSH_DEFAULTS.park_max_streak;
    const pushing = new Set((hub?.reliableSessions() ?? []).map((s) => s.consumer));
    const counters = store.counters;
    const now = Date.now();
    const out: ConsumerInfo[] = [];
    for (const c of consumers.sort((a, b) => a.ident.localeCompare(b.ident))) {
      const lag = await store.eventsBehind(c.pointer, horizon, lagLimit);
      const lastPoll = counters.consumers.get(c.ident)?.lastPollMs ?? 0;
      const rule = rules.get(c.ident);
      const mode: DeliveryMode = pushing.has(c.ident)
        ? 'push'
        : now - lastPoll < POLL_ACTIVE_MS
          ? 'poll'
          : 'idle';
      out.push({
        ident: c.ident,
        ...splitIdent(c.ident),
        pointer: c.pointer,
        lag_events: lag.events,
        lag_capped: lag.capped,
        lag_ms: lag.oldestTs === null ? 0 : Math.max(0, now - Date.parse(lag.oldestTs)),
        last_time: c.lastTime,
        connected: mode !== 'idle',
        mode,
        parked: parked.get(c.ident) ?? 0,
        max_attempts: rule?.maxAttempts ?? 0,
        parking_suspended: rule?.maxAttempts != null && rule.streak >= maxStreak,
      });
    }
    return out;
  }

  /**
   * Moves a registered consumer's pointer and records the move. Its next poll reads from there
   * (whatever last_id it sends), and its push session here, if any, ends so that the receiver
   * starts a new one from there. The pointer never goes past the horizon.
   *
   * A move back past what the discarder deleted replays those events from the warehouse when
   * the services have one (they read them from there first, see Backlog); without one, the
   * consumer goes on at the oldest event still held, and the services log and count the jump.
   * A move to a `time` looks among the events still held, then in the warehouse (with none
   * older, it moves to the start). From the commit on, the
   * discarder deletes none after the new pointer (while the consumer counts, see its
   * stale_consumer_ms): each of its DELETEs reads the pointers itself, with a locking read, so
   * it either sees the move or the move waits for it to end. `from` and
   * `pointer` are the stored pointer before and after, nothing more: they do not tell whether
   * events after `pointer` were already gone (stats() gives the oldest event still held).
   */
  async moveConsumer(
    ident: string,
    to: MoveTarget,
    by: string,
    options: {
      id?: EventId | null;
      time?: string | null;
      reason?: string;
      /** Only say where it would go; nothing changes. */
      dryRun?: boolean;
    } = {},
  ): Promise<MoveResult> {
    const store = this.store;
    const horizon = await store.horizon();
    let pointer: EventId;
    switch (to) {
      case 'start':
        pointer = NO_EVENT;
        break;
      case 'newest':
        pointer = horizon;
        break;
      case 'id':
        if (!options.id) throw new EvtError(ErrorCode.InvalidRequest, 'to "id" needs an id');
        pointer = minId(options.id, horizon);
        break;
      case 'time': {
        if (!options.time) throw new EvtError(ErrorCode.InvalidRequest, 'to "time" needs a time');
        const time = requestedTime(options.time);
        pointer = await store.newestBefore(time, horizon);
        // None that old left in the active table: the warehouse knows the deleted ones.
        const warehouse = pointer === NO_EVENT ? await this.options.warehouse?.() : null;
        if (warehouse) pointer = await warehouse.newestBefore(time, horizon, HISTORY_TABLE);
        break;
      }
      default:
        throw new EvtError(ErrorCode.InvalidRequest, `Unknown move target: ${String(to)}`);
    }
    const from = options.dryRun
      ? await store.consumerPointer(ident)
      : await store.moveConsumer(ident, pointer, by, options.reason ?? '');
    if (from === null) throw new EvtError(ErrorCode.NotRegistered, `No consumer ${ident}`);
    if (!options.dryRun) await this.endSessions(ident, 'its pointer was moved by an administrator');
    const lag = await store.eventsBehind(pointer, horizon, MOVE_LAG_LIMIT);
    return { from, pointer, lag_events: lag.events, lag_capped: lag.capped };
  }

  /**
   * Sets after how many failed push calls a consumer's failing event is parked (null or 0:
   * never), recorded, and starts parking again where it stopped at the bound of parks in a row.
   * Its push session here applies it at once; elsewhere, at its next failed call.
   */
  async setMaxAttempts(
    ident: string,
    maxAttempts: number | null,
    by: string,
    reason = '',
  ): Promise<{ max_attempts: number }> {
    const max = maxAttempts === null || maxAttempts === 0 ? null : maxAttempts;
    if (max !== null && (!Number.isInteger(max) || max < 1 || max > MAX_ATTEMPTS_LIMIT))
      throw new EvtError(
        ErrorCode.InvalidRequest,
        `max_attempts must be 0 to ${MAX_ATTEMPTS_LIMIT}`,
      );
    const pointer = await this.store.setMaxAttempts(ident, max, by, reason);
    if (pointer === null) throw new EvtError(ErrorCode.NotRegistered, `No consumer ${ident}`);
    (await this.hub())?.refreshParking(ident);
    return { max_attempts: max ?? 0 };
  }

  /** Parked events (of one consumer, or of all with null), unresolved only unless `all`. */
  async listParked(
    ident: string | null,
    options: { all?: boolean; limit?: number } = {},
  ): Promise<ParkedInfo[]> {
    const rows = await this.store.listParked({
      ident,
      unresolvedOnly: !options.all,
      limit: options.limit ?? 100,
    });
    return rows.map(parkedInfo);
  }

  /**
   * Has a consumer's parked event (all of them, with `eventId` null) delivered again at its next
   * push session, in ID order and marked replayed, recorded; its push session here ends so that
   * the next one starts with them. Resolves with how many were marked.
   */
  async replayParked(
    ident: string,
    eventId: EventId | null,
    by: string,
    reason = '',
  ): Promise<{ count: number }> {
    const ids = await this.store.replayParked(ident, eventId, by, reason);
    const count = this.acted(ident, eventId, ids, 'replay');
    if (count > 0) await this.endSessions(ident, 'parked events are to be replayed');
    return { count };
  }

  /** Resolves a consumer's parked event (all of them, with null) without delivery, recorded. */
  async skipParked(
    ident: string,
    eventId: EventId | null,
    by: string,
    reason = '',
  ): Promise<{ count: number }> {
    const ids = await this.store.skipParked(ident, eventId, by, reason);
    return { count: this.acted(ident, eventId, ids, 'skip') };
  }

  /** How many events an action applied to; throws for an unknown consumer or event. */
  private acted(
    ident: string,
    eventId: EventId | null,
    ids: EventId[] | null,
    action: 'replay' | 'skip',
  ): number {
    if (ids === null) throw new EvtError(ErrorCode.NotRegistered, `No consumer ${ident}`);
    if (eventId !== null && ids.length === 0)
      throw new EvtError(
        ErrorCode.InvalidRequest,
        `${ident} has no parked event ${eventId} to ${action}` +
          (action === 'replay'
            ? ' (not parked, or already to be replayed or resolved)'
            : ' (not parked, or already resolved)'),
      );
    return ids.length;
  }

  /**
   * Ends the consumer's push session, here and on every other node over the database (a control
   * message, a hint: after a move, a node that misses it notices at its next pointer write,
   * which fails). Only sessions of the owner epoch read just after the action or an older one: a
   * later one read the consumer as the action left it, and a control message may arrive long
   * after it started (MySQL reads them at heartbeats); one starting when it arrives reads the
   * consumer again (PushHub.start). `anyEpoch` for a consumer that is gone.
   */
  private async endSessions(ident: string, reason: string, anyEpoch = false): Promise<void> {
    // Unreadable now: end whichever session pushes it, as a late message would at worst.
    const owned = anyEpoch ? null : await this.store.consumerOwned(ident).catch(() => null);
    const epoch = owned?.epoch ?? '';
    (await this.hub())?.endSession(ident, reason, epoch);
    await this.store
      .sendControl({
        kind: 'end',
        scope: this.store.consumerTable,
        subject: ident,
        from: '',
        info: reason,
        epoch,
      })
      .catch(() => undefined);
  }

  /**
   * Unregisters a consumer (recorded): it no longer holds events back from the discarder. Its
   * push session here, if any, ends. False if it was not registered.
   */
  async dropConsumer(ident: string, by: string, reason = ''): Promise<boolean> {
    const dropped = await this.store.dropConsumer(ident, by, reason);
    if (dropped) await this.endSessions(ident, 'it was dropped by an administrator', true);
    return dropped;
  }

  /** Recorded moves and drops, newest first. */
  async listMoves(ident: string | null, limit = 100): Promise<MoveRecord[]> {
    return this.store.listMoves(ident, limit);
  }

  /** The newest and oldest event IDs of the active table and how many it holds (see EventStore.tableRange). */
  tableRange(): Promise<{ newest: EventId; oldest: EventId; count: number; countAgeMs: number }> {
    return this.store.tableRange();
  }

  async stats(): Promise<StreamStats> {
    const store = this.store;
    const [range, horizon, consumers, hub, warehouse] = await Promise.all([
      this.tableRange(),
      store.horizon(),
      store.consumers(),
      this.hub(),
      this.options.warehouse?.() ?? Promise.resolve(null),
    ]);
    const newest = range.newest;
    const history = warehouse ? await warehouse.tableRange(HISTORY_TABLE) : undefined;
    const rate = await this.rate(BigInt(newest));
    return {
      newest_id: newest,
      oldest_id: range.oldest,
      horizon,
      active_events: range.count,
      active_events_age_s: tenthsOfSeconds(range.countAgeMs),
      ...(history === undefined
        ? {}
        : {
            warehouse_events: history.count,
            warehouse_events_age_s: tenthsOfSeconds(history.countAgeMs),
          }),
      events_per_sec: rate.perSec,
      rate_window_s: rate.windowS,
      consumers: consumers.length,
      push_sessions: hub?.sessions ?? 0,
      server_time: new Date().toISOString(),
    };
  }

  /**
   * New event IDs per second: from the samples of earlier stats() calls when one is old enough
   * (free), else by counting the recent events among the newest ones.
   */
  private async rate(newest: bigint): Promise<{ perSec: number; windowS: number }> {
    const now = Date.now();
    this.samples = this.samples.filter((s) => now - s.ms <= RATE_WINDOW_MS * 5);
    const base = this.samples.find((s) => now - s.ms <= RATE_WINDOW_MS * 1.5);
    this.samples.push({ ms: now, newest });
    if (base && now - base.ms >= 1000) {
      const windowS = (now - base.ms) / 1000;
      const perSec = Number(newest > base.newest ? newest - base.newest : 0n) / windowS;
      return { perSec: Math.round(perSec * 100) / 100, windowS: Math.round(windowS * 10) / 10 };
    }
    const floor = newest > RATE_SCAN_EVENTS ? newest - RATE_SCAN_EVENTS : 0n;
    const recent = await this.store.countRecentEvents(floor.toString(), RATE_WINDOW_MS);
    const perSec = recent / (RATE_WINDOW_MS / 1000);
    return { perSec: Math.round(perSec * 100) / 100, windowS: RATE_WINDOW_MS / 1000 };
  }

  /** Events of the active store or the warehouse, oldest first (newest first with `last`). */
  async readEvents(q: ReadQuery): Promise<Event[]> {
    let store: EventStore = this.store;
    let table = this.store.eventTable;
    if (q.source === 'warehouse') {
      const warehouse = await this.options.warehouse?.();
      if (!warehouse) throw new EvtError(ErrorCode.InvalidRequest, 'This service has no warehouse');
      store = warehouse;
      table = HISTORY_TABLE;
    }
    const rows = await store.listEvents({
      table,
      limit: q.limit,
      descending: q.last ?? false,
      ...(q.fromId ? { fromId: q.fromId } : {}),
      ...(q.toId ? { toId: q.toId } : {}),
      ...(q.types ? { types: q.types } : {}),
      ...(q.since ? { since: requestedTime(q.since) } : {}),
      ...(q.until ? { until: requestedTime(q.until) } : {}),
    });
    return toEvents(rows);
  }
}
