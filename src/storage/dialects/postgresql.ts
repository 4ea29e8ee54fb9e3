import { pgErrorKind } from '../drivers/errors';
import { postgresqlQueries } from '../queries/postgresql';
import {
  advanceReturning,
  insertReturning,
  lockDigest,
  notifyChannel,
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
  queries: postgresqlQueries,
  singleWriter: false,
  maxStatementBytes: 64 * 1024 * 1024,

  // Rows of one VALUES list draw their IDs in list order, so the sorted IDs match the events.
  insertEvents: (db, sql, events, origin) =>
    insertReturning(db, sql.insert(events.length), events, origin),

  insertEventsInTx: (tx, sql, events) => insertReturning(tx, sql.insertInTx(events.length), events),

  advancePointers: (db, sql, moves) => advanceReturning(db, sql, moves),

  // One statement, one round trip: its snapshot, taken when it starts, gives the newest ID, and
  // pg_locks, read as it runs (not through the snapshot), gives the holders at a later instant.
  async probeWriters(db, sql, _since) {
    const [row] = await db.query<{ newest: string | null; writers: string[] | null }>(
      `SELECT (SELECT CAST(MAX(e.id) AS TEXT) FROM "${sql.name}" e) AS newest,
              ARRAY(SELECT l.virtualtransaction FROM pg_locks l
                     WHERE l.locktype = 'relation'
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND l.relation = CAST(? AS regclass)
                       AND l.mode = 'RowExclusiveLock' AND l.granted
                       AND l.pid IS DISTINCT FROM pg_backend_pid()) AS writers`,
      [`"${sql.name}"`],
    );
    return { newest: row?.newest ?? '0', writers: row?.writers ?? [] };
  },

  async lockForMigration(tx) {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
  },

  errorKind: pgErrorKind,

  // An advisory lock takes a signed 64-bit key: the first 8 bytes of the name's digest.
  lockKey: (name) => lockDigest(name).readBigInt64BE(0).toString(),

  async tableColumns(db, table) {
    // to_regclass finds the table as a statement naming it would (search_path), or gives NULL.
    const rows = await db.query<{ name: string }>(
      `SELECT attname AS name FROM pg_catalog.pg_attribute
        WHERE attrelid = to_regclass(CAST(? AS TEXT)) AND attnum > 0 AND NOT attisdropped`,
      [`"${table}"`],
    );
    return rows.map((r) => r.name);
  },

  async listen(db, table, onNotify, at) {
    if (!db.openSession) throw new Error('No session connections on this client');
    const session = await db.openSession(at);
    session.onNotification((_channel, payload) => onNotify(payload));
    try {
      await session.execute(`LISTEN "${notifyChannel(table)}"`);
    } catch (err) {
      session.destroy();
      throw err;
    }
    return { closed: session.closed, close: () => session.close() };
  },
};
