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

      oldest: `SELECT CAST(MIN(id) AS TEXT) AS oldest FROM ${t}`,

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

      // Two index lookups (SQLite finds a MIN or a MAX by the index only when it is alone).
      range: `SELECT (SELECT CAST(MAX(id) AS TEXT) FROM ${t}) AS newest,
                     (SELECT CAST(MIN(id) AS TEXT) FROM ${t}) AS oldest`,

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

      // Starts with UPDATE, not WITH: the client sends only plain reads to its read connection.
      advanceMany: (rows) =>
        `UPDATE ${t} AS c
            SET last_evt_id = v.to_id, last_time = datetime('now')
           FROM (SELECT column1 AS ident, column2 AS to_id, column3 AS from_id, column4 AS epoch
                   FROM (VALUES ${repeat(rows, '(?, CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS INTEGER))')})) AS v
          WHERE c.ident = v.ident AND c.last_evt_id = v.from_id AND c.last_evt_id < v.to_id
            AND (v.epoch IS NULL OR c.owner_epoch = v.epoch)
         RETURNING ident`,

      pointers: (rows) =>
        `SELECT ident, CAST(last_evt_id AS TEXT) AS p, CAST(owner_epoch AS TEXT) AS epoch
           FROM ${t} WHERE ident IN (${repeat(rows, '?')})`,

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
                     (ident, action, from_evt_id, to_evt_id, by_user, reason, move_time, applied,
                      evt_id, max_attempts)
                   VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), ?, ?, datetime('now'), ?,
                           CAST(? AS INTEGER), ?)`,

      movesApplied: `UPDATE ${moves} SET applied = 1
                      WHERE ident = ? AND applied = 0 AND id <= CAST(? AS INTEGER)`,

      allMovesApplied: `UPDATE ${moves} SET applied = 1 WHERE ident = ? AND applied = 0`,

      listMoves: (ofOne, limit) =>
        `SELECT m.ident, m.action, CAST(m.from_evt_id AS TEXT) AS from_id,
                CAST(m.to_evt_id AS TEXT) AS to_id, m.by_user, m.reason,
                strftime('%Y-%m-%dT%H:%M:%SZ', m.move_time) AS at, m.applied,
                CAST(m.evt_id AS TEXT) AS evt_id, m.max_attempts
           FROM ${moves} m${ofOne ? ' WHERE m.ident = ?' : ''}
          ORDER BY m.id DESC LIMIT ${limit}`,

      // The transaction's BEGIN IMMEDIATE already excludes every other writer.
      ownerForUpdate: `SELECT owner_node AS prev, CAST(owner_epoch AS TEXT) AS epoch
                        FROM ${t} WHERE ident = ?`,

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

  parking() {
    const p = `"${TABLES.parked}"`;
    const r = `"${TABLES.parking}"`;
    const unresolved = "state IN ('parked', 'replay')";
    const oneEvent = (one: boolean): string => (one ? ' AND evt_id = CAST(? AS INTEGER)' : '');
    return {
      rule: `SELECT max_attempts, park_streak FROM ${r} WHERE ident = ?`,

      rules: `SELECT ident, max_attempts, park_streak FROM ${r}`,

      setRule: `INSERT INTO ${r} (ident, max_attempts, park_streak) VALUES (?, ?, 0)
                ON CONFLICT (ident) DO UPDATE SET max_attempts = excluded.max_attempts, park_streak = 0`,

      bumpStreak: `INSERT INTO ${r} (ident, max_attempts, park_streak) VALUES (?, NULL, 1)
                   ON CONFLICT (ident) DO UPDATE SET park_streak = ${r}.park_streak + 1`,

      clearStreak: `UPDATE ${r} SET park_streak = 0 WHERE ident = ? AND park_streak > 0`,

      removeRule: `DELETE FROM ${r} WHERE ident = ?`,

      park: `INSERT INTO ${p}
                 (ident, evt_id, evt_type, evt_data, evt_ts, state, attempts, first_failure,
                  last_failure, error_code, error_info, parked_time)
             VALUES (?, CAST(? AS INTEGER), ?, ?, ?, 'parked', ?, ?, ?, ?, ?, datetime('now'))
             ON CONFLICT (ident, evt_id) DO UPDATE SET state = 'parked',
                   attempts = ${p}.attempts + excluded.attempts,
                   last_failure = excluded.last_failure, error_code = excluded.error_code,
                   error_info = excluded.error_info, parked_time = excluded.parked_time,
                   resolved_time = NULL`,

      pick: (one, onlyParked) =>
        `SELECT CAST(evt_id AS TEXT) AS id FROM ${p}
          WHERE ident = ? AND ${onlyParked ? "state = 'parked'" : unresolved}${oneEvent(one)}
          ORDER BY evt_id`,

      replay: (one) =>
        `UPDATE ${p} SET state = 'replay', acted_by = ?, acted_reason = ?, acted_time = datetime('now')
          WHERE ident = ? AND state = 'parked'${oneEvent(one)}`,

      skip: (one) =>
        `UPDATE ${p} SET state = 'skipped', acted_by = ?, acted_reason = ?, acted_time = datetime('now'),
                resolved_time = datetime('now')
          WHERE ident = ? AND ${unresolved}${oneEvent(one)}`,

      replays: (limit) =>
        `SELECT CAST(evt_id AS TEXT) AS id, evt_type AS type, evt_data AS data,
                strftime('%Y-%m-%dT%H:%M:%SZ', evt_ts) AS ts
           FROM ${p}
          WHERE ident = ? AND state = 'replay' AND evt_id > CAST(? AS INTEGER)
          ORDER BY evt_id LIMIT ${limit}`,

      replayed: (n) =>
        `UPDATE ${p} SET state = 'replayed', resolved_time = datetime('now')
          WHERE ident = ? AND state = 'replay' AND evt_id IN (${repeat(n, 'CAST(? AS INTEGER)')})`,

      list: (ofOne, unresolvedOnly, limit) =>
        `SELECT ident, CAST(evt_id AS TEXT) AS id, evt_type AS type, evt_data AS data,
                strftime('%Y-%m-%dT%H:%M:%SZ', evt_ts) AS ts, state, attempts,
                strftime('%Y-%m-%dT%H:%M:%SZ', first_failure) AS first_failure,
                strftime('%Y-%m-%dT%H:%M:%SZ', last_failure) AS last_failure,
                error_code, error_info, strftime('%Y-%m-%dT%H:%M:%SZ', parked_time) AS parked_at,
                acted_by, acted_reason, strftime('%Y-%m-%dT%H:%M:%SZ', acted_time) AS acted_at,
                strftime('%Y-%m-%dT%H:%M:%SZ', resolved_time) AS resolved_at
           FROM ${p}${where([ofOne && 'ident = ?', unresolvedOnly && unresolved])}
          ORDER BY ident, evt_id LIMIT ${limit}`,

      counts: `SELECT ident, COUNT(*) AS n FROM ${p} WHERE ${unresolved} GROUP BY ident`,
    };
  },
};
