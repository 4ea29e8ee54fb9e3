import type { EventId } from '../../common/ids';
import type { Dialect, ErrorKind, SqlClient, SqlRunner } from '../sql';

/** An open LISTEN: `closed` resolves when its connection ends (error or close()). */
export interface Listener {
  close(): Promise<void>;
  readonly closed: Promise<Error | undefined>;
}

/** The notification channel of an event table (PostgreSQL limits names to 63 bytes). */
export const notifyChannel = (table: string): string =>
  `evtstream_${table.replace(/"/g, '')}`.slice(0, 63);

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
 * Everything about SQL that differs between databases. The rest of the storage layer builds its
 * statements from these fragments and calls these routines, never testing the dialect itself.
 */
export interface SqlDialect {
  readonly name: Dialect;
  /** Reads server settings the routines depend on, once, when the store opens. */
  init?(db: SqlClient): Promise<void>;
  /** Quotes a (validated) table or column name. */
  quote(identifier: string): string;
  /** A `?` placeholder read as a 64-bit integer (IDs travel as decimal strings). */
  readonly idParam: string;
  /** A column read back as a decimal string. */
  idText(column: string): string;
  /** A TIMESTAMP column read as YYYY-MM-DDTHH:MM:SSZ (stored as UTC wall-clock time). */
  tsText(column: string): string;
  /** The data column read as JSON text. */
  dataText(column: string): string;
  /** The current UTC time, as stored in TIMESTAMP columns. */
  readonly nowUtc: string;
  /**
   * The UTC time `ms` milliseconds before now, by the database's clock, as stored in TIMESTAMP
   * columns (for `ts < ...` age tests: one clock for every process). `ms` must be a finite number
   * of at least 0; it is written into the SQL, never a parameter, so callers validate it.
   */
  utcBeforeMs(ms: number): string;
  /** A `?` placeholder for a UTC time given as 'YYYY-MM-DD HH:MM:SS', compared with TIMESTAMPs. */
  readonly tsParam: string;
  /**
   * Inserts events atomically; IDs in order. Given the client, in one statement (its own
   * transaction); given a transaction's runner, as part of that transaction.
   */
  insertEvents(
    db: SqlClient | SqlRunner,
    table: string,
    events: readonly NewEvent[],
  ): Promise<EventId[]>;
  /**
   * Whether one writer at a time is guaranteed by the database itself (SQLite): then IDs become
   * visible in order and the newest committed ID is always a safe horizon.
   */
  readonly singleWriter: boolean;
  /** See WriterProbe. `since` is the horizon already known safe. */
  probeWriters(db: SqlClient, table: string, since: EventId): Promise<WriterProbe>;
  /** Serialises a migration (or anything else) across processes, inside `tx`. */
  lockForMigration(tx: SqlRunner): Promise<void>;
  errorKind(err: unknown): ErrorKind;
  /**
   * Cross-process wake-ups, where the database has them (PostgreSQL LISTEN/NOTIFY; insertEvents
   * notifies): calls `onNotify` for each notice about `table` until closed. A hint only: readers
   * never rely on it for correctness.
   */
  listen?(db: SqlClient, table: string, onNotify: () => void): Promise<Listener>;
  /** Bytes of parameters one statement may carry, to size multi-row INSERTs. */
  readonly maxStatementBytes: number;
  /**
   * `INSERT INTO table (columns) VALUES rows` that skips rows whose primary key exists already
   * (and only those: other errors still fail), for idempotent copies such as the archive.
   */
  insertIgnoringDuplicatesSql(table: string, columns: readonly string[], rows: string): string;
  /**
   * `DELETE` of at most `limit` rows of `table` matching `where` (which may use `?`), lowest IDs
   * first, so a big clean-up runs as many small transactions.
   */
  deleteFirstSql(table: string, where: string, limit: number): string;
  /**
   * A scalar subquery for use inside a write statement: the lowest `column` among the rows of
   * `table` matching `where` (may use `?`; '' for all rows), NULL when none matches. It reads
   * those rows as a locking read: it waits for a transaction that is changing one of them and
   * sees what that one committed, and no such change commits until the statement's transaction
   * ends (SQLite: the statement's write transaction already excludes every other writer).
   */
  lockedMinSql(column: string, table: string, where: string): string;
  /**
   * The column names of `table` (unquoted, as given to the statements), as the connection's
   * statements would resolve it; none when there is no such table.
   */
  tableColumns(db: SqlRunner, table: string): Promise<string[]>;
}

/** Sorts decimal-string IDs ascending. */
export const sortIds = (ids: EventId[]): EventId[] =>
  ids.sort((a, b) => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0));

/** `(?, ?, now), (?, ?, now), ...` and the flat parameter list for a multi-row INSERT. */
export function eventValues(
  events: readonly NewEvent[],
  now: string,
): { sql: string; params: string[] } {
  const rows: string[] = [];
  const params: string[] = [];
  for (const e of events) {
    rows.push(`(?, ?, ${now})`);
    params.push(e.type, e.data);
  }
  return { sql: rows.join(', '), params };
}

/** Durations beyond this (about 317 years) are refused rather than written in exponent form. */
const MAX_SQL_MS = 1e13;

/** A duration for SQL text: whole milliseconds, refusing what is not a number from 0 to 1e13. */
export function wholeMs(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_SQL_MS)
    throw new RangeError(`Invalid duration: ${ms} ms`);
  return Math.floor(ms);
}
