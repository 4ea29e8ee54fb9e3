import crypto from 'crypto';
import type { EventId } from '../../common/ids';
import type { EventSql, Queries } from '../queries';
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
   * transaction), waking listeners where the dialect has them; IDs in order.
   */
  insertEvents(db: SqlClient, sql: EventSql, events: readonly NewEvent[]): Promise<EventId[]>;
  /** Inserts events as part of the caller's transaction `tx` (which commits them); IDs in order. */
  insertEventsInTx(tx: SqlRunner, sql: EventSql, events: readonly NewEvent[]): Promise<EventId[]>;
  /**
   * Whether one writer at a time is guaranteed by the database itself (SQLite): then IDs become
   * visible in order and the newest committed ID is always a safe horizon.
   */
  readonly singleWriter: boolean;
  /** See WriterProbe. `since` is the horizon already known safe. */
  probeWriters(db: SqlClient, sql: EventSql, since: EventId): Promise<WriterProbe>;
  /** Serialises a migration (or anything else) across processes, inside `tx`. */
  lockForMigration(tx: SqlRunner): Promise<void>;
  errorKind(err: unknown): ErrorKind;
  /**
   * Cross-process wake-ups, where the database has them (PostgreSQL LISTEN/NOTIFY; insertEvents
   * notifies): calls `onNotify` for each notice about `table` until closed, on a session
   * connection of its own to `at` (default: the client's database). A hint only: readers never
   * rely on it for correctness.
   */
  listen?(
    db: SqlClient,
    table: string,
    onNotify: () => void,
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

/** Runs an event INSERT that returns an `id` per row; the IDs in order. */
export async function insertReturning(
  db: SqlRunner,
  text: string,
  events: readonly NewEvent[],
): Promise<EventId[]> {
  const rows = await db.query<{ id: string }>(text, eventParams(events));
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
