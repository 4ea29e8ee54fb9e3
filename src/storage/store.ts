import { randomBytes } from 'crypto';
import { EventEmitter } from 'events';
import { cmpIds, NO_EVENT, type EventId } from '../common/ids';
import { defaultLogger, type Logger } from '../common/log';
import { TABLES } from '../common/constants';
import type { ConnectionConfig } from './config';
import { StreamCounters } from './counters';
import {
  advanceHeld,
  createDialect,
  type Listener,
  type NewEvent,
  type PointerAdvance,
  type PointerCondition,
  type SqlDialect,
} from './dialects';
import {
  HORIZON_DEFAULTS,
  HorizonTracker,
  SingleWriterHorizon,
  type Horizon,
  type HorizonOptions,
} from './horizon';
import { TableCounts } from './counts';
import { openClient } from './open';
import { sqlTimestamp, sqlUtc } from '../common/time';
import { PointerGroupCommit } from './pointer-commit';
import { cacheShapes, wholeMs, type ConsumerSql, type EventSql, type ParkingSql } from './queries';
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

/**
 * An administrator's action on a consumer, as recorded in evt_consumer_moves: a pointer move, a
 * drop, a replay or skip of a parked event, a new max_attempts ('limit').
 */
export interface MoveRecord {
  ident: string;
  action: MoveAction;
  /** The pointer before (for every action, the pointer it had then). */
  from: EventId;
  /** A move's new pointer. */
  to?: EventId;
  by: string;
  reason: string;
  at: string;
  applied: boolean;
  /** The parked event of a replay or skip. */
  event_id?: EventId;
  /** A limit's new max_attempts, 0 for none. */
  max_attempts?: number;
}

export type MoveAction = 'move' | 'drop' | 'replay' | 'skip' | 'limit';
const MOVE_ACTIONS: ReadonlySet<string> = new Set(['move', 'drop', 'replay', 'skip', 'limit']);

/** A push consumer's parking rule: park after max_attempts failed calls (null: never). */
export interface ParkingRule {
  maxAttempts: number | null;
  /** Parks in a row with no successful delivery in between. */
  streak: number;
}

export const NO_PARKING: ParkingRule = Object.freeze({ maxAttempts: null, streak: 0 });

/** What parking an event records. Times are ms since the epoch. */
export interface ParkRecord {
  event: { id: EventId; type: string; data: string; ts: string };
  /** Failed calls that carried the event. */
  attempts: number;
  firstFailureMs: number;
  lastFailureMs: number;
  /** The last error the receiver returned: its FutoIn code and info. */
  errorCode: string;
  errorInfo: string;
  /**
   * The owner epoch of the push session parking it: recorded only while the consumer is still
   * that acquisition's (fencing, as its pointer writes).
   */
  epoch?: string;
}

/** parked, replay (to be delivered again): unresolved; replayed, skipped: resolved. */
export type ParkState = 'parked' | 'replay' | 'replayed' | 'skipped';

/** A parked event as evt_parked holds it (times YYYY-MM-DDTHH:MM:SSZ). */
export interface ParkedEvent {
  ident: string;
  event: StoredEvent;
  state: ParkState;
  attempts: number;
  firstFailure: string;
  lastFailure: string;
  errorCode: string;
  errorInfo: string;
  parkedAt: string;
  /** The last administrator's replay or skip. */
  actedBy: string | null;
  actedReason: string | null;
  actedAt: string | null;
  /** When it was delivered again or skipped. */
  resolvedAt: string | null;
}

/** How much of a receiver's error a park keeps. */
export const PARK_INFO_MAX = 1000;
const PARK_CODE_MAX = 64;

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

const toRule = (maxAttempts: unknown, streak: unknown): ParkingRule => ({
  maxAttempts: maxAttempts === null || maxAttempts === undefined ? null : Number(maxAttempts),
  streak: Number(streak ?? 0),
});

const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function assertIdentifier(name: string): string {
  if (!IDENTIFIER_RE.test(name)) throw new Error(`Invalid table name: ${JSON.stringify(name)}`);
  return name;
}

/** What the store's views on one connection share (see withTables). */
interface Shared {
  /**
   * Names this store in the notifications its commits send (PostgreSQL), so that its own
   * listener ignores them: it announces its commits in process ('committed').
   */
  origin: string;
  horizons: Map<string, Horizon>;
  bus: EventEmitter<StoreEvents>;
  counters: StreamCounters;
  /** Statements per event table and per consumer table, built on first use. */
  eventSql: Map<string, EventSql>;
  consumerSql: Map<string, ConsumerSql>;
  /** The group commit of pointer writes per consumer table (see storePointer). */
  pointerCommits: Map<string, PointerGroupCommit>;
  /** The node's coordinator, made on first use (see EventStore.coordinator). */
  coordinator: Coordinator | null;
  /** Row counts of event tables, kept while counting is slow (see TableCounts). */
  counts: TableCounts;
}

/**
 * Pointer writes in one statement at most: 3 parameters each, well below every database's
 * limit, and a statement that stays short however many sessions wait.
 */
export const POINTER_GROUP_MAX = 256;

/**
 * `config` with the server's bound on idle transactions that coordination needs (see
 * ConnectionConfig.idleTransactionMs), unless it has one or coordination is off. A node that
 * stalls inside a transaction is fenced after fence_ms; the server rolls its transaction back
 * after twice that, so neither the row locks it held stop the node that took its consumers over,
 * nor (the horizon waits for the transactions open on the server, see probeWriters) does its
 * open transaction hold delivery back on every node. The last holds for a warehouse on the same
 * server too: its archive transactions get the same bound.
 */
export function boundIdleTransactions(
  config: ConnectionConfig,
  coordination: CoordinationOptions | undefined,
): ConnectionConfig {
  const { enabled, fenceMs } = coordinationSettings(coordination);
  return enabled && config.idleTransactionMs === undefined
    ? { ...config, idleTransactionMs: 2 * fenceMs }
    : config;
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
  private readonly parkingSql: ParkingSql;
  private closed = false;
  private readonly coordinationSettings: CoordinationSettings;
  private readonly sessionDatabase: SessionAddress | undefined;

  constructor(
    readonly db: SqlClient,
    readonly dialect: SqlDialect,
    options: StoreOptions = {},
    private readonly shared: Shared = {
      origin: randomBytes(8).toString('hex'),
      horizons: new Map(),
      bus: new EventEmitter<StoreEvents>(),
      counters: new StreamCounters(),
      eventSql: new Map(),
      consumerSql: new Map(),
      pointerCommits: new Map(),
      coordinator: null,
      counts: new TableCounts(),
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
    this.parkingSql = dialect.queries.parking();
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
    const db = await openClient(boundIdleTransactions(config, options.coordination), log);
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
      () => this.dialect.insertEvents(this.db, sql, events, this.shared.origin),
      false,
    );
    const last = ids[ids.length - 1];
    const table = tableName ?? this.eventTable;
    this.counters.eventsAdded += ids.length;
    this.counters.latency?.committed(table, ids);
    if (last) {
      this.horizonOf(table).committed?.(last);
      this.shared.bus.emit('committed', table, last);
    }
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
   * Calls `onNotify` when another store (another process, mostly) commits events to an event
   * table, until closed (see SqlDialect.listen: a hint only); this store's own commits it
   * announces as 'committed'. Fails where the database has no notifications (canListen).
   */
  listen(tableName: string, onNotify: () => void): Promise<Listener> {
    if (!this.dialect.listen)
      return Promise.reject(new Error(`No notifications on ${this.dialect.name}`));
    const own = this.shared.origin;
    return this.dialect.listen(
      this.db,
      assertIdentifier(tableName),
      (origin) => {
        if (origin !== own) onNotify();
      },
      this.sessionDatabase,
    );
  }

  /** The gap-safe horizon of an event table: see HorizonTracker. */
  horizon(tableName?: string): Promise<EventId> {
    return this.horizonOf(tableName ?? this.eventTable).current();
  }

  /**
   * The horizon right after this process committed events to a table (its 'committed' event):
   * where one writer at a time is guaranteed (SQLite), that commit made its IDs safe, and no
   * probe is needed; elsewhere a fresh one, as horizon().
   */
  horizonAfterCommit(tableName?: string): Promise<EventId> {
    const h = this.horizonOf(tableName ?? this.eventTable);
    return h.committed ? Promise.resolve(h.known) : h.current();
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

  /** The event tables whose horizon this connection has computed. */
  horizonTables(): string[] {
    return [...this.horizons.keys()];
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
    this.counters.pointerCommits++;
    this.counters.pointerMoves += res.affected;
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
   * Compare-and-sets of many consumers' pointers in one commit (no ident twice): for each, true
   * if its pointer is at its `to` now (moved, or already there: a retry after a lost answer
   * that did apply), false if its condition no longer held (someone else moved it). Retried
   * after a lost connection too: a second run moves nothing twice.
   */
  async advanceConsumers(
    moves: readonly PointerAdvance[],
    consumerTable?: string,
  ): Promise<boolean[]> {
    if (moves.length === 0) return [];
    const sql = this.consumerSqlOf(consumerTable);
    const at = await this.retry('advanceConsumers', () =>
      this.dialect.advancePointers(this.db, sql, moves),
    );
    this.counters.pointerCommits++;
    this.counters.pointerMoves += at.size;
    const rest = moves.filter((m) => !at.has(m.ident));
    if (rest.length > 0) {
      const rows = await this.retry('consumerPointers', () =>
        this.db.query<{ ident: string; p: string; epoch: string }>(
          sql.pointers(rest.length),
          rest.map((m) => m.ident),
        ),
      );
      const pointers = new Map(rows.map((r) => [r.ident, r]));
      for (const m of rest) if (advanceHeld(m, pointers.get(m.ident))) at.add(m.ident);
    }
    return moves.map((m) => at.has(m.ident));
  }

  /**
   * A push session's pointer write: a compare-and-set that shares its statement and commit with
   * those of other sessions queued meanwhile (see PointerGroupCommit); true once the pointer is
   * at `to`, false when `condition` no longer held. One not `wanted` any more when its group is
   * written is left out (and resolves false).
   */
  storePointer(
    ident: string,
    to: EventId,
    condition: PointerCondition,
    wanted?: () => boolean,
  ): Promise<boolean> {
    let group = this.shared.pointerCommits.get(this.consumerTable);
    if (!group) {
      const table = this.consumerTable;
      group = new PointerGroupCommit(
        (moves) => this.advanceConsumers(moves, table),
        POINTER_GROUP_MAX,
      );
      this.shared.pointerCommits.set(table, group);
    }
    return group.advance({ ident, to, condition }, wanted);
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
      await tx.execute(sql.recordMove, [ident, 'move', row.p, to, by, reason, 0, null, null]);
      return row.p;
    });
  }

  /**
   * Unregisters a consumer and records the drop (its pending moves no longer mean anything), in
   * one transaction; false if it was not registered. Its unresolved parked events are skipped
   * (acted on by `by`, the reason saying it was dropped) and its parking rule goes. Not
   * idempotent either (run again after an unknown outcome, it would answer false): retried like
   * moveConsumer.
   */
  dropConsumer(ident: string, by: string, reason: string): Promise<boolean> {
    const sql = this.consumerSql;
    const parking = this.parkingSql;
    return this.writeOnce('dropConsumer', async (tx) => {
      const [row] = await tx.query<{ p: string }>(sql.pointer, [ident]);
      if (!row) return false;
      await tx.execute(sql.remove, [ident]);
      await tx.execute(sql.allMovesApplied, [ident]);
      await tx.execute(sql.recordMove, [ident, 'drop', row.p, null, by, reason, 1, null, null]);
      await tx.execute(parking.skip(false), [by, `dropped: ${reason}`.slice(0, 200), ident]);
      await tx.execute(parking.removeRule, [ident]);
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
        evt_id: string | null;
        max_attempts: unknown;
      }>(text, ident === null ? [] : [ident]),
    );
    return rows.map((r) => ({
      ident: r.ident,
      action: (MOVE_ACTIONS.has(r.action) ? r.action : 'move') as MoveAction,
      from: r.from_id,
      ...(r.to_id === null ? {} : { to: r.to_id }),
      by: r.by_user,
      reason: r.reason,
      at: r.at,
      applied: Number(r.applied) === 1,
      ...(r.evt_id === null ? {} : { event_id: r.evt_id }),
      ...(r.action === 'limit' ? { max_attempts: Number(r.max_attempts ?? 0) } : {}),
    }));
  }

  /** A consumer's parking rule (none set: never park). */
  async parkingRule(ident: string): Promise<ParkingRule> {
    const rows = await this.retry('parkingRule', () =>
      this.db.query<{ max_attempts: unknown; park_streak: unknown }>(this.parkingSql.rule, [ident]),
    );
    const row = rows[0];
    return row ? toRule(row.max_attempts, row.park_streak) : NO_PARKING;
  }

  /** Every consumer's parking rule that was ever set, by ident. */
  async parkingRules(): Promise<Map<string, ParkingRule>> {
    const rows = await this.retry('parkingRules', () =>
      this.db.query<{ ident: string; max_attempts: unknown; park_streak: unknown }>(
        this.parkingSql.rules,
      ),
    );
    return new Map(rows.map((r) => [r.ident, toRule(r.max_attempts, r.park_streak)]));
  }

  /** Unresolved parked events (parked, or to be replayed) per consumer that has any. */
  async parkedCounts(): Promise<Map<string, number>> {
    const rows = await this.retry('parkedCounts', () =>
      this.db.query<{ ident: string; n: unknown }>(this.parkingSql.counts),
    );
    return new Map(rows.map((r) => [r.ident, Number(r.n)]));
  }

  /**
   * Sets a registered consumer's max_attempts (null: never park) and clears its streak of parks,
   * recording it as a 'limit' action, in one transaction; resolves with its pointer, null when it
   * is not registered. Retried like moveConsumer (run twice, it would record twice).
   */
  setMaxAttempts(
    ident: string,
    maxAttempts: number | null,
    by: string,
    reason: string,
  ): Promise<EventId | null> {
    const sql = this.consumerSql;
    return this.writeOnce('setMaxAttempts', async (tx) => {
      const [row] = await tx.query<{ p: string }>(sql.pointer, [ident]);
      if (!row) return null;
      await tx.execute(this.parkingSql.setRule, [ident, maxAttempts]);
      await tx.execute(sql.recordMove, [
        ident,
        'limit',
        row.p,
        null,
        by,
        reason,
        1,
        null,
        maxAttempts,
      ]);
      return row.p;
    });
  }

  /**
   * Parks an event for a consumer (again, if it was parked before: the attempts add up and it is
   * unresolved again) with a copy of the event, and adds one to its streak of parks, in one
   * transaction; resolves with the streak. With `park.epoch`, only while the consumer's
   * owner_epoch is still that one (the row locked meanwhile, as an acquisition locks it):
   * otherwise nothing is recorded and it resolves with null, the session's node having lost the
   * consumer to another. Not idempotent (attempts and streak add up): retried only after errors
   * that applied nothing.
   */
  parkEvent(ident: string, park: ParkRecord): Promise<number | null> {
    const sql = this.parkingSql;
    const e = park.event;
    return this.writeOnce('parkEvent', async (tx) => {
      if (park.epoch !== undefined) {
        const [owner] = await tx.query<{ epoch: string }>(this.consumerSql.ownerForUpdate, [ident]);
        if (owner?.epoch !== park.epoch) return null;
      }
      await tx.execute(sql.park, [
        ident,
        e.id,
        e.type,
        e.data,
        sqlTimestamp(e.ts),
        park.attempts,
        sqlUtc(park.firstFailureMs),
        sqlUtc(park.lastFailureMs),
        park.errorCode.slice(0, PARK_CODE_MAX),
        park.errorInfo.slice(0, PARK_INFO_MAX),
      ]);
      await tx.execute(sql.bumpStreak, [ident]);
      const [row] = await tx.query<{ park_streak: unknown }>(sql.rule, [ident]);
      return Number(row?.park_streak ?? 1);
    });
  }

  /** The consumer delivered an event again: its streak of parks starts over. */
  async clearParkStreak(ident: string): Promise<void> {
    await this.retry('clearParkStreak', () =>
      this.db.execute(this.parkingSql.clearStreak, [ident]),
    );
  }

  /**
   * Marks a registered consumer's parked events (one, or all with `eventId` null) to be
   * delivered again at its next push session, recording a 'replay' action per event, in one
   * transaction. Resolves with their IDs (none when there is nothing parked to replay; events
   * already marked stay as they are), null when the consumer is not registered.
   */
  replayParked(
    ident: string,
    eventId: EventId | null,
    by: string,
    reason: string,
  ): Promise<EventId[] | null> {
    return this.actOnParked('replay', ident, eventId, by, reason);
  }

  /**
   * Resolves a registered consumer's unresolved parked events (one, or all with `eventId` null)
   * without delivering them, recording a 'skip' action per event, in one transaction. Resolves
   * with their IDs, null when the consumer is not registered.
   */
  skipParked(
    ident: string,
    eventId: EventId | null,
    by: string,
    reason: string,
  ): Promise<EventId[] | null> {
    return this.actOnParked('skip', ident, eventId, by, reason);
  }

  private actOnParked(
    action: 'replay' | 'skip',
    ident: string,
    eventId: EventId | null,
    by: string,
    reason: string,
  ): Promise<EventId[] | null> {
    const sql = this.parkingSql;
    const one = eventId !== null;
    const which = one ? [ident, eventId] : [ident];
    return this.writeOnce(`${action}Parked`, async (tx) => {
      const [row] = await tx.query<{ p: string }>(this.consumerSql.pointer, [ident]);
      if (!row) return null;
      const picked = await tx.query<{ id: string }>(sql.pick(one, action === 'replay'), which);
      if (picked.length === 0) return [];
      await tx.execute(action === 'replay' ? sql.replay(one) : sql.skip(one), [
        by,
        reason,
        ...which,
      ]);
      for (const p of picked) {
        await tx.execute(this.consumerSql.recordMove, [
          ident,
          action,
          row.p,
          null,
          by,
          reason,
          1,
          p.id,
          null,
        ]);
      }
      return picked.map((p) => p.id);
    });
  }

  /** A consumer's events marked to be replayed, after `after`, in ID order. */
  async parkedReplays(ident: string, after: EventId, limit: number): Promise<StoredEvent[]> {
    if (limit <= 0) return [];
    const text = this.parkingSql.replays(Math.floor(limit));
    return this.retry('parkedReplays', () =>
      this.db.query<StoredEvent & Record<string, unknown>>(text, [ident, after]),
    );
  }

  /** Events marked to be replayed were delivered: resolved. Resolves with how many changed. */
  async parkedReplayed(ident: string, ids: readonly EventId[]): Promise<number> {
    if (ids.length === 0) return 0;
    const text = this.parkingSql.replayed(ids.length);
    const res = await this.retry('parkedReplayed', () => this.db.execute(text, [ident, ...ids]));
    return res.affected;
  }

  /** Parked events (of one consumer, or of all with null) by consumer and event ID. */
  async listParked(q: {
    ident: string | null;
    unresolvedOnly: boolean;
    limit: number;
  }): Promise<ParkedEvent[]> {
    const text = this.parkingSql.list(
      q.ident !== null,
      q.unresolvedOnly,
      Math.max(1, Math.floor(q.limit)),
    );
    const rows = await this.retry('listParked', () =>
      this.db.query<{
        ident: string;
        id: string;
        type: string;
        data: string;
        ts: string;
        state: string;
        attempts: unknown;
        first_failure: string;
        last_failure: string;
        error_code: string;
        error_info: string;
        parked_at: string;
        acted_by: string | null;
        acted_reason: string | null;
        acted_at: string | null;
        resolved_at: string | null;
      }>(text, q.ident === null ? [] : [q.ident]),
    );
    return rows.map((r) => ({
      ident: r.ident,
      event: { id: r.id, type: r.type, data: r.data, ts: r.ts },
      state: r.state as ParkState,
      attempts: Number(r.attempts),
      firstFailure: r.first_failure,
      lastFailure: r.last_failure,
      errorCode: r.error_code,
      errorInfo: r.error_info,
      parkedAt: r.parked_at,
      actedBy: r.acted_by,
      actedReason: r.acted_reason,
      actedAt: r.acted_at,
      resolvedAt: r.resolved_at,
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

  /**
   * The lowest ID in an event table, '0' when it is empty. Below it, every ID of the active
   * table was deleted by the discarder (lowest first) or never used.
   */
  async oldestEventId(tableName?: string): Promise<EventId> {
    const text = this.eventSqlOf(tableName).oldest;
    const [row] = await this.retry('oldestEventId', () =>
      this.db.query<{ oldest: string | null }>(text),
    );
    return row?.oldest ?? NO_EVENT;
  }

  /**
   * The newest and oldest event IDs of an event table ('0' when empty), read now, and how many
   * events it holds: counted now on a small table, on a big one perhaps the count kept from a
   * while ago (TableCounts), `countAgeMs` saying how old it is.
   */
  async tableRange(
    tableName?: string,
  ): Promise<{ newest: EventId; oldest: EventId; count: number; countAgeMs: number }> {
    const text = this.eventSqlOf(tableName).range;
    const [row] = await this.retry('tableRange', () =>
      this.db.query<{ newest: string | null; oldest: string | null }>(text),
    );
    const newest = row?.newest ?? NO_EVENT;
    const oldest = row?.oldest ?? NO_EVENT;
    const table = tableName ?? this.eventTable;
    const span = newest === NO_EVENT ? 0 : Number(BigInt(newest) - BigInt(oldest)) + 1;
    const kept = await this.shared.counts.get(table, span, () => this.countEvents(table));
    return { newest, oldest, count: kept.count, countAgeMs: kept.ageMs };
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
