/**
 * The SQL text of every store routine, written out whole once per dialect (sqlite.ts,
 * postgresql.ts, mysql.ts), so a reader sees each statement as the database gets it.
 *
 * Conventions shared by the three: `?` placeholders (the PostgreSQL adapter numbers them); IDs
 * travel as decimal strings and come back as text; durations travel as whole milliseconds (see
 * wholeMs) and are subtracted from the database's own UTC clock; times travel as UTC
 * 'YYYY-MM-DD HH:MM:SS' and come back as FTN18 'YYYY-MM-DDTHH:MM:SSZ'. Table names are
 * validated identifiers (assertIdentifier), quoted by each dialect.
 *
 * Only these parts of a statement vary, each an argument of its builder: IN-lists (a `want`
 * filter's types, the consumers a discarder ignores), LIMIT, the number of VALUES rows, and
 * the listing's optional filters. Everything else is fixed per table, and the store builds the
 * hot texts once per table and shape (see cacheShapes).
 */
export interface Queries {
  /** Statements on an event table (evt_queue, evt_history or another with its columns). */
  events(table: string): EventSql;
  /** Statements on a consumer table and on evt_consumer_moves. */
  consumers(table: string): ConsumerSql;
  /** Statements on evt_parked and evt_consumer_parking (poison events of push consumers). */
  parking(): ParkingSql;
  /**
   * What nodes of a cluster coordinate with (see storage/coordination): session locks and the
   * heartbeat on the node's coordination connection; control messages where the database has
   * no notifications. Absent on SQLite (one process, no server sessions).
   */
  readonly coordination?: CoordinationSql;
}

/** Statements of the coordination connection (one database session per node). */
export interface CoordinationSql {
  /** Takes a session lock if free, without waiting: `ok` = 1 if this session holds it now. Params: key. */
  readonly tryLock: string;
  /** Releases a session lock this session holds: `ok` = 1 if it did. Params: key. */
  readonly unlock: string;
  /**
   * The heartbeat: `pid`, the server's ID of this session; `ro` = 1 when the server cannot take
   * writes (a hot standby, a read-only replica); `locks`, how many session locks this session
   * holds (NULL where the database cannot tell).
   */
  readonly heartbeat: string;
  /**
   * Settings of the coordination session, for a node that fences itself after `fenceMs`
   * without a heartbeat: the server ends the session (and frees its locks) once it has been idle
   * or unreachable for about twice that. Each statement may fail on servers that lack the
   * setting; it is then left out.
   */
  sessionSettings(fenceMs: number): string[];
  /** Control messages as rows (MySQL); absent where they go by notification (PostgreSQL). */
  readonly control?: ControlSql;
  /** Sends a notification on a channel (PostgreSQL). Params: channel, payload. */
  readonly notify?: string;
}

/** Control messages of the nodes, as rows of evt_control. */
export interface ControlSql {
  /** Params: kind, scope, subject, from_node, info, epoch ('' for none). */
  readonly send: string;
  /**
   * Rows of the last `ms`: id, kind, scope, subject, node (the sender), info, epoch. Params: ms.
   */
  readonly recent: string;
  /** Deletes rows older than `ms`. Params: ms. */
  readonly expire: string;
}

/** Which conditions a listing has (each given one adds its parameters, in this order). */
export interface ListShape {
  fromId: boolean;
  toId: boolean;
  /** Number of types in the IN-list; 0 for no type filter. */
  types: number;
  since: boolean;
  until: boolean;
  descending: boolean;
  limit: number;
}

/** Statements of one event table. Parameters in the order listed; results by column name. */
export interface EventSql {
  /** The table's name, as given (unquoted). */
  readonly name: string;
  /**
   * Stores `rows` events in one statement, its own transaction (PostgreSQL also wakes its
   * listeners). Params: type, data per row; PostgreSQL then the notification's origin (see
   * SqlDialect.listen). Returns `id` per row, except on MySQL (insertId).
   */
  insert(rows: number): string;
  /** The same, as part of the caller's transaction (no wake-up). */
  insertInTx(rows: number): string;
  /**
   * Events after an ID up to another, of some types only (`types` > 0), in ID order.
   * Params: after, upTo, ...types. Returns id, type, data (JSON text), ts.
   */
  read(types: number, limit: number): string;
  /** Returns `newest`: the highest ID, NULL when empty. */
  readonly newest: string;
  /**
   * Returns `oldest`: the lowest ID, NULL when empty. The discarder deletes lowest first, so
   * every ID below it was deleted or never used (see delivery/backlog.ts).
   */
  readonly oldest: string;
  /** IDs after an ID up to another, in ID order, each `old` = 1. Params: after, upTo. */
  ages(limit: number): string;
  /** The same, `old` = 1 when ts is older than a duration. Params: ms, after, upTo. */
  agesOlderThan(limit: number): string;
  /**
   * Deletes the lowest IDs up to an ID and up to the lowest `last_evt_id` in `consumers`, read
   * with a locking read: it waits for a transaction changing one of those rows and sees what
   * that one committed. With no consumer counted, MIN is NULL and `id <= NULL` holds for no row.
   * With `ignored` > 0, a consumer does not count while it still has one of the given pointers
   * and a last_time older than a duration. Params: upTo, then (if ignored > 0) ms and
   * (ident, pointer) per ignored consumer.
   */
  deleteUpTo(consumers: string, ignored: number, limit: number): string;
  /**
   * The first `limit` events after an ID up to another: `n` how many, `ts` the oldest one's.
   * Params: after, upTo.
   */
  behind(limit: number): string;
  /** Returns `id`: the highest ID older than a time, up to an ID. Params: time, upTo. */
  readonly newestBefore: string;
  /** Returns `newest` and `oldest` (NULL when empty): index lookups, cheap at any size. */
  readonly range: string;
  /** Returns `n`, the number of events. */
  readonly count: string;
  /** Returns `n`: events after an ID whose ts is within a duration. Params: after, ms. */
  readonly countRecent: string;
  /**
   * Events for people to look at, oldest first (or newest first). Params: fromId, toId,
   * ...types, since, until, each only if the shape has it. Returns id, type, data, ts.
   */
  list(shape: ListShape): string;
  /** Copies `rows` events with their IDs, skipping IDs already there. Params: id, type, data, ts per row. */
  copy(rows: number): string;
}

/** Statements of one consumer table (and of evt_consumer_moves). */
export interface ConsumerSql {
  /** Params: ident. */
  readonly register: string;
  /** Returns `p`, the pointer. Params: ident. */
  readonly pointer: string;
  /** Returns `p` and `move`, the newest pending move's ID (NULL if none). Params: ident. */
  readonly position: string;
  /** Moves the pointer forward only. Params: to, ident, to. */
  readonly advance: string;
  /** The same, only while the pointer is still `from`. Params: to, ident, to, from. */
  readonly advanceFrom: string;
  /**
   * advanceFrom for `rows` consumers in one statement (its own transaction): each pointer moves
   * forward to its `to` only while it is still its `from` and, when the row's epoch is not NULL,
   * while owner_epoch is still that epoch (fencing, as advanceOwned). Params: ident, to, from,
   * epoch (or NULL) per row (no ident twice). Returns `ident` of each row it moved, where the database can (PostgreSQL,
   * SQLite: RETURNING); nothing on MySQL (see SqlDialect.advancePointers).
   */
  advanceMany(rows: number): string;
  /** Returns ident, `p` (the pointer) and `epoch` (owner_epoch) of the consumers named. Params: `rows` idents. */
  pointers(rows: number): string;
  /** Returns ident, pointer, last_time and `idle` = 0 for every consumer. */
  readonly all: string;
  /** The same, `idle` = 1 when last_time is older than a duration. Params: ms. */
  readonly allIdle: string;
  /** Sets the pointer, any way. Params: pointer, ident. */
  readonly setPointer: string;
  /** Params: ident. */
  readonly remove: string;
  /**
   * Records a move, a drop or another administrator's action. Params: ident, action, from, to
   * (NULL but for a move), by, reason, applied, event ID (replay, skip; else NULL), max_attempts
   * (limit; else NULL).
   */
  readonly recordMove: string;
  /** Marks the consumer's pending moves up to one as applied. Params: ident, move ID. */
  readonly movesApplied: string;
  /** Marks all the consumer's pending moves as applied. Params: ident. */
  readonly allMovesApplied: string;
  /**
   * Recorded moves, newest first: ident, action, from_id, to_id, by_user, reason, at, applied,
   * evt_id, max_attempts. Params: ident, only when `ofOne`.
   */
  listMoves(ofOne: boolean, limit: number): string;
  /**
   * Takes the consumer row for an acquisition or a fenced write: `prev`, the node named as its
   * owner (NULL if none), and `epoch`, its owner_epoch, with a lock on the row until the
   * transaction ends. Params: ident.
   */
  readonly ownerForUpdate: string;
  /** Bumps owner_epoch and names the new owner. Params: node, ident. */
  readonly claim: string;
  /** Returns `p` (the pointer), `epoch` and `move` (as position). Params: ident. */
  readonly owned: string;
  /** Clears owner_node, only while owner_epoch is still the one given. Params: ident, epoch. */
  readonly release: string;
  /**
   * Moves the pointer forward only, while it is still `from` and owner_epoch is still `epoch`.
   * Params: to, ident, to, from, epoch.
   */
  readonly advanceOwned: string;
  /** Every consumer with an owner: ident, node, epoch. */
  readonly owners: string;
}

/**
 * Statements of evt_parked (one row per consumer and parked event, with a copy of the event) and
 * evt_consumer_parking (a consumer's max_attempts and its streak of parks). States of a parked
 * event: parked, replay (to be delivered again), replayed, skipped; the first two are unresolved.
 */
export interface ParkingSql {
  /** Returns max_attempts (NULL: never park) and park_streak. Params: ident. */
  readonly rule: string;
  /** Every consumer's rule: ident, max_attempts, park_streak. */
  readonly rules: string;
  /** Sets max_attempts (NULL: never park) and clears the streak. Params: ident, max_attempts. */
  readonly setRule: string;
  /** Adds one to the streak (creating the row). Params: ident. */
  readonly bumpStreak: string;
  /** Clears the streak. Params: ident. */
  readonly clearStreak: string;
  /** Params: ident. */
  readonly removeRule: string;
  /**
   * Parks an event, or parks it again (its attempts add up, it is unresolved again). Params:
   * ident, event ID, type, data, ts, attempts, first failure, last failure (times as UTC
   * 'YYYY-MM-DD HH:MM:SS'), error code, error info.
   */
  readonly park: string;
  /**
   * The parked events an action applies to, locking them where the database can: `id`. The
   * unresolved ones, or with `onlyParked` those not marked to be replayed yet. Params: ident,
   * then the event ID when `one`.
   */
  pick(one: boolean, onlyParked: boolean): string;
  /** Marks them to be replayed. Params: by, reason, ident, then the event ID when `one`. */
  replay(one: boolean): string;
  /** Resolves them without delivery. Params: by, reason, ident, then the event ID when `one`. */
  skip(one: boolean): string;
  /**
   * The events marked to be replayed after an event ID, in ID order: id, type, data, ts, as
   * events are read. Params: ident, after.
   */
  replays(limit: number): string;
  /** Resolves `n` events marked to be replayed as delivered. Params: ident, n event IDs. */
  replayed(n: number): string;
  /**
   * Parked events, newest first: ident, id, type, data, ts, state, attempts, first_failure,
   * last_failure, error_code, error_info, parked_at, acted_by, acted_reason, acted_at,
   * resolved_at. Params: ident when `ofOne`.
   */
  list(ofOne: boolean, unresolvedOnly: boolean, limit: number): string;
  /** Unresolved parked events per consumer: ident, n. */
  readonly counts: string;
}

/** `n` copies of `text` joined by `separator`: the rows of a VALUES list, an IN-list. */
export const repeat = (n: number, text: string, separator = ', '): string =>
  new Array<string>(n).fill(text).join(separator);

/** ` WHERE a AND b` of the conditions given (false ones left out), '' when none is. */
export const where = (conditions: readonly (string | false)[]): string => {
  const given = conditions.filter((c): c is string => c !== false);
  return given.length > 0 ? ` WHERE ${given.join(' AND ')}` : '';
};

/** Durations beyond this (about 317 years) are refused: no age test needs more. */
const MAX_SQL_MS = 1e13;

/** A duration parameter: whole milliseconds, refusing what is not a number from 0 to 1e13. */
export function wholeMs(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_SQL_MS)
    throw new RangeError(`Invalid duration: ${ms} ms`);
  return Math.floor(ms);
}

/** Shapes each statement keeps at most; others are built at each call (never an unbounded cache). */
export const MAX_SHAPES = 1024;

/** `build`, remembering each text it built (up to MAX_SHAPES of them) by its two numbers. */
export function byShape(build: (a: number, b: number) => string): (a: number, b: number) => string {
  const texts = new Map<number, Map<number, string>>();
  let size = 0;
  return (a, b) => {
    let ofA = texts.get(a);
    let text = ofA?.get(b);
    if (text === undefined) {
      text = build(a, b);
      if (size < MAX_SHAPES) {
        if (!ofA) texts.set(a, (ofA = new Map<number, string>()));
        ofA.set(b, text);
        size++;
      }
    }
    return text;
  };
}

/**
 * The statements of an event table with the texts of the hot paths (insert, read) built once per
 * shape: a delivery read or a group commit then costs a lookup, not a new string.
 */
export function cacheShapes(sql: EventSql): EventSql {
  const insert = byShape((rows) => sql.insert(rows));
  const insertInTx = byShape((rows) => sql.insertInTx(rows));
  return {
    ...sql,
    insert: (rows) => insert(rows, 0),
    insertInTx: (rows) => insertInTx(rows, 0),
    read: byShape((types, limit) => sql.read(types, limit)),
  };
}
