import { EventEmitter } from 'events';
import { cmpIds, NO_EVENT, type EventId } from '../common/ids';
import { defaultLogger, type Logger } from '../common/log';
import { TABLES } from '../common/constants';
import type { ConnectionConfig } from './config';
import { StreamCounters } from './counters';
import { createDialect, type Listener, type NewEvent, type SqlDialect } from './dialects';
import {
  HORIZON_DEFAULTS,
  HorizonTracker,
  SingleWriterHorizon,
  type Horizon,
  type HorizonOptions,
} from './horizon';
import { openClient } from './open';
import { cacheShapes, wholeMs, type ConsumerSql, type EventSql } from './queries';
import { withRetry } from './retry';
import type { SessionAddress, SqlClient, SqlRunner, SqlValue } from './sql';
import {
  DatabaseCoordinator,
  LocalCoordinator,
  sendControl,
  type Coordinator,
} from './coordination/coordinator';
import type { ControlMessage } from './coordination/control';
import {
  coordinationSettings,
  defaultNodeName,
  type CoordinationOptions,
  type CoordinationSettings,
} from './coordination/options';

/** An event as stored: data is its JSON text, ts is YYYY-MM-DDTHH:MM:SSZ. */
export interface StoredEvent {
  id: EventId;
  type: string;
  data: string;
  ts: string;
}

export interface ReadQuery {
  /** Events after this ID ('0' for all). */
  after: EventId;
  /** ...up to and including this ID (the horizon). */
  upTo: EventId;
  limit: number;
  /** Only these types; null for all, [] for none. */
  want: readonly string[] | null;
  table?: string;
}

/** A registered consumer's stored state, as retention sees it. */
export interface ConsumerState {
  ident: string;
  pointer: EventId;
  /** last_time (registration or the last pointer move), YYYY-MM-DDTHH:MM:SSZ. */
  lastTime: string;
  /** Whether last_time is older than the `idleMs` asked for, by the database's clock. */
  idle: boolean;
}

/** An event ID and whether the event is older than the age asked for. */
export interface EventAge {
  id: EventId;
  old: boolean;
}

/** Which events to list (listEvents): every condition given must hold. */
export interface ListQuery {
  /** evt_queue (default) or evt_history, or another event table. */
  table?: string;
  fromId?: EventId;
  toId?: EventId;
  types?: readonly string[];
  /** UTC times as 'YYYY-MM-DD HH:MM:SS', inclusive. */
  since?: string;
  until?: string;
  limit: number;
  /** Newest first instead of oldest first. */
  descending?: boolean;
}

/** An administrator's pointer move or drop, as recorded in evt_consumer_moves. */
export interface MoveRecord {
  ident: string;
  action: 'move' | 'drop';
  from: EventId;
  to?: EventId;
  by: string;
  reason: string;
  at: string;
  applied: boolean;
}

export interface StoreOptions {
  /** Event table (default evt_queue); addXferEvent may name others. */
  eventTable?: string;
  consumerTable?: string;
  log?: Logger;
  horizon?: Partial<HorizonOptions>;
  /** How this node coordinates with others over the database (see coordinator()). */
  coordination?: CoordinationOptions;
  /**
   * Where connections that need a database session of their own go: the coordination
   * connection (its locks) and LISTEN. A direct address or a session pool; default: the
   * store's database. Required when that is a transaction pool (poolMode 'transaction').
   */
  sessionDatabase?: SessionAddress;
}

/** A reliable consumer taken by a node: its epoch, pointer and pending move, and who had it. */
export interface ConsumerClaim {
  epoch: string;
  pointer: EventId;
  move: string | null;
  /** The node named as its owner before (null: nobody, or it let go cleanly). */
  previous: string | null;
}

/** A consumer's owner as the consumer table records it. */
export interface ConsumerOwner {
  ident: string;
  node: string;
  epoch: string;
}

export interface StoreEvents {
  /** After each commit of addEvents(): the table and the highest new ID. */
  committed: [table: string, lastId: EventId];
}

const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function assertIdentifier(name: string): string {
  if (!IDENTIFIER_RE.test(name)) throw new Error(`Invalid table name: ${JSON.stringify(name)}`);
  return name;
}

/** What the store's views on one connection share (see withTables). */
interface Shared {
  horizons: Map<string, Horizon>;
  bus: EventEmitter<StoreEvents>;
  counters: StreamCounters;
  /** Statements per event table and per consumer table, built on first use. */
  eventSql: Map<string, EventSql>;
  consumerSql: Map<string, ConsumerSql>;
  /** The node's coordinator, made on first use (see EventStore.coordinator). */
  coordinator: Coordinator | null;
}

/**
 * The event store: every read and write of events, consumer pointers and their recorded moves,
 * over one SqlClient and its dialect, each with the retry rule of withRetry. The SQL is in
 * queries/, one text per routine and dialect. Services share one store per database.
 */
export class EventStore {
  readonly eventTable: string;
  readonly consumerTable: string;
  readonly log: Logger;
  private readonly horizonOptions: HorizonOptions;
  /** Statements of the default tables. */
  private readonly events: EventSql;
  private readonly consumerSql: ConsumerSql;
  private closed = false;
  private readonly coordinationSettings: CoordinationSettings;
  private readonly sessionDatabase: SessionAddress | undefined;

  constructor(
    readonly db: SqlClient,
    readonly dialect: SqlDialect,
    options: StoreOptions = {},
    private readonly shared: Shared = {
      horizons: new Map(),
      bus: new EventEmitter<StoreEvents>(),
      counters: new StreamCounters(),
      eventSql: new Map(),
      consumerSql: new Map(),
      coordinator: null,
    },
    /** Whether close() closes the connection (false for withTables views). */
    private readonly ownsConnection = true,
  ) {
    this.eventTable = assertIdentifier(options.eventTable ?? TABLES.events);
    this.consumerTable = assertIdentifier(options.consumerTable ?? TABLES.consumers);
    this.log = options.log ?? defaultLogger();
    this.horizonOptions = { ...HORIZON_DEFAULTS, ...options.horizon };
    this.events = this.eventSqlOf(this.eventTable);
    this.consumerSql = this.consumerSqlOf(this.consumerTable);
    this.coordinationSettings = coordinationSettings(options.coordination);
    this.sessionDatabase = options.sessionDatabase;
    if (db.config?.poolMode === 'transaction' && !options.sessionDatabase)
      throw new Error(
        'The database is reached through a transaction pool (pool_mode=transaction): locks and ' +
          'LISTEN need a session of their own; give a direct address or a session pool for them ' +
          '(sessionDatabase, --session-db)',
      );
  }

  /**
   * The same store with other default tables: same connection, horizons and notifications (a
   * service configured with its own `event_table` shares the connection of the others).
   */
  withTables(eventTable: string, consumerTable: string): EventStore {
    if (eventTable === this.eventTable && consumerTable === this.consumerTable) return this;
    return new EventStore(
      this.db,
      this.dialect,
      {
        eventTable,
        consumerTable,
        log: this.log,
        horizon: this.horizonOptions,
        coordination: { ...this.coordinationOptions },
        ...(this.sessionDatabase ? { sessionDatabase: this.sessionDatabase } : {}),
      },
      this.shared,
      false,
    );
  }

  on<K extends keyof StoreEvents>(event: K, listener: (...args: StoreEvents[K]) => void): this {
    this.shared.bus.on(event, listener as never);
    return this;
  }

  off<K extends keyof StoreEvents>(event: K, listener: (...args: StoreEvents[K]) => void): this {
    this.shared.bus.off(event, listener as never);
    return this;
  }

  private get coordinationOptions(): CoordinationOptions {
    const c = this.coordinationSettings;
    return {
      enabled: c.enabled,
      heartbeat_ms: c.heartbeatMs,
      fence_ms: c.fenceMs,
      probe_ms: c.probeMs,
      ...(c.node === undefined ? {} : { node: c.node }),
    };
  }

  /**
   * This node's coordinator (shared by withTables views), started on first use: over the
   * database on PostgreSQL and MySQL (a coordination connection of its own, to the session
   * database), in memory on SQLite or with coordination turned off. `ready()` tells when it
   * first connected.
   */
  coordinator(): Coordinator {
    if (this.closed) throw new Error('The event store is closed');
    let c = this.shared.coordinator;
    if (!c) {
      const settings = {
        ...this.coordinationSettings,
        node: this.coordinationSettings.node ?? defaultNodeName(),
      };
      c =
        settings.enabled && this.dialect.queries.coordination && this.db.openSession
          ? new DatabaseCoordinator({
              db: this.db,
              dialect: this.dialect,
              at: this.sessionDatabase ?? this.db.config ?? {},
              settings,
              log: this.log,
            })
          : new LocalCoordinator(settings);
      this.shared.coordinator = c;
    }
    return c;
  }

  /**
   * Starts the coordinator and waits for its first connection attempt: rejects when the
   * coordination connection cannot work as configured (a transaction pool, a node name in use).
   */
  async startCoordination(): Promise<Coordinator> {
    const c = this.coordinator();
    if (c instanceof DatabaseCoordinator) await c.started;
    return c;
  }

  /**
   * Sends a control message to every node over the database (see ControlMessage), also without
   * a coordinator of its own (a command on the database). A hint: nothing relies on it alone.
   */
  async sendControl(message: ControlMessage): Promise<void> {
    const sql = this.dialect.queries.coordination;
    if (!sql) return;
    await this.retry('sendControl', () => sendControl(this.db, sql, message), false);
  }

  /** What the event path counted on this connection (shared by withTables views). */
  get counters(): StreamCounters {
    return this.shared.counters;
  }

  private get horizons(): Map<string, Horizon> {
    return this.shared.horizons;
  }

  /** Connects (no migrations: see migrate()). */
  static async open(config: ConnectionConfig, options: StoreOptions = {}): Promise<EventStore> {
    const log = options.log ?? defaultLogger();
    const db = await openClient(config, log);
    const dialect = createDialect(db.dialect);
    try {
      if (dialect.init) await dialect.init(db);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new EventStore(db, dialect, { ...options, log });
  }

  /** The statements of an event table (the default one without a name), built once. */
  private eventSqlOf(name?: string): EventSql {
    if (name === undefined) return this.events;
    let sql = this.shared.eventSql.get(name);
    if (!sql) {
      sql = cacheShapes(this.dialect.queries.events(assertIdentifier(name)));
      this.shared.eventSql.set(name, sql);
    }
    return sql;
  }

  /** The statements of a consumer table (the default one without a name), built once. */
  private consumerSqlOf(name?: string): ConsumerSql {
    if (name === undefined) return this.consumerSql;
    let sql = this.shared.consumerSql.get(name);
    if (!sql) {
      sql = this.dialect.queries.consumers(assertIdentifier(name));
      this.shared.consumerSql.set(name, sql);
    }
    return sql;
  }

  /**
   * Runs `work` with retries (see withRetry): reads and other idempotent work also after a lost
   * connection; other writes only after errors that applied nothing (deadlocks and the like).
   */
  private retry<T>(what: string, work: () => Promise<T>, idempotent = true): Promise<T> {
    return withRetry(work, (e) => this.dialect.errorKind(e), this.log, what, idempotent);
  }

  /**
   * Runs `work` in one transaction, again only after errors that applied nothing: for
   * transactions whose second run after an unknown outcome would write twice.
   */
  private writeOnce<T>(what: string, work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.retry(what, () => this.db.transaction(work), false);
  }

  /**
   * Stores events atomically, in one statement (one multi-row INSERT is one transaction by
   * itself: no BEGIN and COMMIT round trips); resolves with their IDs, in order, once committed.
   */
  async addEvents(events: readonly NewEvent[], tableName?: string): Promise<EventId[]> {
    if (events.length === 0) return [];
    const sql = this.eventSqlOf(tableName);
    const ids = await this.retry(
      'addEvents',
      () => this.dialect.insertEvents(this.db, sql, events),
      false,
    );
    const last = ids[ids.length - 1];
    this.counters.eventsAdded += ids.length;
    if (last) this.shared.bus.emit('committed', tableName ?? this.eventTable, last);
    return ids;
  }

  /**
   * Stores events as part of the caller's transaction `tx` (a runner outside a transaction
   * stores them at once); resolves with their IDs, in order. No retry, no notification and no
   * count: the caller owns the transaction and its outcome.
   */
  insertEventsInTx(
    tx: SqlRunner,
    events: readonly NewEvent[],
    tableName?: string,
  ): Promise<EventId[]> {
    if (events.length === 0) return Promise.resolve([]);
    return this.dialect.insertEventsInTx(tx, this.eventSqlOf(tableName), events);
  }

  /** Events after `after`, up to `upTo`, in ID order. */
  async readEvents(q: ReadQuery): Promise<StoredEvent[]> {
    if ((q.want && q.want.length === 0) || cmpIds(q.upTo, q.after) <= 0 || q.limit <= 0) return [];
    const text = this.eventSqlOf(q.table).read(q.want ? q.want.length : 0, Math.floor(q.limit));
    const params: SqlValue[] = q.want ? [q.after, q.upTo, ...q.want] : [q.after, q.upTo];
    return this.retry('readEvents', () =>
      this.db.query<StoredEvent & Record<string, unknown>>(text, params),
    );
  }

  /** Whether commits of other processes can wake this one (see listen). */
  get canListen(): boolean {
    return this.dialect.listen !== undefined;
  }

  /**
   * Calls `onNotify` when another process commits events to an event table, until closed (see
   * SqlDialect.listen: a hint only). Fails where the database has no notifications (canListen).
   */
  listen(tableName: string, onNotify: () => void): Promise<Listener> {
    if (!this.dialect.listen)
      return Promise.reject(new Error(`No notifications on ${this.dialect.name}`));
    return this.dialect.listen(
      this.db,
      assertIdentifier(tableName),
      onNotify,
      this.sessionDatabase,
    );
  }

  /** The gap-safe horizon of an event table: see HorizonTracker. */
  horizon(tableName?: string): Promise<EventId> {
    return this.horizonOf(tableName ?? this.eventTable).current();
  }

  /**
   * A horizon for a reader at `after`. A reader far behind the horizon already known (more
   * than `slack` IDs) uses it without a new probe: it has a full read of work below it, and
   * probing once per read would cost a catch-up as much as its reads. Nearer the head, it gets
   * a fresh one, so a reader sees what was committed before it asked. Both are safe.
   */
  horizonAbove(after: EventId, slack = 1000, tableName?: string): Promise<EventId> {
    const h = this.horizonOf(tableName ?? this.eventTable);
    return BigInt(h.known) - BigInt(after) > BigInt(slack) ? Promise.resolve(h.known) : h.current();
  }

  /** The horizon object of a table (for its stall figures). */
  horizonOf(tableName: string): Horizon {
    let h = this.horizons.get(tableName);
    if (!h) {
      const sql = this.eventSqlOf(tableName);
      const probe = (since: EventId) =>
        this.retry('probe', () => this.dialect.probeWriters(this.db, sql, since));
      h = this.dialect.singleWriter
        ? new SingleWriterHorizon(probe)
        : new HorizonTracker(probe, this.horizonOptions, this.log, `horizon of ${tableName}`);
      this.horizons.set(tableName, h);
    }
    return h;
  }

  /** Registers a consumer if it is new; true if it was created now. */
  async registerConsumer(ident: string): Promise<boolean> {
    // Look first: INSERT ... ON CONFLICT / ON DUPLICATE KEY would burn a value of the small
    // consumer ID sequence on every repeated registration, and consumers register at each start.
    if ((await this.consumerPointer(ident)) !== null) return false;
    try {
      await this.retry('registerConsumer', () =>
        this.db.execute(this.consumerSql.register, [ident]),
      );
      return true;
    } catch (err) {
      if (this.dialect.errorKind(err) === 'duplicate') return false;
      throw err;
    }
  }

  /** The consumer's stored pointer, or null when it is not registered. */
  async consumerPointer(ident: string): Promise<EventId | null> {
    const rows = await this.retry('consumerPointer', () =>
      this.db.query<{ p: string }>(this.consumerSql.pointer, [ident]),
    );
    return rows[0]?.p ?? null;
  }

  /**
   * Where a reliable consumer reads from now: its stored pointer, and the newest move an
   * administrator made since it last read (`move`, null if none: then it reads from the pointer
   * once, whatever last_id it sends). Null when the consumer is not registered.
   */
  async consumerPosition(ident: string): Promise<{ pointer: EventId; move: string | null } | null> {
    const rows = await this.retry('consumerPosition', () =>
      this.db.query<{ p: string; move: string | null }>(this.consumerSql.position, [ident]),
    );
    const row = rows[0];
    return row ? { pointer: row.p, move: row.move } : null;
  }

  /**
   * The consumer has read from its moved pointer: the moves up to `move` (as consumerPosition
   * gave it) are applied; one made since stays pending for its next read.
   */
  async consumerMovesApplied(ident: string, move: string): Promise<void> {
    await this.retry('consumerMovesApplied', () =>
      this.db.execute(this.consumerSql.movesApplied, [ident, move]),
    );
  }

  /**
   * Moves a consumer's pointer forward to `to` (never back); true if it moved. With `from`, only
   * if the pointer is still `from`: a writer that knows what it stored last (a push session, a
   * poll) must not undo a move an administrator made in between. With `epoch` too, only while
   * the consumer's owner_epoch is still that one: a push session of a node that lost the
   * consumer to another (see claimConsumer) never moves its pointer.
   */
  async advanceConsumer(
    ident: string,
    to: EventId,
    from?: EventId,
    epoch?: string,
  ): Promise<boolean> {
    if (to === NO_EVENT) return false;
    const sql = this.consumerSql;
    const res = await this.retry('advanceConsumer', () =>
      from === undefined
        ? this.db.execute(sql.advance, [to, ident, to])
        : epoch === undefined
          ? this.db.execute(sql.advanceFrom, [to, ident, to, from])
          : this.db.execute(sql.advanceOwned, [to, ident, to, from, epoch]),
    );
    if (res.affected > 0 || from === undefined) return res.affected > 0;
    // Nothing changed: moved by someone else (or taken over), or already `to` (a retry after a
    // lost answer to the UPDATE that did apply).
    if (epoch === undefined) return (await this.consumerPointer(ident)) === to;
    const rows = await this.retry('advanceConsumer', () =>
      this.db.query<{ p: string; epoch: string }>(sql.owned, [ident]),
    );
    return rows[0]?.p === to && rows[0].epoch === epoch;
  }

  /**
   * Takes a registered consumer for a push session of `node`, which holds its lock: bumps its
   * owner_epoch, names `node` its owner, and reads where it stands, in one transaction (the
   * row locked meanwhile). Null when it is not registered. Run again after an unknown outcome,
   * it bumps the epoch once more, which costs nothing: the session goes by the epoch read here.
   */
  claimConsumer(ident: string, node: string): Promise<ConsumerClaim | null> {
    const sql = this.consumerSql;
    return this.retry('claimConsumer', () =>
      this.db.transaction(async (tx) => {
        const [row] = await tx.query<{ prev: string | null }>(sql.ownerForUpdate, [ident]);
        if (!row) return null;
        await tx.execute(sql.claim, [node, ident]);
        const [now] = await tx.query<{ p: string; epoch: string; move: string | null }>(sql.owned, [
          ident,
        ]);
        if (!now) return null;
        return { epoch: now.epoch, pointer: now.p, move: now.move, previous: row.prev };
      }),
    );
  }

  /** The consumer's pointer, owner_epoch and pending move now; null when not registered. */
  async consumerOwned(
    ident: string,
  ): Promise<{ pointer: EventId; epoch: string; move: string | null } | null> {
    const rows = await this.retry('consumerOwned', () =>
      this.db.query<{ p: string; epoch: string; move: string | null }>(this.consumerSql.owned, [
        ident,
      ]),
    );
    const row = rows[0];
    return row ? { pointer: row.p, epoch: row.epoch, move: row.move } : null;
  }

  /**
   * The push session of `epoch` has ended and sends nothing more: the consumer has no owner
   * now, so the next node to take it need not wait for this one to stop. No-op when another
   * acquisition came since.
   */
  async releaseConsumer(ident: string, epoch: string): Promise<void> {
    await this.retry('releaseConsumer', () =>
      this.db.execute(this.consumerSql.release, [ident, epoch]),
    );
  }

  /** Every consumer that has an owner: which node pushes it, since which acquisition. */
  async consumerOwners(): Promise<ConsumerOwner[]> {
    return this.retry('consumerOwners', () =>
      this.db.query<{ ident: string; node: string; epoch: string } & Record<string, unknown>>(
        this.consumerSql.owners,
      ),
    );
  }

  /**
   * Sets a registered consumer's pointer to `to` (back or forward) and records the move, in one
   * transaction; resolves with the pointer it had, null when it is not registered. Only the
   * pointer and last_time change: readers learn of the move from the pending record (see
   * consumerPosition). A discarder's DELETE reads the pointers with a locking read, so it either
   * sees the move or the move waits for it to end.
   *
   * Not idempotent (run again after an unknown outcome, it would record a second move from the
   * new pointer): retried only after errors that applied nothing, never after a lost connection.
   */
  moveConsumer(ident: string, to: EventId, by: string, reason: string): Promise<EventId | null> {
    const sql = this.consumerSql;
    return this.writeOnce('moveConsumer', async (tx) => {
      const [row] = await tx.query<{ p: string }>(sql.pointer, [ident]);
      if (!row) return null;
      await tx.execute(sql.setPointer, [to, ident]);
      await tx.execute(sql.recordMove, [ident, 'move', row.p, to, by, reason, 0]);
      return row.p;
    });
  }

  /**
   * Unregisters a consumer and records the drop (its pending moves no longer mean anything), in
   * one transaction; false if it was not registered. Not idempotent either (run again after an
   * unknown outcome, it would answer false): retried like moveConsumer.
   */
  dropConsumer(ident: string, by: string, reason: string): Promise<boolean> {
    const sql = this.consumerSql;
    return this.writeOnce('dropConsumer', async (tx) => {
      const [row] = await tx.query<{ p: string }>(sql.pointer, [ident]);
      if (!row) return false;
      await tx.execute(sql.remove, [ident]);
      await tx.execute(sql.allMovesApplied, [ident]);
      await tx.execute(sql.recordMove, [ident, 'drop', row.p, null, by, reason, 1]);
      return true;
    });
  }

  /** Recorded moves and drops (of one consumer, or of all with null), newest first. */
  async listMoves(ident: string | null, limit: number): Promise<MoveRecord[]> {
    const text = this.consumerSql.listMoves(ident !== null, Math.max(1, Math.floor(limit)));
    const rows = await this.retry('listMoves', () =>
      this.db.query<{
        ident: string;
        action: string;
        from_id: string;
        to_id: string | null;
        by_user: string;
        reason: string;
        at: string;
        applied: unknown;
      }>(text, ident === null ? [] : [ident]),
    );
    return rows.map((r) => ({
      ident: r.ident,
      action: r.action === 'drop' ? 'drop' : 'move',
      from: r.from_id,
      ...(r.to_id === null ? {} : { to: r.to_id }),
      by: r.by_user,
      reason: r.reason,
      at: r.at,
      applied: Number(r.applied) === 1,
    }));
  }

  /** Every registered consumer; `idleMs` flags those whose last_time is older than that. */
  async consumers(idleMs?: number, consumerTable?: string): Promise<ConsumerState[]> {
    const sql = this.consumerSqlOf(consumerTable);
    const rows = await this.retry('consumers', () =>
      this.db.query<{ ident: string; pointer: string; last_time: string; idle: number | string }>(
        idleMs === undefined ? sql.all : sql.allIdle,
        idleMs === undefined ? [] : [wholeMs(idleMs)],
      ),
    );
    return rows.map((r) => ({
      ident: r.ident,
      pointer: r.pointer,
      lastTime: r.last_time,
      idle: Number(r.idle) === 1,
    }));
  }

  /** The highest ID in an event table, '0' when it is empty. */
  async newestEventId(tableName?: string): Promise<EventId> {
    const text = this.eventSqlOf(tableName).newest;
    const [row] = await this.retry('newestEventId', () =>
      this.db.query<{ newest: string | null }>(text),
    );
    return row?.newest ?? NO_EVENT;
  }

  /** The newest and oldest event IDs of an event table ('0' when empty) and how many it holds. */
  async tableRange(
    tableName?: string,
  ): Promise<{ newest: EventId; oldest: EventId; count: number }> {
    const text = this.eventSqlOf(tableName).range;
    const [row] = await this.retry('tableRange', () =>
      this.db.query<{ newest: string | null; oldest: string | null; n: unknown }>(text),
    );
    return {
      newest: row?.newest ?? NO_EVENT,
      oldest: row?.oldest ?? NO_EVENT,
      count: Number(row?.n ?? 0),
    };
  }

  /** How many events an event table holds. */
  async countEvents(tableName?: string): Promise<number> {
    const text = this.eventSqlOf(tableName).count;
    const [row] = await this.retry('countEvents', () => this.db.query<{ n: unknown }>(text));
    return Number(row?.n ?? 0);
  }

  /** How many events after `after` are at most `withinMs` old (by the database's clock). */
  async countRecentEvents(after: EventId, withinMs: number, tableName?: string): Promise<number> {
    const text = this.eventSqlOf(tableName).countRecent;
    const params = [after, wholeMs(withinMs)];
    const [row] = await this.retry('countRecentEvents', () =>
      this.db.query<{ n: unknown }>(text, params),
    );
    return Number(row?.n ?? 0);
  }

  /**
   * The events after `after` up to `upTo`, counted up to `limit` (`capped` when there are more),
   * and the time of the oldest of them (null when none): how far a consumer lags, in one query.
   */
  async eventsBehind(
    after: EventId,
    upTo: EventId,
    limit: number,
    tableName?: string,
  ): Promise<{ events: number; capped: boolean; oldestTs: string | null }> {
    if (cmpIds(upTo, after) <= 0) return { events: 0, capped: false, oldestTs: null };
    const n = Math.max(1, Math.floor(limit));
    const text = this.eventSqlOf(tableName).behind(n + 1);
    const [row] = await this.retry('eventsBehind', () =>
      this.db.query<{ n: unknown; ts: string | null }>(text, [after, upTo]),
    );
    const events = Number(row?.n ?? 0);
    return { events: Math.min(events, n), capped: events > n, oldestTs: row?.ts ?? null };
  }

  /**
   * The highest ID up to `upTo` of an event older than `time` (UTC 'YYYY-MM-DD HH:MM:SS'), '0'
   * when there is none.
   */
  async newestBefore(time: string, upTo: EventId, tableName?: string): Promise<EventId> {
    const text = this.eventSqlOf(tableName).newestBefore;
    const [row] = await this.retry('newestBefore', () =>
      this.db.query<{ id: string | null }>(text, [time, upTo]),
    );
    return row?.id ?? NO_EVENT;
  }

  /**
   * Events of an event table (the active queue or the warehouse history) by ID range, types and
   * time range, for people to look at: unlike readEvents, not bounded by the horizon.
   */
  async listEvents(q: ListQuery): Promise<StoredEvent[]> {
    const types = q.types && q.types.length > 0 ? q.types : [];
    const text = this.eventSqlOf(q.table ?? TABLES.events).list({
      fromId: Boolean(q.fromId),
      toId: Boolean(q.toId),
      types: types.length,
      since: Boolean(q.since),
      until: Boolean(q.until),
      descending: q.descending ?? false,
      limit: Math.max(0, Math.floor(q.limit)),
    });
    const params: SqlValue[] = [];
    if (q.fromId) params.push(q.fromId);
    if (q.toId) params.push(q.toId);
    params.push(...types);
    if (q.since) params.push(q.since);
    if (q.until) params.push(q.until);
    return this.retry('listEvents', () =>
      this.db.query<StoredEvent & Record<string, unknown>>(text, params),
    );
  }

  /**
   * IDs of the first `limit` events after `after` up to `upTo`, in ID order, each flagged whether
   * its ts is older than `olderThanMs` (database clock; every one is old without it).
   */
  async eventAges(q: {
    after: EventId;
    upTo: EventId;
    limit: number;
    olderThanMs?: number;
    table?: string;
  }): Promise<EventAge[]> {
    if (cmpIds(q.upTo, q.after) <= 0 || q.limit <= 0) return [];
    const sql = this.eventSqlOf(q.table);
    const limit = Math.floor(q.limit);
    const [text, params] =
      q.olderThanMs === undefined
        ? [sql.ages(limit), [q.after, q.upTo]]
        : [sql.agesOlderThan(limit), [wholeMs(q.olderThanMs), q.after, q.upTo]];
    const rows = await this.retry('eventAges', () =>
      this.db.query<{ id: string; old: number | string }>(text, params),
    );
    return rows.map((r) => ({ id: r.id, old: Number(r.old) === 1 }));
  }

  /**
   * Deletes at most `limit` events with IDs up to `upTo`, lowest first, in one statement (its
   * own transaction); resolves with the number deleted. Never past what every counted consumer
   * has acknowledged, as the statement itself reads the pointers (a locking read, see
   * EventSql.deleteUpTo): nothing above the lowest `last_evt_id` in the consumer table, and
   * nothing at all when no consumer counts. So a pointer moved back, or a consumer registered,
   * after the caller read the pointers still holds its events. Consumers in `ignoring` (the
   * discarder's stale ones) do not count, but each only while its row is as it was: still at
   * `pointer` and last_time still older than `idleMs` (a move resets last_time). Retried after a
   * lost connection: it deletes nothing above `upTo` whichever way the first attempt ended.
   */
  async deleteEventsUpTo(
    upTo: EventId,
    limit: number,
    options: {
      table?: string;
      consumerTable?: string;
      ignoring?: { consumers: readonly { ident: string; pointer: EventId }[]; idleMs: number };
    } = {},
  ): Promise<number> {
    if (cmpIds(upTo, NO_EVENT) <= 0 || limit <= 0) return 0;
    const params: SqlValue[] = [upTo];
    const ignored = options.ignoring?.consumers ?? [];
    if (options.ignoring && ignored.length > 0) {
      params.push(wholeMs(options.ignoring.idleMs));
      for (const c of ignored) params.push(c.ident, c.pointer);
    }
    const text = this.eventSqlOf(options.table).deleteUpTo(
      assertIdentifier(options.consumerTable ?? this.consumerTable),
      options.ignoring ? ignored.length : 0,
      Math.floor(limit),
    );
    const res = await this.retry('deleteEventsUpTo', () => this.db.execute(text, params));
    return res.affected;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsConnection) return;
    this.shared.bus.removeAllListeners();
    // Clean releases first (tracked by the coordinator), then the session and its locks.
    await this.shared.coordinator
      ?.close()
      .catch((err: unknown) => this.log.warn(`closing coordination: ${String(err)}`));
    await this.db.close();
  }
}
