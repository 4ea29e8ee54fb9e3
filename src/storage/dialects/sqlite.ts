import type { EventId } from '../../common/ids';
import { sqliteErrorKind } from '../drivers/errors';
import type { SqlClient, SqlRunner } from '../sql';
import { eventValues, sortIds, wholeMs, type NewEvent, type SqlDialect } from './dialect';

/**
 * SQLite lets one transaction write at a time and allocates IDs inside it, so IDs become visible
 * in increasing order: the newest committed ID is always a safe horizon, at no cost.
 */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  quote: (id) => `"${id}"`,
  idParam: 'CAST(? AS INTEGER)',
  idText: (col) => `CAST(${col} AS TEXT)`,
  tsText: (col) => `strftime('%Y-%m-%dT%H:%M:%SZ', ${col})`,
  dataText: (col) => col,
  nowUtc: "strftime('%Y-%m-%d %H:%M:%S', 'now')",
  utcBeforeMs: (ms) => `strftime('%Y-%m-%d %H:%M:%S', 'now', '-${wholeMs(ms) / 1000} seconds')`,
  // TIMESTAMPs are stored as 'YYYY-MM-DD HH:MM:SS' text, which compares in time order.
  tsParam: '?',
  singleWriter: true,
  maxStatementBytes: 16 * 1024 * 1024,

  async insertEvents(
    db: SqlClient | SqlRunner,
    table: string,
    events: readonly NewEvent[],
  ): Promise<EventId[]> {
    const { sql, params } = eventValues(events, this.nowUtc);
    const rows = await db.query<{ id: string }>(
      `INSERT INTO ${table} (type, data, ts) VALUES ${sql} RETURNING CAST(id AS TEXT) AS id`,
      params,
    );
    return sortIds(rows.map((r) => r.id));
  },

  async probeWriters(db, table, _since) {
    const [row] = await db.query<{ newest: string | null }>(
      `SELECT CAST(MAX(id) AS TEXT) AS newest FROM ${table}`,
    );
    return { newest: row?.newest ?? '0', writers: [] };
  },

  async lockForMigration() {
    // BEGIN IMMEDIATE of the migration's transaction already excludes every other writer.
  },

  insertIgnoringDuplicatesSql: (table, columns, rows) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${rows} ON CONFLICT (id) DO NOTHING`,

  deleteFirstSql: (table, where, limit) =>
    `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${where} ORDER BY id LIMIT ${Math.floor(limit)})`,

  // A write transaction excludes every other writer: what it reads is what is committed.
  lockedMinSql: (column, table, where) =>
    `(SELECT MIN(${column}) FROM ${table}${where ? ` WHERE ${where}` : ''})`,

  errorKind: sqliteErrorKind,

  async tableColumns(db, table) {
    const rows = await db.query<{ name: string }>('SELECT name FROM pragma_table_info(?)', [table]);
    return rows.map((r) => r.name);
  },
};
