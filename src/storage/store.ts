import { EventEmitter } from 'events';
import { cmpIds, NO_EVENT, type EventId } from '../common/ids';
import { defaultLogger, type Logger } from '../common/log';
import { TABLES } from '../common/constants';
import type { ConnectionConfig } from './config';
import { StreamCounters } from './counters';
import { createDialect, type NewEvent, type SqlDialect } from './dialects';
import {
  HORIZON_DEFAULTS,
  HorizonTracker,
  SingleWriterHorizon,
  type Horizon,
  type HorizonOptions,
} from './horizon';
import { openClient } from './open';
import { withRetry } from './retry';
import type { SqlClient, SqlValue } from './sql';

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

export interface StoreOptions {
  /** Event table (default evt_queue); addXferEvent may name others. */
  eventTable?: string;
  consumerTable?: string;
  log?: Logger;
  horizon?: Partial<HorizonOptions>;
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

/**
 * The event store: every read and write of events and consumer pointers, over one SqlClient and
 * its dialect. Services share one store per database.
 */
export class EventStore {
  readonly eventTable: string;
  readonly consumerTable: string;
  readonly log: Logger;
  private readonly horizonOptions: HorizonOptions;
  private closed = false;

  constructor(
    readonly db: SqlClient,
    readonly dialect: SqlDialect,
    options: StoreOptions = {},
    /** Shared with stores of other tables on the same connection (see withTables). */
    private readonly shared: {
      horizons: Map<string, Horizon>;
      bus: EventEmitter<StoreEvents>;
      counters: StreamCounters;
    } = {
      horizons: new Map(),
      bus: new EventEmitter<StoreEvents>(),
      counters: new StreamCounters(),
    },
    /** Whether close() closes the connection (false for withTables views). */
    private readonly ownsConnection = true,
  ) {
    this.eventTable = assertIdentifier(options.eventTable ?? TABLES.events);
    this.consumerTable = assertIdentifier(options.consumerTable ?? TABLES.consumers);
    this.log = options.log ?? defaultLogger();
    this.horizonOptions = { ...HORIZON_DEFAULTS, ...options.horizon };
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
      { eventTable, consumerTable, log: this.log, horizon: this.horizonOptions },
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

  private table(name?: string): string {
    return this.dialect.quote(assertIdentifier(name ?? this.eventTable));
  }

  /** Runs `work` with retries (see withRetry); only idempotent work survives a lost connection. */
  private retry<T>(what: string, work: () => Promise<T>, idempotent = true): Promise<T> {
    return withRetry(work, (e) => this.dialect.errorKind(e), this.log, what, idempotent);
  }

  /**
   * Stores events atomically, in one statement (one multi-row INSERT is one transaction by
   * itself: no BEGIN and COMMIT round trips); resolves with their IDs, in order, once committed.
   */
  async addEvents(events: readonly NewEvent[], tableName?: string): Promise<EventId[]> {
    if (events.length === 0) return [];
    const table = this.table(tableName);
    const ids = await this.retry(
      'addEvents',
      () => this.dialect.insertEvents(this.db, table, events),
      false,
    );
    const last = ids[ids.length - 1];
    this.counters.eventsAdded += ids.length;
    if (last) this.shared.bus.emit('committed', tableName ?? this.eventTable, last);
    return ids;
  }

  /** Events after `after`, up to `upTo`, in ID order. */
  async readEvents(q: ReadQuery): Promise<StoredEvent[]> {
    if ((q.want && q.want.length === 0) || cmpIds(q.upTo, q.after) <= 0 || q.limit <= 0) return [];
    const d = this.dialect;
    const params: SqlValue[] = [q.after, q.upTo];
    let typeFilter = '';
    if (q.want) {
      typeFilter = ` AND e.type IN (${q.want.map(() => '?').join(', ')})`;
      params.push(...q.want);
    }
    // Columns qualified by the table alias: a bare ORDER BY id would sort by the text alias.
    const sql =
      `SELECT ${d.idText('e.id')} AS id, e.type, ${d.dataText('e.data')} AS data, ${d.tsText('e.ts')} AS ts` +
      ` FROM ${this.table(q.table)} e WHERE e.id > ${d.idParam} AND e.id <= ${d.idParam}${typeFilter}` +
      ` ORDER BY e.id LIMIT ${Math.floor(q.limit)}`;
    return this.retry('readEvents', () =>
      this.db.query<StoredEvent & Record<string, unknown>>(sql, params),
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
      const table = this.table(tableName);
      const probe = (since: EventId) =>
        this.retry('probe', () => this.dialect.probeWriters(this.db, table, since));
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
    const now = this.dialect.nowUtc;
    try {
      await this.retry('registerConsumer', () =>
        this.db.execute(
          `INSERT INTO ${this.dialect.quote(this.consumerTable)} (last_evt_id, reg_time, last_time, ident)` +
            ` VALUES (0, ${now}, ${now}, ?)`,
          [ident],
        ),
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
      this.db.query<{ p: string }>(
        `SELECT ${this.dialect.idText('last_evt_id')} AS p FROM ${this.dialect.quote(this.consumerTable)} WHERE ident = ?`,
        [ident],
      ),
    );
    return rows[0]?.p ?? null;
  }

  /**
   * Where a reliable consumer reads from now: its stored pointer, and the newest move an
   * administrator made since it last read (`move`, null if none: then it reads from the pointer
   * once, whatever last_id it sends). Null when the consumer is not registered.
   */
  async consumerPosition(ident: string): Promise<{ pointer: EventId; move: string | null } | null> {
    const d = this.dialect;
    const rows = await this.retry('consumerPosition', () =>
      this.db.query<{ p: string; move: string | null }>(
        `SELECT ${d.idText('c.last_evt_id')} AS p, (SELECT ${d.idText('MAX(m.id)')} FROM` +
          ` ${d.quote(TABLES.moves)} m WHERE m.ident = c.ident AND m.applied = 0) AS move` +
          ` FROM ${d.quote(this.consumerTable)} c WHERE c.ident = ?`,
        [ident],
      ),
    );
    const row = rows[0];
    return row ? { pointer: row.p, move: row.move } : null;
  }

  /**
   * The consumer has read from its moved pointer: the moves up to `move` (as consumerPosition
   * gave it) are applied; one made since stays pending for its next read.
   */
  async consumerMovesApplied(ident: string, move: string): Promise<void> {
    const d = this.dialect;
    await this.retry('consumerMovesApplied', () =>
      this.db.execute(
        `UPDATE ${d.quote(TABLES.moves)} SET applied = 1 WHERE ident = ? AND applied = 0 AND id <= ${d.idParam}`,
        [ident, move],
      ),
    );
  }

  /**
   * Moves a consumer's pointer forward to `to` (never back); true if it moved. With `from`, only
   * if the pointer is still `from`: a writer that knows what it stored last (a push session, a
   * poll) must not undo a move an administrator made in between.
   */
  async advanceConsumer(ident: string, to: EventId, from?: EventId): Promise<boolean> {
    if (to === NO_EVENT) return false;
    const d = this.dialect;
    const cas = from === undefined ? '' : ` AND last_evt_id = ${d.idParam}`;
    const res = await this.retry('advanceConsumer', () =>
      this.db.execute(
        `UPDATE ${d.quote(this.consumerTable)} SET last_evt_id = ${d.idParam}, last_time = ${d.nowUtc}` +
          ` WHERE ident = ? AND last_evt_id < ${d.idParam}${cas}`,
        from === undefined ? [to, ident, to] : [to, ident, to, from],
      ),
    );
    if (res.affected > 0 || from === undefined) return res.affected > 0;
    // Nothing changed: moved by someone else, or already `to` (a retry after a lost answer to
    // the UPDATE that did apply).
    return (await this.consumerPointer(ident)) === to;
  }

  /** Every registered consumer; `idleMs` flags those whose last_time is older than that. */
  async consumers(idleMs?: number, consumerTable?: string): Promise<ConsumerState[]> {
    const d = this.dialect;
    const idle =
      idleMs === undefined
        ? '0'
        : `CASE WHEN last_time < ${d.utcBeforeMs(idleMs)} THEN 1 ELSE 0 END`;
    const rows = await this.retry('consumers', () =>
      this.db.query<{ ident: string; pointer: string; last_time: string; idle: number | string }>(
        `SELECT ident, ${d.idText('last_evt_id')} AS pointer, ${d.tsText('last_time')} AS last_time,` +
          ` ${idle} AS idle FROM ${d.quote(assertIdentifier(consumerTable ?? this.consumerTable))}`,
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
    const [row] = await this.retry('newestEventId', () =>
      this.db.query<{ newest: string | null }>(
        `SELECT ${this.dialect.idText('MAX(id)')} AS newest FROM ${this.table(tableName)}`,
      ),
    );
    return row?.newest ?? NO_EVENT;
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
    const d = this.dialect;
    const old =
      q.olderThanMs === undefined
        ? '1'
        : `CASE WHEN e.ts < ${d.utcBeforeMs(q.olderThanMs)} THEN 1 ELSE 0 END`;
    const rows = await this.retry('eventAges', () =>
      this.db.query<{ id: string; old: number | string }>(
        `SELECT ${d.idText('e.id')} AS id, ${old} AS old FROM ${this.table(q.table)} e` +
          ` WHERE e.id > ${d.idParam} AND e.id <= ${d.idParam} ORDER BY e.id LIMIT ${Math.floor(q.limit)}`,
        [q.after, q.upTo],
      ),
    );
    return rows.map((r) => ({ id: r.id, old: Number(r.old) === 1 }));
  }

  /**
   * Deletes at most `limit` events with IDs up to `upTo`, lowest first, in one statement (its
   * own transaction); resolves with the number deleted. Never past what every counted consumer
   * has acknowledged, as the statement itself reads the pointers (a locking read, see
   * lockedMinSql): nothing above the lowest `last_evt_id` in the consumer table, and nothing at
   * all when no consumer counts. So a pointer moved back, or a consumer registered, after the
   * caller read the pointers still holds its events. Consumers in `ignoring` (the discarder's
   * stale ones) do not count, but each only while its row is as it was: still at `pointer` and
   * last_time still older than `idleMs` (a move resets last_time). Retried after a lost
   * connection: it deletes nothing above `upTo` whichever way the first attempt ended.
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
    const d = this.dialect;
    const params: SqlValue[] = [upTo];
    let counted = '';
    const ignored = options.ignoring?.consumers ?? [];
    if (options.ignoring && ignored.length > 0) {
      const rows = ignored.map((c) => {
        params.push(c.ident, c.pointer);
        return `(c.ident = ? AND c.last_evt_id = ${d.idParam})`;
      });
      counted = `NOT (c.last_time < ${d.utcBeforeMs(options.ignoring.idleMs)} AND (${rows.join(' OR ')}))`;
    }
    const consumers = `${d.quote(assertIdentifier(options.consumerTable ?? this.consumerTable))} c`;
    const lowest = d.lockedMinSql('c.last_evt_id', consumers, counted);
    // NULL when no consumer counts: `id <= NULL` holds for no row.
    const sql = d.deleteFirstSql(
      this.table(options.table),
      `id <= ${d.idParam} AND id <= ${lowest}`,
      limit,
    );
    const res = await this.retry('deleteEventsUpTo', () => this.db.execute(sql, params));
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
    await this.db.close();
  }
}
