import { sqliteErrorKind } from '../drivers/errors';
import { sqliteQueries } from '../queries/sqlite';
import { advanceReturning, insertReturning, type SqlDialect } from './dialect';

/**
 * SQLite lets one transaction write at a time and allocates IDs inside it, so IDs become visible
 * in increasing order: the newest committed ID is always a safe horizon, at no cost.
 */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  queries: sqliteQueries,
  singleWriter: true,
  maxStatementBytes: 16 * 1024 * 1024,

  insertEvents: (db, sql, events) => insertReturning(db, sql.insert(events.length), events),

  insertEventsInTx: (tx, sql, events) => insertReturning(tx, sql.insertInTx(events.length), events),

  advancePointers: (db, sql, moves) => advanceReturning(db, sql, moves),

  async probeWriters(db, sql, _since) {
    const [row] = await db.query<{ newest: string | null }>(sql.newest);
    return { newest: row?.newest ?? '0', writers: [] };
  },

  async lockForMigration() {
    // BEGIN IMMEDIATE of the migration's transaction already excludes every other writer.
  },

  errorKind: sqliteErrorKind,

  async tableColumns(db, table) {
    const rows = await db.query<{ name: string }>('SELECT name FROM pragma_table_info(?)', [table]);
    return rows.map((r) => r.name);
  },
};
