import crypto from 'crypto';
import type { EventId } from '../../common/ids';
import type { ConsumerSql, EventSql, Queries } from '../queries';
import type { Dialect, ErrorKind, SessionAddress, SqlClient, SqlRunner, SqlValue } from '../sql';

/** An open LISTEN: `closed` resolves when its connection ends (error or close()). */
export interface Listener {
  close(): Promise<void>;
  readonly closed: Promise<Error | undefined>;
}

/** The notification channel of an event table (PostgreSQL limits names to 63 bytes). */
export const notifyChannel = (table: string): string => `evtstream_${table}`.slice(0, 63);

/** An event ready to store: its type and its data already encoded as JSON text. */
export interface NewEvent {
  type: string;
  data: string;
}

/**
 * What must still hold for a pointer write to move a consumer's pointer: that it is still where
 * the writer stored it last (or found it at the start), so that a move someone else made
 * meanwhile (an administrator, a session of the consumer elsewhere) is never undone; and, with
 * `epoch`, that the consumer's owner_epoch is still the one of the push session's acquisition
 * (fencing: a node that lost the consumer to another never moves its pointer).
 */
export interface PointerCondition {
  from: EventId;
  epoch?: string;
}

/** A compare-and-set of one consumer's pointer: forward to `to`, if `condition` holds. */
export interface PointerAdvance {
  ident: string;
  to: EventId;
  condition: PointerCondition;
}

/** The parameters of ConsumerSql.advanceMany for `moves`: ident, to, from, epoch (or null) of each. */
export function advanceParams(moves: readonly PointerAdvance[]): SqlValue[] {
  const params: SqlValue[] = [];
  for (const m of moves) params.push(m.ident, m.to, m.condition.from, m.condition.epoch ?? null);
  return params;
}

/**
 * Whether a consumer read back after a grouped write (ConsumerSql.pointers: `p` and `epoch`)
 * is where `m` wanted it: at its `to`, and still of its epoch when it has one.
 */
export function advanceHeld(
  m: PointerAdvance,
  row: { p: string; epoch: string } | undefined,
): boolean {
  if (row?.p !== m.to) return false;
  return m.condition.epoch === undefined || row.epoch === m.condition.epoch;
}

/**
 * What a reader learns about writers of an event table at one moment: the newest committed ID,
 * read first, then the transactions that were open at a later instant and so may still commit
 * an ID at or below it. Once every one of them has ended, every ID up to `newest` is final.
 * `writers: null` means the database cannot tell (then time decides, see HorizonTracker).
 */
export interface WriterProbe {
  newest: EventId;
  writers: string[] | null;
}

/**
 * What differs between databases besides the statements' text (queries/): how events are
 * inserted and their IDs learned, how writers are probed, migration locks, error kinds,
 * notifications. Chosen by the database kind (createDialect), never by testing an argument.
 */
export interface SqlDialect {
  readonly name: Dialect;
  /** The SQL text of the store's routines. */
  readonly queries: Queries;
  /** Reads server settings the routines depend on, once, when the store opens. */
  init?(db: SqlClient): Promise<void>;
  /**
   * Inserts events atomically, on their own (one statement where the database allows, its own
   * transaction), waking listeners where the dialect has them, with `origin` in the notice; IDs
   * in order.
   */
  insertEvents(
    db: SqlClient,
    sql: EventSql,
    events: readonly NewEvent[],
    origin: string,
  ): Promise<EventId[]>;
  /** Inserts events as part of the caller's transaction `tx` (which commits them); IDs in order. */
  insertEventsInTx(tx: SqlRunner, sql: EventSql, events: readonly NewEvent[]): Promise<EventId[]>;
  /**
   * Whether one writer at a time is guaranteed by the database itself (SQLite): then IDs become
   * visible in order and the newest committed ID is always a safe horizon.
   */
  readonly singleWriter: boolean;
  /**
   * Runs ConsumerSql.advanceMany for `moves` (no ident twice) as one commit: resolves with the
   * idents at their `to` afterwards, at least every one it moved (those not in it: the
   * condition failed, or the pointer was already there). Idempotent: a run again after a lost
   * connection moves nothing twice.
   */
  advancePointers(
    db: SqlClient,
    sql: ConsumerSql,
    moves: readonly PointerAdvance[],
  ): Promise<Set<string>>;
  /** See WriterProbe. `since` is the horizon already known safe. */
  probeWriters(db: SqlClient, sql: EventSql, since: EventId): Promise<WriterProbe>;
  /** Serialises a migration (or anything else) across processes, inside `tx`. */
  lockForMigration(tx: SqlRunner): Promise<void>;
  errorKind(err: unknown): ErrorKind;
  /**
   * Cross-process wake-ups, where the database has them (PostgreSQL LISTEN/NOTIFY; insertEvents
   * notifies): calls `onNotify` with the notice's origin (what insertEvents was given) for each
   * notice about `table` until closed, on a session connection of its own to `at` (default: the
   * client's database). A hint only: readers never rely on it for correctness.
   */
  listen?(
    db: SqlClient,
    table: string,
    onNotify: (origin: string) => void,
    at?: SessionAddress,
  ): Promise<Listener>;
  /**
   * The key of the session lock named `name` (queries.coordination.tryLock's parameter), where
   * the database has session locks. `name` carries everything that tells locks apart (the
   * database, the table, the consumer).
   */
  lockKey?(name: string): SqlValue;
  /** Bytes of parameters one statement may carry, to size multi-row INSERTs. */
  readonly maxStatementBytes: number;
  /**
   * The column names of `table` (unquoted, as given to the statements), as the connection's
   * statements would resolve it; none when there is no such table.
   */
  tableColumns(db: SqlRunner, table: string): Promise<string[]>;
}

/** Sorts decimal-string IDs ascending. */
export const sortIds = (ids: EventId[]): EventId[] =>
  ids.sort((a, b) => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0));

/** Runs ConsumerSql.advanceMany where it returns the `ident` of each row moved (RETURNING). */
export async function advanceReturning(
  db: SqlRunner,
  sql: ConsumerSql,
  moves: readonly PointerAdvance[],
): Promise<Set<string>> {
  const rows = await db.query<{ ident: string }>(
    sql.advanceMany(moves.length),
    advanceParams(moves),
  );
  return new Set(rows.map((r) => r.ident));
}

/** Runs an event INSERT that returns an `id` per row (`extra` params after the events'); the IDs in order. */
export async function insertReturning(
  db: SqlRunner,
  text: string,
  events: readonly NewEvent[],
  ...extra: string[]
): Promise<EventId[]> {
  const params = eventParams(events);
  params.push(...extra);
  const rows = await db.query<{ id: string }>(text, params);
  return sortIds(rows.map((r) => r.id));
}

/** The parameters of a multi-row event INSERT: type and data of each event, in order. */
export function eventParams(events: readonly NewEvent[]): string[] {
  const params: string[] = [];
  for (const e of events) params.push(e.type, e.data);
  return params;
}

/** The first bytes of the SHA-256 of a lock name: keys that differ whenever names do. */
export const lockDigest = (name: string): Buffer =>
  crypto.createHash('sha256').update(name, 'utf8').digest();
