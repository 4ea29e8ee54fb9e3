import type { EventId } from '../../common/ids';
import { pgErrorKind } from '../drivers/errors';
import type { PostgresClient } from '../drivers/postgres';
import type { SqlClient, SqlRunner } from '../sql';
import {
  eventValues,
  notifyChannel,
  sortIds,
  wholeMs,
  type NewEvent,
  type SqlDialect,
} from './dialect';

/** pg_advisory_xact_lock key for migrations: any fixed 64-bit number of our own. */
const MIGRATION_LOCK_KEY = '1811870001';

/**
 * PostgreSQL hands out sequence values at INSERT time, not at COMMIT, so a later commit can show
 * a lower ID. Every INSERT into the event table holds a RowExclusiveLock on it from before the
 * ID is drawn until its transaction ends, and pg_locks lists those holders (fast-path ones too).
 * So: read the newest committed ID, then the holders; once all of those holders are gone, no ID
 * up to that newest one can still appear. Transactions that do not touch the event table never
 * hold the horizon back, and no column or trigger is added to writers' transactions.
 */
export const postgresqlDialect: SqlDialect = {
  name: 'postgresql',
  quote: (id) => `"${id}"`,
  idParam: 'CAST(? AS BIGINT)',
  idText: (col) => `CAST(${col} AS TEXT)`,
  tsText: (col) => `to_char(${col}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
  dataText: (col) => `CAST(${col} AS TEXT)`,
  nowUtc: "(now() AT TIME ZONE 'UTC')",
  utcBeforeMs: (ms) => `((now() AT TIME ZONE 'UTC') - INTERVAL '${wholeMs(ms)} milliseconds')`,
  tsParam: 'CAST(? AS TIMESTAMP)',
  singleWriter: false,
  maxStatementBytes: 64 * 1024 * 1024,

  async insertEvents(
    db: SqlClient | SqlRunner,
    table: string,
    events: readonly NewEvent[],
  ): Promise<EventId[]> {
    const { sql, params } = eventValues(events, this.nowUtc);
    const insert = `INSERT INTO ${table} (type, data, ts) VALUES ${sql}`;
    // Rows of one VALUES list draw their IDs in list order, so the sorted IDs match the events.
    if (!('transaction' in db)) {
      // Part of the caller's transaction.
      const rows = await db.query<{ id: string }>(
        `${insert} RETURNING CAST(id AS TEXT) AS id`,
        params,
      );
      return sortIds(rows.map((r) => r.id));
    }
    // On its own, the statement is its own transaction, and it also wakes listeners in other
    // processes: one NOTIFY per group-commit batch (never per row), committed with it, in no
    // other writer's transaction (a NOTIFY takes a global lock at commit).
    const rows = await db.query<{ id: string }>(
      `WITH ins AS (${insert} RETURNING id), n AS (SELECT pg_notify(?, ''))` +
        ' SELECT CAST(ins.id AS TEXT) AS id FROM ins, n',
      [...params, notifyChannel(table)],
    );
    return sortIds(rows.map((r) => r.id));
  },

  async probeWriters(db, table, _since) {
    const [row] = await db.query<{ newest: string | null }>(
      `SELECT CAST(MAX(id) AS TEXT) AS newest FROM ${table}`,
    );
    const holders = await db.query<{ w: string }>(
      `SELECT virtualtransaction AS w FROM pg_locks
        WHERE locktype = 'relation'
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND relation = CAST(? AS regclass)
          AND mode = 'RowExclusiveLock' AND granted
          AND pid IS DISTINCT FROM pg_backend_pid()`,
      [table.replace(/"/g, '')],
    );
    return { newest: row?.newest ?? '0', writers: holders.map((h) => h.w) };
  },

  async lockForMigration(tx) {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
  },

  insertIgnoringDuplicatesSql: (table, columns, rows) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${rows} ON CONFLICT (id) DO NOTHING`,

  deleteFirstSql: (table, where, limit) =>
    `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${where} ORDER BY id LIMIT ${Math.floor(limit)})`,

  // Aggregates cannot lock rows, so the rows are locked below MIN: FOR SHARE waits for a
  // transaction changing one of them, then reads it as that one committed (READ COMMITTED
  // re-checks the newest version of a locked row).
  lockedMinSql: (column, table, where) =>
    `(SELECT MIN(m.v) FROM (SELECT ${column} AS v FROM ${table}${where ? ` WHERE ${where}` : ''} FOR SHARE) m)`,

  errorKind: pgErrorKind,

  async tableColumns(db, table) {
    // to_regclass finds the table as a statement naming it would (search_path), or gives NULL.
    const rows = await db.query<{ name: string }>(
      `SELECT attname AS name FROM pg_catalog.pg_attribute
        WHERE attrelid = to_regclass(CAST(? AS TEXT)) AND attnum > 0 AND NOT attisdropped`,
      [this.quote(table)],
    );
    return rows.map((r) => r.name);
  },

  async listen(db, table, onNotify) {
    const client = (db as PostgresClient).newClient();
    let resolveClosed!: (err: Error | undefined) => void;
    const closed = new Promise<Error | undefined>((r) => (resolveClosed = r));
    client.on('error', (err: Error) => resolveClosed(err));
    client.on('end', () => resolveClosed(undefined));
    client.on('notification', () => onNotify());
    try {
      await client.connect();
      await client.query(`LISTEN "${notifyChannel(table)}"`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return {
      closed,
      close: async () => {
        await client.end().catch(() => undefined);
      },
    };
  },
};
