import { TABLES } from '../common/constants';
import { ErrorCode, EvtError } from '../common/errors';
import type { Event } from '../common/event';
import type { Logger } from '../common/log';
import { sqlTimestamp } from '../common/time';
import { describeConnection, type ConnectionConfig } from './config';
import { createDialect, type SqlDialect } from './dialects';
import { migrate } from './migrate';
import { openClient } from './open';
import { withRetry } from './retry';
import type { SqlClient, SqlRunner, SqlValue } from './sql';
import { assertIdentifier } from './store';

/** The columns of a history table that the archive writes. */
export const HISTORY_COLUMNS: readonly string[] = ['id', 'type', 'data', 'ts'];

/** Rows per INSERT at most: far below every dialect's parameter limit (PostgreSQL: 65535). */
export const HISTORY_ROWS_PER_INSERT = 500;

/** Bytes one row adds to a statement besides its data (ID, type, timestamp, punctuation). */
const ROW_OVERHEAD_BYTES = 96;

/** The warehouse's connection as the archiver's option takes it: settings, or an open client. */
export type WarehouseSource = ConnectionConfig | SqlClient;

/** Where HistoryWriter.open finds the warehouse: settings, or a client someone else owns. */
export type HistorySource =
  { kind: 'connect'; config: ConnectionConfig } | { kind: 'client'; client: SqlClient };

/** One multi-row INSERT: SQL and its parameters. */
export interface HistoryStatement {
  sql: string;
  params: SqlValue[];
  /** The IDs it writes, in order. */
  ids: string[];
}

/**
 * The INSERTs that copy `events` into `table`, skipping IDs already there: at most `maxRows`
 * rows per statement, and no more than `maxBytes` of parameters unless a single row is bigger
 * (it then goes alone).
 */
export function historyStatements(
  dialect: SqlDialect,
  table: string,
  events: readonly Event[],
  maxRows = HISTORY_ROWS_PER_INSERT,
  maxBytes = dialect.maxStatementBytes / 2,
): HistoryStatement[] {
  const out: HistoryStatement[] = [];
  const sql = dialect.queries.events(table);
  let params: SqlValue[] = [];
  let ids: string[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (ids.length === 0) return;
    out.push({ sql: sql.copy(ids.length), params, ids });
    params = [];
    ids = [];
    bytes = 0;
  };
  for (const e of events) {
    // JSON.stringify is exact here: the service refuses data that JSON would change.
    const data = JSON.stringify(e.data ?? null);
    const size = Buffer.byteLength(data) + e.type.length + ROW_OVERHEAD_BYTES;
    if (ids.length >= maxRows || (ids.length > 0 && bytes + size > maxBytes)) flush();
    params.push(e.id, e.type, data, sqlTimestamp(e.ts));
    ids.push(e.id);
    bytes += size;
  }
  flush();
  return out;
}

/**
 * Fails with InvalidConfig, naming the table and `where` (the warehouse), unless `table` exists
 * there with the columns the archive writes. The migrations create only evt_history: any other
 * table is the user's to create, and a misspelt name would fail every batch, for ever.
 */
export async function checkHistoryTable(
  db: SqlRunner,
  dialect: SqlDialect,
  table: string,
  where: string,
): Promise<void> {
  const columns = new Set((await dialect.tableColumns(db, table)).map((c) => c.toLowerCase()));
  const needed = `${HISTORY_COLUMNS.join(', ')}, like ${TABLES.history}`;
  if (columns.size === 0) {
    throw new EvtError(
      ErrorCode.InvalidConfig,
      `The history table "${table}" does not exist in ${where}: create it (columns ${needed}), or archive to another table`,
    );
  }
  const missing = HISTORY_COLUMNS.filter((c) => !columns.has(c));
  if (missing.length > 0) {
    throw new EvtError(
      ErrorCode.InvalidConfig,
      `The history table "${table}" in ${where} has no column ${missing.join(', ')}: it needs ${needed}`,
    );
  }
}

export interface HistoryWriterOptions {
  /** The history table (default evt_history). */
  table?: string;
  /** Apply the warehouse ('dwh') migrations when opening (default true). */
  migrate?: boolean;
  log: Logger;
}

/**
 * Writes events into the warehouse's history table, idempotently by event ID: each batch in one
 * transaction, all or nothing, so a batch that failed midway can simply be written again.
 */
export class HistoryWriter {
  private constructor(
    readonly db: SqlClient,
    readonly dialect: SqlDialect,
    private readonly owned: boolean,
    readonly table: string,
    private readonly log: Logger,
  ) {}

  /**
   * Connects (unless given an open client, which stays the caller's to close), brings the
   * warehouse schema up to date and checks the table: an EvtError InvalidConfig when it does
   * not exist or lacks a column (see checkHistoryTable); other failures are the database's.
   */
  static async open(source: HistorySource, options: HistoryWriterOptions): Promise<HistoryWriter> {
    const { log } = options;
    const table = assertIdentifier(options.table ?? TABLES.history);
    const owned = source.kind === 'connect';
    const db = source.kind === 'client' ? source.client : await openClient(source.config, log);
    const dialect = createDialect(db.dialect);
    try {
      if (options.migrate !== false) await migrate(db, dialect, { kind: 'dwh', log });
      const where =
        source.kind === 'client'
          ? `the ${db.dialect} warehouse`
          : describeConnection(source.config);
      await checkHistoryTable(db, dialect, table, where);
    } catch (err) {
      if (owned) await db.close().catch(() => undefined);
      throw err;
    }
    return new HistoryWriter(db, dialect, owned, table, log);
  }

  /**
   * Stores the events (those already there are skipped) in one transaction; resolves once it
   * committed, with the events of each INSERT statement, in order. Deadlocks and unavailable
   * connections are retried a few times at once (the write is idempotent, so even one whose
   * outcome is unknown); other failures reject, and nothing of the batch is stored.
   */
  async write(events: readonly Event[]): Promise<Event[][]> {
    if (events.length === 0) return [];
    const statements = historyStatements(this.dialect, this.table, events);
    let at = 0;
    const inserts = statements.map((s) => events.slice(at, (at += s.ids.length)));
    await withRetry(
      () => this.db.transaction((tx) => this.insert(tx, statements)),
      (e) => this.dialect.errorKind(e),
      this.log,
      'archive',
      true,
      { attempts: 3, firstDelayMs: 50, maxDelayMs: 500 },
    );
    return inserts;
  }

  private async insert(tx: SqlRunner, statements: readonly HistoryStatement[]): Promise<void> {
    for (const s of statements) await tx.execute(s.sql, s.params);
  }

  /** Closes the connection if this writer opened it. */
  async close(): Promise<void> {
    if (this.owned) await this.db.close();
  }
}
