import { TABLES } from '../../common/constants';
import { notifyChannel } from '../dialects/dialect';
import { repeat, where, type Queries } from './index';

/**
 * PostgreSQL: IDs are BIGINT; TIMESTAMP (without time zone) columns hold UTC wall-clock time,
 * so "now" is `now() AT TIME ZONE 'UTC'`; data is JSON, read back as its text.
 */
export const postgresqlQueries: Queries = {
  events(name) {
    const t = `"${name}"`;
    return {
      name,

      // Alone, it also wakes listeners in other processes: one NOTIFY per statement (a
      // group-commit batch, never per row), committed with it, in no other writer's transaction
      // (a NOTIFY takes a global lock at commit). Its payload, the last parameter, names the
      // store that sent it (its own listener ignores it: the store announced the commit in
      // process). Rows of one VALUES list draw their IDs in list order.
      insert: (rows) =>
        `WITH ins AS (INSERT INTO ${t} (type, data, ts)
                      VALUES ${repeat(rows, "(?, ?, (now() AT TIME ZONE 'UTC'))")}
                      RETURNING id),
              n AS (SELECT pg_notify('${notifyChannel(name)}', CAST(? AS TEXT)))
         SELECT CAST(ins.id AS TEXT) AS id FROM ins, n`,

      insertInTx: (rows) =>
        `INSERT INTO ${t} (type, data, ts)
         VALUES ${repeat(rows, "(?, ?, (now() AT TIME ZONE 'UTC'))")}
         RETURNING CAST(id AS TEXT) AS id`,

      read: (types, limit) =>
        `SELECT CAST(e.id AS TEXT) AS id, e.type, CAST(e.data AS TEXT) AS data,
                to_char(e.ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ts
           FROM ${t} e
          WHERE e.id > CAST(? AS BIGINT) AND e.id <= CAST(? AS BIGINT)${types > 0 ? ` AND e.type IN (${repeat(types, '?')})` : ''}
          ORDER BY e.id LIMIT ${limit}`,

      newest: `SELECT CAST(MAX(id) AS TEXT) AS newest FROM ${t}`,

      oldest: `SELECT CAST(MIN(id) AS TEXT) AS oldest FROM ${t}`,

      ages: (limit) =>
        `SELECT CAST(e.id AS TEXT) AS id, 1 AS old
           FROM ${t} e
          WHERE e.id > CAST(? AS BIGINT) AND e.id <= CAST(? AS BIGINT)
          ORDER BY e.id LIMIT ${limit}`,

      agesOlderThan: (limit) =>
        `SELECT CAST(e.id AS TEXT) AS id,
                CASE WHEN e.ts < ((now() AT TIME ZONE 'UTC') - CAST(? AS BIGINT) * INTERVAL '1 millisecond') THEN 1 ELSE 0 END AS old
           FROM ${t} e
          WHERE e.id > CAST(? AS BIGINT) AND e.id <= CAST(? AS BIGINT)
          ORDER BY e.id LIMIT ${limit}`,

      // Aggregates cannot lock rows, so the consumer rows are locked below MIN: FOR SHARE waits
      // for a transaction changing one of them, then reads it as that one committed (READ
      // COMMITTED re-checks the newest version of a locked row).
      deleteUpTo: (consumers, ignored, limit) =>
        `DELETE FROM ${t} WHERE id IN (
           SELECT id FROM ${t}
            WHERE id <= CAST(? AS BIGINT)
              AND id <= (SELECT MIN(m.v) FROM (SELECT c.last_evt_id AS v FROM "${consumers}" c${
                ignored > 0
                  ? ` WHERE NOT (c.last_time < ((now() AT TIME ZONE 'UTC') - CAST(? AS BIGINT) * INTERVAL '1 millisecond')
                        AND (${repeat(ignored, '(c.ident = ? AND c.last_evt_id = CAST(? AS BIGINT))', ' OR ')}))`
                  : ''
              } FOR SHARE) m)
            ORDER BY id LIMIT ${limit})`,

      behind: (limit) =>
        `SELECT COUNT(*) AS n, to_char(MIN(lagging.ts), 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ts
           FROM (SELECT e.id, e.ts FROM ${t} e
                  WHERE e.id > CAST(? AS BIGINT) AND e.id <= CAST(? AS BIGINT)
                  ORDER BY e.id LIMIT ${limit}) lagging`,

      newestBefore: `SELECT CAST(MAX(e.id) AS TEXT) AS id FROM ${t} e
                      WHERE e.ts < CAST(? AS TIMESTAMP) AND e.id <= CAST(? AS BIGINT)`,

      // Two index lookups (SQLite finds a MIN or a MAX by the index only when it is alone).
      range: `SELECT (SELECT CAST(MAX(id) AS TEXT) FROM ${t}) AS newest,
                     (SELECT CAST(MIN(id) AS TEXT) FROM ${t}) AS oldest`,

      count: `SELECT COUNT(*) AS n FROM ${t}`,

      countRecent: `SELECT COUNT(*) AS n FROM ${t} e
                     WHERE e.id > CAST(? AS BIGINT)
                       AND e.ts >= ((now() AT TIME ZONE 'UTC') - CAST(? AS BIGINT) * INTERVAL '1 millisecond')`,

      list: (s) =>
        `SELECT CAST(e.id AS TEXT) AS id, e.type, CAST(e.data AS TEXT) AS data,
                to_char(e.ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ts
           FROM ${t} e${where([
             s.fromId && 'e.id >= CAST(? AS BIGINT)',
             s.toId && 'e.id <= CAST(? AS BIGINT)',
             s.types > 0 && `e.type IN (${repeat(s.types, '?')})`,
             s.since && 'e.ts >= CAST(? AS TIMESTAMP)',
             s.until && 'e.ts <= CAST(? AS TIMESTAMP)',
           ])}
          ORDER BY e.id${s.descending ? ' DESC' : ''} LIMIT ${s.limit}`,

      copy: (rows) =>
        `INSERT INTO ${t} (id, type, data, ts) VALUES ${repeat(rows, '(CAST(? AS BIGINT), ?, ?, ?)')}
         ON CONFLICT (id) DO NOTHING`,
    };
  },

  consumers(name) {
    const t = `"${name}"`;
    const moves = `"${TABLES.moves}"`;
    return {
      register: `INSERT INTO ${t} (last_evt_id, reg_time, last_time, ident)
                 VALUES (0, (now() AT TIME ZONE 'UTC'), (now() AT TIME ZONE 'UTC'), ?)`,

      pointer: `SELECT CAST(last_evt_id AS TEXT) AS p FROM ${t} WHERE ident = ?`,

      position: `SELECT CAST(c.last_evt_id AS TEXT) AS p,
                        (SELECT CAST(MAX(m.id) AS TEXT) FROM ${moves} m
                          WHERE m.ident = c.ident AND m.applied = 0) AS move
                   FROM ${t} c WHERE c.ident = ?`,

      advance: `UPDATE ${t} SET last_evt_id = CAST(? AS BIGINT), last_time = (now() AT TIME ZONE 'UTC')
                 WHERE ident = ? AND last_evt_id < CAST(? AS BIGINT)`,

      advanceFrom: `UPDATE ${t} SET last_evt_id = CAST(? AS BIGINT), last_time = (now() AT TIME ZONE 'UTC')
                     WHERE ident = ? AND last_evt_id < CAST(? AS BIGINT)
                       AND last_evt_id = CAST(? AS BIGINT)`,

      advanceMany: (rows) =>
        `UPDATE ${t} AS c
            SET last_evt_id = v.to_id, last_time = (now() AT TIME ZONE 'UTC')
           FROM (VALUES ${repeat(rows, '(CAST(? AS VARCHAR), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))')})
                AS v (ident, to_id, from_id, epoch)
          WHERE c.ident = v.ident AND c.last_evt_id = v.from_id AND c.last_evt_id < v.to_id
            AND (v.epoch IS NULL OR c.owner_epoch = v.epoch)
         RETURNING c.ident`,

      pointers: (rows) =>
        `SELECT ident, CAST(last_evt_id AS TEXT) AS p, CAST(owner_epoch AS TEXT) AS epoch
           FROM ${t} WHERE ident IN (${repeat(rows, '?')})`,

      all: `SELECT ident, CAST(last_evt_id AS TEXT) AS pointer,
                   to_char(last_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_time, 0 AS idle
              FROM ${t}`,

      allIdle: `SELECT ident, CAST(last_evt_id AS TEXT) AS pointer,
                       to_char(last_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_time,
                       CASE WHEN last_time < ((now() AT TIME ZONE 'UTC') - CAST(? AS BIGINT) * INTERVAL '1 millisecond') THEN 1 ELSE 0 END AS idle
                  FROM ${t}`,

      setPointer: `UPDATE ${t} SET last_evt_id = CAST(? AS BIGINT), last_time = (now() AT TIME ZONE 'UTC')
                    WHERE ident = ?`,

      remove: `DELETE FROM ${t} WHERE ident = ?`,

      recordMove: `INSERT INTO ${moves}
                     (ident, action, from_evt_id, to_evt_id, by_user, reason, move_time, applied,
                      evt_id, max_attempts)
                   VALUES (?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), ?, ?, (now() AT TIME ZONE 'UTC'), ?,
                           CAST(? AS BIGINT), ?)`,

      movesApplied: `UPDATE ${moves} SET applied = 1
                      WHERE ident = ? AND applied = 0 AND id <= CAST(? AS BIGINT)`,

      allMovesApplied: `UPDATE ${moves} SET applied = 1 WHERE ident = ? AND applied = 0`,

      listMoves: (ofOne, limit) =>
        `SELECT m.ident, m.action, CAST(m.from_evt_id AS TEXT) AS from_id,
                CAST(m.to_evt_id AS TEXT) AS to_id, m.by_user, m.reason,
                to_char(m.move_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at, m.applied,
                CAST(m.evt_id AS TEXT) AS evt_id, m.max_attempts
           FROM ${moves} m${ofOne ? ' WHERE m.ident = ?' : ''}
          ORDER BY m.id DESC LIMIT ${limit}`,

      ownerForUpdate: `SELECT owner_node AS prev, CAST(owner_epoch AS TEXT) AS epoch
                        FROM ${t} WHERE ident = ? FOR UPDATE`,

      claim: `UPDATE ${t} SET owner_epoch = owner_epoch + 1, owner_node = ? WHERE ident = ?`,

      owned: `SELECT CAST(c.last_evt_id AS TEXT) AS p, CAST(c.owner_epoch AS TEXT) AS epoch,
                     (SELECT CAST(MAX(m.id) AS TEXT) FROM ${moves} m
                       WHERE m.ident = c.ident AND m.applied = 0) AS move
                FROM ${t} c WHERE c.ident = ?`,

      release: `UPDATE ${t} SET owner_node = NULL
                 WHERE ident = ? AND owner_epoch = CAST(? AS BIGINT)`,

      advanceOwned: `UPDATE ${t} SET last_evt_id = CAST(? AS BIGINT), last_time = (now() AT TIME ZONE 'UTC')
                      WHERE ident = ? AND last_evt_id < CAST(? AS BIGINT)
                        AND last_evt_id = CAST(? AS BIGINT) AND owner_epoch = CAST(? AS BIGINT)`,

      owners: `SELECT ident, owner_node AS node, CAST(owner_epoch AS TEXT) AS epoch
                 FROM ${t} WHERE owner_node IS NOT NULL`,
    };
  },

  parking() {
    const p = `"${TABLES.parked}"`;
    const r = `"${TABLES.parking}"`;
    const unresolved = "state IN ('parked', 'replay')";
    const oneEvent = (one: boolean): string => (one ? ' AND evt_id = CAST(? AS BIGINT)' : '');
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
             VALUES (?, CAST(? AS BIGINT), ?, ?, CAST(? AS TIMESTAMP), 'parked', ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), ?, ?, (now() AT TIME ZONE 'UTC'))
             ON CONFLICT (ident, evt_id) DO UPDATE SET state = 'parked',
                   attempts = ${p}.attempts + excluded.attempts,
                   last_failure = excluded.last_failure, error_code = excluded.error_code,
                   error_info = excluded.error_info, parked_time = excluded.parked_time,
                   resolved_time = NULL`,

      pick: (one, onlyParked) =>
        `SELECT CAST(evt_id AS TEXT) AS id FROM ${p}
          WHERE ident = ? AND ${onlyParked ? "state = 'parked'" : unresolved}${oneEvent(one)}
          ORDER BY evt_id FOR UPDATE`,

      replay: (one) =>
        `UPDATE ${p} SET state = 'replay', acted_by = ?, acted_reason = ?, acted_time = (now() AT TIME ZONE 'UTC')
          WHERE ident = ? AND state = 'parked'${oneEvent(one)}`,

      skip: (one) =>
        `UPDATE ${p} SET state = 'skipped', acted_by = ?, acted_reason = ?, acted_time = (now() AT TIME ZONE 'UTC'),
                resolved_time = (now() AT TIME ZONE 'UTC')
          WHERE ident = ? AND ${unresolved}${oneEvent(one)}`,

      replays: (limit) =>
        `SELECT CAST(evt_id AS TEXT) AS id, evt_type AS type, CAST(evt_data AS TEXT) AS data,
                to_char(evt_ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ts
           FROM ${p}
          WHERE ident = ? AND state = 'replay' AND evt_id > CAST(? AS BIGINT)
          ORDER BY evt_id LIMIT ${limit}`,

      replayed: (n) =>
        `UPDATE ${p} SET state = 'replayed', resolved_time = (now() AT TIME ZONE 'UTC')
          WHERE ident = ? AND state = 'replay' AND evt_id IN (${repeat(n, 'CAST(? AS BIGINT)')})`,

      list: (ofOne, unresolvedOnly, limit) =>
        `SELECT ident, CAST(evt_id AS TEXT) AS id, evt_type AS type, CAST(evt_data AS TEXT) AS data,
                to_char(evt_ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ts, state, attempts,
                to_char(first_failure, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS first_failure,
                to_char(last_failure, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_failure,
                error_code, error_info, to_char(parked_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS parked_at,
                acted_by, acted_reason, to_char(acted_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS acted_at,
                to_char(resolved_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS resolved_at
           FROM ${p}${where([ofOne && 'ident = ?', unresolvedOnly && unresolved])}
          ORDER BY ident, evt_id LIMIT ${limit}`,

      counts: `SELECT ident, COUNT(*) AS n FROM ${p} WHERE ${unresolved} GROUP BY ident`,
    };
  },

  coordination: {
    // Advisory locks of our own 64-bit keys (see SqlDialect.lockKey), per database.
    tryLock: 'SELECT CASE WHEN pg_try_advisory_lock(CAST(? AS BIGINT)) THEN 1 ELSE 0 END AS ok',
    unlock: 'SELECT CASE WHEN pg_advisory_unlock(CAST(? AS BIGINT)) THEN 1 ELSE 0 END AS ok',
    heartbeat: `SELECT pg_backend_pid() AS pid,
                       CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END AS ro,
                       (SELECT COUNT(*) FROM pg_locks
                         WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted) AS locks`,
    sessionSettings: (fenceMs) => {
      const idleS = Math.max(1, Math.ceil(fenceMs / 1000));
      return [
        // The server frees the locks of a node that went quiet (a paused process, a lost
        // machine): idle for twice the fence bound, or unacknowledged on TCP for as long.
        `SET idle_session_timeout = ${2 * fenceMs}`,
        `SET tcp_user_timeout = ${2 * fenceMs}`,
        `SET tcp_keepalives_idle = ${idleS}`,
        `SET tcp_keepalives_interval = ${idleS}`,
        'SET tcp_keepalives_count = 2',
      ];
    },
    notify: 'SELECT pg_notify(?, ?)',
  },
};
