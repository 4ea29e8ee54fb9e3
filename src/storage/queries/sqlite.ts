import { TABLES } from '../../common/constants';
import { repeat, where, type Queries } from './index';

/**
 * SQLite: IDs are INTEGER; a TIMESTAMP holds 'YYYY-MM-DD HH:MM:SS' text (UTC, as datetime()
 * writes it), which compares in time order, so time parameters need no cast. A statement that
 * writes holds the database's only write lock until it ends.
 */
export const sqliteQueries: Queries = {
  events(name) {
    const t = `"${name}"`;
    // Alone or in a transaction, the same: SQLite has no notifications to send.
    const insert = (rows: number): string =>
      `INSERT INTO ${t} (type, data, ts)
       VALUES ${repeat(rows, "(?, ?, datetime('now'))")}
       RETURNING CAST(id AS TEXT) AS id`;
    return {
      name,

      insert,

      insertInTx: insert,

      read: (types, limit) =>
        `SELECT CAST(e.id AS TEXT) AS id, e.type, e.data AS data,
                strftime('%Y-%m-%dT%H:%M:%SZ', e.ts) AS ts
           FROM ${t} e
          WHERE e.id > CAST(? AS INTEGER) AND e.id <= CAST(? AS INTEGER)${types > 0 ? ` AND e.type IN (${repeat(types, '?')})` : ''}
          ORDER BY e.id LIMIT ${limit}`,

      newest: `SELECT CAST(MAX(id) AS TEXT) AS newest FROM ${t}`,

      ages: (limit) =>
        `SELECT CAST(e.id AS TEXT) AS id, 1 AS old
           FROM ${t} e
          WHERE e.id > CAST(? AS INTEGER) AND e.id <= CAST(? AS INTEGER)
          ORDER BY e.id LIMIT ${limit}`,

      agesOlderThan: (limit) =>
        `SELECT CAST(e.id AS TEXT) AS id,
                CASE WHEN e.ts < datetime('now', printf('-%.3f seconds', ? / 1000.0)) THEN 1 ELSE 0 END AS old
           FROM ${t} e
          WHERE e.id > CAST(? AS INTEGER) AND e.id <= CAST(? AS INTEGER)
          ORDER BY e.id LIMIT ${limit}`,

      // SQLite has no DELETE ... LIMIT by default. The statement's write lock excludes every
      // other writer, so the pointers it reads are the committed ones.
      deleteUpTo: (consumers, ignored, limit) =>
        `DELETE FROM ${t} WHERE id IN (
           SELECT id FROM ${t}
            WHERE id <= CAST(? AS INTEGER)
              AND id <= (SELECT MIN(c.last_evt_id) FROM "${consumers}" c${
                ignored > 0
                  ? ` WHERE NOT (c.last_time < datetime('now', printf('-%.3f seconds', ? / 1000.0))
                        AND (${repeat(ignored, '(c.ident = ? AND c.last_evt_id = CAST(? AS INTEGER))', ' OR ')}))`
                  : ''
              })
            ORDER BY id LIMIT ${limit})`,

      behind: (limit) =>
        `SELECT COUNT(*) AS n, strftime('%Y-%m-%dT%H:%M:%SZ', MIN(lagging.ts)) AS ts
           FROM (SELECT e.id, e.ts FROM ${t} e
                  WHERE e.id > CAST(? AS INTEGER) AND e.id <= CAST(? AS INTEGER)
                  ORDER BY e.id LIMIT ${limit}) lagging`,

      newestBefore: `SELECT CAST(MAX(e.id) AS TEXT) AS id FROM ${t} e
                      WHERE e.ts < ? AND e.id <= CAST(? AS INTEGER)`,

      range: `SELECT CAST(MAX(e.id) AS TEXT) AS newest, CAST(MIN(e.id) AS TEXT) AS oldest,
                     COUNT(*) AS n
                FROM ${t} e`,

      count: `SELECT COUNT(*) AS n FROM ${t}`,

      countRecent: `SELECT COUNT(*) AS n FROM ${t} e
                     WHERE e.id > CAST(? AS INTEGER)
                       AND e.ts >= datetime('now', printf('-%.3f seconds', ? / 1000.0))`,

      list: (s) =>
        `SELECT CAST(e.id AS TEXT) AS id, e.type, e.data AS data,
                strftime('%Y-%m-%dT%H:%M:%SZ', e.ts) AS ts
           FROM ${t} e${where([
             s.fromId && 'e.id >= CAST(? AS INTEGER)',
             s.toId && 'e.id <= CAST(? AS INTEGER)',
             s.types > 0 && `e.type IN (${repeat(s.types, '?')})`,
             s.since && 'e.ts >= ?',
             s.until && 'e.ts <= ?',
           ])}
          ORDER BY e.id${s.descending ? ' DESC' : ''} LIMIT ${s.limit}`,

      copy: (rows) =>
        `INSERT INTO ${t} (id, type, data, ts) VALUES ${repeat(rows, '(CAST(? AS INTEGER), ?, ?, ?)')}
         ON CONFLICT (id) DO NOTHING`,
    };
  },

  consumers(name) {
    const t = `"${name}"`;
    const moves = `"${TABLES.moves}"`;
    return {
      register: `INSERT INTO ${t} (last_evt_id, reg_time, last_time, ident)
                 VALUES (0, datetime('now'), datetime('now'), ?)`,

      pointer: `SELECT CAST(last_evt_id AS TEXT) AS p FROM ${t} WHERE ident = ?`,

      position: `SELECT CAST(c.last_evt_id AS TEXT) AS p,
                        (SELECT CAST(MAX(m.id) AS TEXT) FROM ${moves} m
                          WHERE m.ident = c.ident AND m.applied = 0) AS move
                   FROM ${t} c WHERE c.ident = ?`,

      advance: `UPDATE ${t} SET last_evt_id = CAST(? AS INTEGER), last_time = datetime('now')
                 WHERE ident = ? AND last_evt_id < CAST(? AS INTEGER)`,

      advanceFrom: `UPDATE ${t} SET last_evt_id = CAST(? AS INTEGER), last_time = datetime('now')
                     WHERE ident = ? AND last_evt_id < CAST(? AS INTEGER)
                       AND last_evt_id = CAST(? AS INTEGER)`,

      all: `SELECT ident, CAST(last_evt_id AS TEXT) AS pointer,
                   strftime('%Y-%m-%dT%H:%M:%SZ', last_time) AS last_time, 0 AS idle
              FROM ${t}`,

      allIdle: `SELECT ident, CAST(last_evt_id AS TEXT) AS pointer,
                       strftime('%Y-%m-%dT%H:%M:%SZ', last_time) AS last_time,
                       CASE WHEN last_time < datetime('now', printf('-%.3f seconds', ? / 1000.0)) THEN 1 ELSE 0 END AS idle
                  FROM ${t}`,

      setPointer: `UPDATE ${t} SET last_evt_id = CAST(? AS INTEGER), last_time = datetime('now')
                    WHERE ident = ?`,

      remove: `DELETE FROM ${t} WHERE ident = ?`,

      recordMove: `INSERT INTO ${moves}
                     (ident, action, from_evt_id, to_evt_id, by_user, reason, move_time, applied)
                   VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), ?, ?, datetime('now'), ?)`,

      movesApplied: `UPDATE ${moves} SET applied = 1
                      WHERE ident = ? AND applied = 0 AND id <= CAST(? AS INTEGER)`,

      allMovesApplied: `UPDATE ${moves} SET applied = 1 WHERE ident = ? AND applied = 0`,

      listMoves: (ofOne, limit) =>
        `SELECT m.ident, m.action, CAST(m.from_evt_id AS TEXT) AS from_id,
                CAST(m.to_evt_id AS TEXT) AS to_id, m.by_user, m.reason,
                strftime('%Y-%m-%dT%H:%M:%SZ', m.move_time) AS at, m.applied
           FROM ${moves} m${ofOne ? ' WHERE m.ident = ?' : ''}
          ORDER BY m.id DESC LIMIT ${limit}`,

      // The transaction's BEGIN IMMEDIATE already excludes every other writer.
      ownerForUpdate: `SELECT owner_node AS prev FROM ${t} WHERE ident = ?`,

      claim: `UPDATE ${t} SET owner_epoch = owner_epoch + 1, owner_node = ? WHERE ident = ?`,

      owned: `SELECT CAST(c.last_evt_id AS TEXT) AS p, CAST(c.owner_epoch AS TEXT) AS epoch,
                     (SELECT CAST(MAX(m.id) AS TEXT) FROM ${moves} m
                       WHERE m.ident = c.ident AND m.applied = 0) AS move
                FROM ${t} c WHERE c.ident = ?`,

      release: `UPDATE ${t} SET owner_node = NULL
                 WHERE ident = ? AND owner_epoch = CAST(? AS INTEGER)`,

      advanceOwned: `UPDATE ${t} SET last_evt_id = CAST(? AS INTEGER), last_time = datetime('now')
                      WHERE ident = ? AND last_evt_id < CAST(? AS INTEGER)
                        AND last_evt_id = CAST(? AS INTEGER) AND owner_epoch = CAST(? AS INTEGER)`,

      owners: `SELECT ident, owner_node AS node, CAST(owner_epoch AS TEXT) AS epoch
                 FROM ${t} WHERE owner_node IS NOT NULL`,
    };
  },
};
