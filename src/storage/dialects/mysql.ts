import { cmpIds, type EventId } from '../../common/ids';
import { sleep } from '../../common/async';
import { mysqlErrorKind } from '../drivers/errors';
import type { EventSql } from '../queries';
import { mysqlQueries } from '../queries/mysql';
import type { SqlRunner } from '../sql';
import {
  advanceHeld,
  advanceParams,
  eventParams,
  lockDigest,
  type NewEvent,
  type SqlDialect,
} from './dialect';

/** InnoDB refreshes its INFORMATION_SCHEMA transaction cache at most this often (plus margin). */
const TRX_CACHE_REFRESH_MS = 120;

/**
 * A multi-row INSERT whose rows got consecutive IDs (innodb_autoinc_lock_mode 0 or 1): the first
 * comes back as insertId, and the row count proves that all went in.
 */
async function insertConsecutive(
  db: SqlRunner,
  text: string,
  events: readonly NewEvent[],
): Promise<EventId[]> {
  const res = await db.execute(text, eventParams(events));
  if (!res.insertId || res.affected !== events.length) {
    throw new Error(
      `Unexpected INSERT result: ${res.affected} rows, first ID ${res.insertId ?? 'none'}`,
    );
  }
  const first = BigInt(res.insertId);
  return events.map((_e, i) => (first + BigInt(i)).toString());
}

/** One INSERT per event, in the caller's transaction `tx`: IDs may interleave with others'. */
async function insertPerRow(
  tx: SqlRunner,
  sql: EventSql,
  events: readonly NewEvent[],
): Promise<EventId[]> {
  const ids: EventId[] = [];
  for (const e of events) {
    const res = await tx.execute(sql.insertInTx(1), [e.type, e.data]);
    ids.push(res.insertId ?? '');
  }
  return ids;
}

/**
 * InnoDB draws AUTO_INCREMENT values at INSERT time, so a later commit can show a lower ID.
 * First, cheaply: when every ID between the known horizon and the newest committed one is
 * present, nothing can still appear in between. Otherwise some transaction may still hold an ID
 * in a gap (or rolled back): the transaction that drew it runs inside InnoDB until it ends, and
 * INNODB_TRX lists every such transaction. So read the newest committed ID, then (once InnoDB's
 * 100 ms cache must be newer than that read) the running transactions; once all of those have
 * ended, no ID up to that newest one can still appear. Reading INNODB_TRX needs the PROCESS
 * privilege; without it a gap waits out a settle time instead.
 */
export function mysqlDialect(): SqlDialect {
  /** innodb_autoinc_lock_mode 2 (interleaved) may give one INSERT non-consecutive IDs. */
  let interleavedAutoinc = false;
  /** Set when INNODB_TRX cannot be read (no PROCESS privilege): the horizon then waits by time. */
  let innodbTrxDenied = false;

  return {
    name: 'mysql',

    async init(db) {
      const [row] = await db.query<{ m: string | number }>(
        'SELECT @@innodb_autoinc_lock_mode AS m',
      );
      interleavedAutoinc = Number(row?.m) === 2;
    },

    queries: mysqlQueries,
    singleWriter: false,
    // max_allowed_packet defaults to 16 MiB on MariaDB 10.11 and 64 MiB on MySQL 8.
    maxStatementBytes: 8 * 1024 * 1024,

    // Alone, the per-row INSERTs still go in one transaction: all or nothing.
    insertEvents: (db, sql, events) =>
      interleavedAutoinc
        ? db.transaction((tx) => insertPerRow(tx, sql, events))
        : insertConsecutive(db, sql.insert(events.length), events),

    insertEventsInTx: (tx, sql, events) =>
      interleavedAutoinc
        ? insertPerRow(tx, sql, events)
        : insertConsecutive(tx, sql.insertInTx(events.length), events),

    // The UPDATE cannot say which rows it moved: read them back in its transaction (its row
    // locks held, so each moved row still shows its `to`).
    advancePointers: (db, sql, moves) =>
      db.transaction(async (tx) => {
        await tx.execute(sql.advanceMany(moves.length), advanceParams(moves));
        const rows = await tx.query<{ ident: string; p: string; epoch: string }>(
          sql.pointers(moves.length),
          moves.map((m) => m.ident),
        );
        const at = new Map(rows.map((r) => [r.ident, r]));
        return new Set(moves.filter((m) => advanceHeld(m, at.get(m.ident))).map((m) => m.ident));
      }),

    async probeWriters(db, sql, since) {
      const readAt = Date.now();
      const [row] = await db.query<{ newest: string | null }>(sql.newest);
      const newest = row?.newest ?? '0';
      if (cmpIds(newest, since) <= 0) return { newest, writers: [] };
      // Every ID from `since` to `newest` committed: none can still appear in that range.
      const [count] = await db.query<{ n: string | number }>(
        `SELECT COUNT(*) AS n FROM \`${sql.name}\` WHERE id > CAST(? AS UNSIGNED) AND id <= CAST(? AS UNSIGNED)`,
        [since, newest],
      );
      if (BigInt(count?.n ?? 0) === BigInt(newest) - BigInt(since)) return { newest, writers: [] };
      if (innodbTrxDenied) return { newest, writers: null };
      // InnoDB serves INNODB_TRX from a cache it refreshes at most every 100 ms: wait until any
      // refresh that answers us must have happened after `newest` was read.
      const wait = readAt + TRX_CACHE_REFRESH_MS - Date.now();
      if (wait > 0) await sleep(wait);
      try {
        const trx = await db.query<{ w: string }>(
          `SELECT CAST(trx_id AS CHAR) AS w FROM information_schema.INNODB_TRX
            WHERE trx_mysql_thread_id <> CONNECTION_ID()`,
        );
        return { newest, writers: trx.map((t) => t.w) };
      } catch (err) {
        const errno = (err as { errno?: number }).errno;
        if (errno === 1227 || errno === 1142 || errno === 1044) {
          innodbTrxDenied = true;
          return { newest, writers: null };
        }
        throw err;
      }
    },

    async lockForMigration(tx) {
      const [row] = await tx.query<{ ok: number | null }>(
        "SELECT GET_LOCK('ftn18es_migrate', 60) AS ok",
      );
      if (Number(row?.ok) !== 1)
        throw new Error('Timed out waiting for another process to finish migrating');
    },

    errorKind: mysqlErrorKind,

    // Lock names are at most 64 characters, and shared by every database of the server.
    lockKey: (name) => `evtstream:${lockDigest(name).toString('hex').slice(0, 48)}`,

    async tableColumns(db, table) {
      const rows = await db.query<{ name: string }>(
        `SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
        [table],
      );
      return rows.map((r) => r.name);
    },
  };
}
