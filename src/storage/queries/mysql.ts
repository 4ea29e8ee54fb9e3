import { TABLES } from '../../common/constants';
import { repeat, where, type Queries } from './index';

/**
 * MySQL and MariaDB: IDs are BIGINT (UNSIGNED in evt_history); the session time zone is UTC, and
 * DATETIME columns hold UTC wall-clock time. The ID of a multi-row INSERT comes back as the
 * first insertId, not as rows.
 */
export const mysqlQueries: Queries = {
  events(name) {
    const t = `\`${name}\``;
    // Alone or in a transaction, the same: MySQL has no notifications to send.
    const insert = (rows: number): string =>
      `INSERT INTO ${t} (type, data, ts) VALUES ${repeat(rows, '(?, ?, UTC_TIMESTAMP())')}`;
    return {
      name,

      insert,

      insertInTx: insert,

      read: (types, limit) =>
        `SELECT CAST(e.id AS CHAR) AS id, e.type, e.data AS data,
                DATE_FORMAT(e.ts, '%Y-%m-%dT%H:%i:%sZ') AS ts
           FROM ${t} e
          WHERE e.id > CAST(? AS UNSIGNED) AND e.id <= CAST(? AS UNSIGNED)${types > 0 ? ` AND e.type IN (${repeat(types, '?')})` : ''}
          ORDER BY e.id LIMIT ${limit}`,

      newest: `SELECT CAST(MAX(id) AS CHAR) AS newest FROM ${t}`,

      oldest: `SELECT CAST(MIN(id) AS CHAR) AS oldest FROM ${t}`,

      ages: (limit) =>
        `SELECT CAST(e.id AS CHAR) AS id, 1 AS old
           FROM ${t} e
          WHERE e.id > CAST(? AS UNSIGNED) AND e.id <= CAST(? AS UNSIGNED)
          ORDER BY e.id LIMIT ${limit}`,

      agesOlderThan: (limit) =>
        `SELECT CAST(e.id AS CHAR) AS id,
                CASE WHEN e.ts < (UTC_TIMESTAMP() - INTERVAL (? * 1000) MICROSECOND) THEN 1 ELSE 0 END AS old
           FROM ${t} e
          WHERE e.id > CAST(? AS UNSIGNED) AND e.id <= CAST(? AS UNSIGNED)
          ORDER BY e.id LIMIT ${limit}`,

      // MySQL cannot select from the table it deletes from; it has DELETE ... LIMIT instead.
      // LOCK IN SHARE MODE (MySQL and MariaDB): InnoDB's locking reads see the newest committed
      // rows, not the statement's read view, whatever the isolation level.
      deleteUpTo: (consumers, ignored, limit) =>
        `DELETE FROM ${t}
            WHERE id <= CAST(? AS UNSIGNED)
              AND id <= (SELECT MIN(c.last_evt_id) FROM \`${consumers}\` c${
                ignored > 0
                  ? ` WHERE NOT (c.last_time < (UTC_TIMESTAMP() - INTERVAL (? * 1000) MICROSECOND)
                        AND (${repeat(ignored, '(c.ident = ? AND c.last_evt_id = CAST(? AS UNSIGNED))', ' OR ')}))`
                  : ''
              } LOCK IN SHARE MODE)
            ORDER BY id LIMIT ${limit}`,

      behind: (limit) =>
        `SELECT COUNT(*) AS n, DATE_FORMAT(MIN(lagging.ts), '%Y-%m-%dT%H:%i:%sZ') AS ts
           FROM (SELECT e.id, e.ts FROM ${t} e
                  WHERE e.id > CAST(? AS UNSIGNED) AND e.id <= CAST(? AS UNSIGNED)
                  ORDER BY e.id LIMIT ${limit}) lagging`,

      newestBefore: `SELECT CAST(MAX(e.id) AS CHAR) AS id FROM ${t} e
                      WHERE e.ts < CAST(? AS DATETIME) AND e.id <= CAST(? AS UNSIGNED)`,

      // Two index lookups (SQLite finds a MIN or a MAX by the index only when it is alone).
      range: `SELECT (SELECT CAST(MAX(id) AS CHAR) FROM ${t}) AS newest,
                     (SELECT CAST(MIN(id) AS CHAR) FROM ${t}) AS oldest`,

      count: `SELECT COUNT(*) AS n FROM ${t}`,

      countRecent: `SELECT COUNT(*) AS n FROM ${t} e
                     WHERE e.id > CAST(? AS UNSIGNED)
                       AND e.ts >= (UTC_TIMESTAMP() - INTERVAL (? * 1000) MICROSECOND)`,

      list: (s) =>
        `SELECT CAST(e.id AS CHAR) AS id, e.type, e.data AS data,
                DATE_FORMAT(e.ts, '%Y-%m-%dT%H:%i:%sZ') AS ts
           FROM ${t} e${where([
             s.fromId && 'e.id >= CAST(? AS UNSIGNED)',
             s.toId && 'e.id <= CAST(? AS UNSIGNED)',
             s.types > 0 && `e.type IN (${repeat(s.types, '?')})`,
             s.since && 'e.ts >= CAST(? AS DATETIME)',
             s.until && 'e.ts <= CAST(? AS DATETIME)',
           ])}
          ORDER BY e.id${s.descending ? ' DESC' : ''} LIMIT ${s.limit}`,

      copy: (rows) =>
        `INSERT INTO ${t} (id, type, data, ts) VALUES ${repeat(rows, '(CAST(? AS UNSIGNED), ?, ?, ?)')}
         ON DUPLICATE KEY UPDATE id = id`,
    };
  },

  consumers(name) {
    const t = `\`${name}\``;
    const moves = `\`${TABLES.moves}\``;
    return {
      register: `INSERT INTO ${t} (last_evt_id, reg_time, last_time, ident)
                 VALUES (0, UTC_TIMESTAMP(), UTC_TIMESTAMP(), ?)`,

      pointer: `SELECT CAST(last_evt_id AS CHAR) AS p FROM ${t} WHERE ident = ?`,

      position: `SELECT CAST(c.last_evt_id AS CHAR) AS p,
                        (SELECT CAST(MAX(m.id) AS CHAR) FROM ${moves} m
                          WHERE m.ident = c.ident AND m.applied = 0) AS move
                   FROM ${t} c WHERE c.ident = ?`,

      advance: `UPDATE ${t} SET last_evt_id = CAST(? AS UNSIGNED), last_time = UTC_TIMESTAMP()
                 WHERE ident = ? AND last_evt_id < CAST(? AS UNSIGNED)`,

      advanceFrom: `UPDATE ${t} SET last_evt_id = CAST(? AS UNSIGNED), last_time = UTC_TIMESTAMP()
                     WHERE ident = ? AND last_evt_id < CAST(? AS UNSIGNED)
                       AND last_evt_id = CAST(? AS UNSIGNED)`,

      // No RETURNING for UPDATE (MySQL, MariaDB): the outcome of each row is read back in the
      // same transaction (pointers).
      advanceMany: (rows) =>
        `UPDATE ${t} c
           JOIN (${repeat(rows, 'SELECT ? AS ident, CAST(? AS UNSIGNED) AS to_id, CAST(? AS UNSIGNED) AS from_id, CAST(? AS UNSIGNED) AS epoch', ' UNION ALL ')}) v
             ON c.ident = v.ident
            SET c.last_evt_id = v.to_id, c.last_time = UTC_TIMESTAMP()
          WHERE c.last_evt_id = v.from_id AND c.last_evt_id < v.to_id
            AND (v.epoch IS NULL OR c.owner_epoch = v.epoch)`,

      pointers: (rows) =>
        `SELECT ident, CAST(last_evt_id AS CHAR) AS p, CAST(owner_epoch AS CHAR) AS epoch
           FROM ${t} WHERE ident IN (${repeat(rows, '?')})`,

      all: `SELECT ident, CAST(last_evt_id AS CHAR) AS pointer,
                   DATE_FORMAT(last_time, '%Y-%m-%dT%H:%i:%sZ') AS last_time, 0 AS idle
              FROM ${t}`,

      allIdle: `SELECT ident, CAST(last_evt_id AS CHAR) AS pointer,
                       DATE_FORMAT(last_time, '%Y-%m-%dT%H:%i:%sZ') AS last_time,
                       CASE WHEN last_time < (UTC_TIMESTAMP() - INTERVAL (? * 1000) MICROSECOND) THEN 1 ELSE 0 END AS idle
                  FROM ${t}`,

      setPointer: `UPDATE ${t} SET last_evt_id = CAST(? AS UNSIGNED), last_time = UTC_TIMESTAMP()
                    WHERE ident = ?`,

      remove: `DELETE FROM ${t} WHERE ident = ?`,

      recordMove: `INSERT INTO ${moves}
                     (ident, action, from_evt_id, to_evt_id, by_user, reason, move_time, applied,
                      evt_id, max_attempts)
                   VALUES (?, ?, CAST(? AS UNSIGNED), CAST(? AS UNSIGNED), ?, ?, UTC_TIMESTAMP(), ?,
                           CAST(? AS UNSIGNED), ?)`,

      movesApplied: `UPDATE ${moves} SET applied = 1
                      WHERE ident = ? AND applied = 0 AND id <= CAST(? AS UNSIGNED)`,

      allMovesApplied: `UPDATE ${moves} SET applied = 1 WHERE ident = ? AND applied = 0`,

      listMoves: (ofOne, limit) =>
        `SELECT m.ident, m.action, CAST(m.from_evt_id AS CHAR) AS from_id,
                CAST(m.to_evt_id AS CHAR) AS to_id, m.by_user, m.reason,
                DATE_FORMAT(m.move_time, '%Y-%m-%dT%H:%i:%sZ') AS at, m.applied,
                CAST(m.evt_id AS CHAR) AS evt_id, m.max_attempts
           FROM ${moves} m${ofOne ? ' WHERE m.ident = ?' : ''}
          ORDER BY m.id DESC LIMIT ${limit}`,

      ownerForUpdate: `SELECT owner_node AS prev, CAST(owner_epoch AS CHAR) AS epoch
                        FROM ${t} WHERE ident = ? FOR UPDATE`,

      claim: `UPDATE ${t} SET owner_epoch = owner_epoch + 1, owner_node = ? WHERE ident = ?`,

      owned: `SELECT CAST(c.last_evt_id AS CHAR) AS p, CAST(c.owner_epoch AS CHAR) AS epoch,
                     (SELECT CAST(MAX(m.id) AS CHAR) FROM ${moves} m
                       WHERE m.ident = c.ident AND m.applied = 0) AS move
                FROM ${t} c WHERE c.ident = ?`,

      release: `UPDATE ${t} SET owner_node = NULL
                 WHERE ident = ? AND owner_epoch = CAST(? AS UNSIGNED)`,

      advanceOwned: `UPDATE ${t} SET last_evt_id = CAST(? AS UNSIGNED), last_time = UTC_TIMESTAMP()
                      WHERE ident = ? AND last_evt_id < CAST(? AS UNSIGNED)
                        AND last_evt_id = CAST(? AS UNSIGNED) AND owner_epoch = CAST(? AS UNSIGNED)`,

      owners: `SELECT ident, owner_node AS node, CAST(owner_epoch AS CHAR) AS epoch
                 FROM ${t} WHERE owner_node IS NOT NULL`,
    };
  },

  parking() {
    const p = `\`${TABLES.parked}\``;
    const r = `\`${TABLES.parking}\``;
    const unresolved = "state IN ('parked', 'replay')";
    const oneEvent = (one: boolean): string => (one ? ' AND evt_id = CAST(? AS UNSIGNED)' : '');
    return {
      rule: `SELECT max_attempts, park_streak FROM ${r} WHERE ident = ?`,

      rules: `SELECT ident, max_attempts, park_streak FROM ${r}`,

      setRule: `INSERT INTO ${r} (ident, max_attempts, park_streak) VALUES (?, ?, 0)
                ON DUPLICATE KEY UPDATE max_attempts = VALUES(max_attempts), park_streak = 0`,

      bumpStreak: `INSERT INTO ${r} (ident, max_attempts, park_streak) VALUES (?, NULL, 1)
                   ON DUPLICATE KEY UPDATE park_streak = park_streak + 1`,

      clearStreak: `UPDATE ${r} SET park_streak = 0 WHERE ident = ? AND park_streak > 0`,

      removeRule: `DELETE FROM ${r} WHERE ident = ?`,

      park: `INSERT INTO ${p}
                 (ident, evt_id, evt_type, evt_data, evt_ts, state, attempts, first_failure,
                  last_failure, error_code, error_info, parked_time)
             VALUES (?, CAST(? AS UNSIGNED), ?, ?, CAST(? AS DATETIME), 'parked', ?, CAST(? AS DATETIME), CAST(? AS DATETIME), ?, ?, UTC_TIMESTAMP())
             ON DUPLICATE KEY UPDATE state = 'parked', attempts = attempts + VALUES(attempts),
                   last_failure = VALUES(last_failure), error_code = VALUES(error_code),
                   error_info = VALUES(error_info), parked_time = VALUES(parked_time),
                   resolved_time = NULL`,

      pick: (one, onlyParked) =>
        `SELECT CAST(evt_id AS CHAR) AS id FROM ${p}
          WHERE ident = ? AND ${onlyParked ? "state = 'parked'" : unresolved}${oneEvent(one)}
          ORDER BY evt_id FOR UPDATE`,

      replay: (one) =>
        `UPDATE ${p} SET state = 'replay', acted_by = ?, acted_reason = ?, acted_time = UTC_TIMESTAMP()
          WHERE ident = ? AND state = 'parked'${oneEvent(one)}`,

      skip: (one) =>
        `UPDATE ${p} SET state = 'skipped', acted_by = ?, acted_reason = ?, acted_time = UTC_TIMESTAMP(),
                resolved_time = UTC_TIMESTAMP()
          WHERE ident = ? AND ${unresolved}${oneEvent(one)}`,

      replays: (limit) =>
        `SELECT CAST(evt_id AS CHAR) AS id, evt_type AS type, evt_data AS data,
                DATE_FORMAT(evt_ts, '%Y-%m-%dT%H:%i:%sZ') AS ts
           FROM ${p}
          WHERE ident = ? AND state = 'replay' AND evt_id > CAST(? AS UNSIGNED)
          ORDER BY evt_id LIMIT ${limit}`,

      replayed: (n) =>
        `UPDATE ${p} SET state = 'replayed', resolved_time = UTC_TIMESTAMP()
          WHERE ident = ? AND state = 'replay' AND evt_id IN (${repeat(n, 'CAST(? AS UNSIGNED)')})`,

      list: (ofOne, unresolvedOnly, limit) =>
        `SELECT ident, CAST(evt_id AS CHAR) AS id, evt_type AS type, evt_data AS data,
                DATE_FORMAT(evt_ts, '%Y-%m-%dT%H:%i:%sZ') AS ts, state, attempts,
                DATE_FORMAT(first_failure, '%Y-%m-%dT%H:%i:%sZ') AS first_failure,
                DATE_FORMAT(last_failure, '%Y-%m-%dT%H:%i:%sZ') AS last_failure,
                error_code, error_info, DATE_FORMAT(parked_time, '%Y-%m-%dT%H:%i:%sZ') AS parked_at,
                acted_by, acted_reason, DATE_FORMAT(acted_time, '%Y-%m-%dT%H:%i:%sZ') AS acted_at,
                DATE_FORMAT(resolved_time, '%Y-%m-%dT%H:%i:%sZ') AS resolved_at
           FROM ${p}${where([ofOne && 'ident = ?', unresolvedOnly && unresolved])}
          ORDER BY ident, evt_id LIMIT ${limit}`,

      counts: `SELECT ident, COUNT(*) AS n FROM ${p} WHERE ${unresolved} GROUP BY ident`,
    };
  },

  coordination: {
    // Named locks (GET_LOCK) are per server, not per database: the names carry the database
    // (see SqlDialect.lockKey). Timeout 0: never wait.
    tryLock: 'SELECT GET_LOCK(?, 0) AS ok',
    unlock: 'SELECT RELEASE_LOCK(?) AS ok',
    heartbeat: 'SELECT CONNECTION_ID() AS pid, @@global.read_only AS ro, NULL AS locks',
    sessionSettings: (fenceMs) => [
      // The server ends the session (freeing its locks) once idle for about twice the fence
      // bound: a paused or lost node. Whole seconds.
      `SET SESSION wait_timeout = ${Math.max(2, Math.ceil((2 * fenceMs) / 1000))}`,
    ],
    control: {
      send: `INSERT INTO \`${TABLES.control}\`
                    (kind, scope, subject, from_node, info, epoch, created)
             VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3))`,
      recent: `SELECT CAST(id AS CHAR) AS id, kind, scope, subject, from_node AS node, info, epoch
                 FROM \`${TABLES.control}\`
                WHERE created >= UTC_TIMESTAMP(3) - INTERVAL (? * 1000) MICROSECOND
                ORDER BY id`,
      expire: `DELETE FROM \`${TABLES.control}\`
                WHERE created < UTC_TIMESTAMP(3) - INTERVAL (? * 1000) MICROSECOND`,
    },
  },
};
