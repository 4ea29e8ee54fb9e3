import net from 'net';
import mysql from 'mysql2/promise';
import type { Connection, Pool, PoolConnection, ResultSetHeader } from 'mysql2/promise';
import type { ConnectionConfig } from '../config';
import { DEFAULT_POOL_SIZE } from '../config';
import {
  splitStatements,
  type Row,
  type ScriptHooks,
  type SessionAddress,
  type SessionConnection,
  type SqlClient,
  type SqlRunner,
  type SqlValue,
} from '../sql';
import { commitOrMark } from '../retry';
import { mysqlTlsOptions, tlsFailure } from '../tls';
import { waitAtMost } from '../../common/async';
import type { Logger } from '../../common/log';

/** How long closing a session connection waits for the server's goodbye before dropping it. */
const SESSION_CLOSE_WAIT_MS = 2_000;

/** Session settings of every connection: see MysqlClient. */
const SESSION_SETUP = [
  'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
  "SET SESSION time_zone = '+00:00'",
];

/** What the pool and a session connection take: the address, TLS, and how values come back. */
function connectionOptions(at: SessionAddress): mysql.ConnectionOptions {
  // mysql2 checks an IP address against the certificate as if it were "localhost": a check
  // that can pass for the wrong server. Refused rather than trusted.
  if (at.tls?.mode === 'verify-full' && net.isIP(at.host ?? '') !== 0) {
    throw new Error(
      `ssl-mode=VERIFY_IDENTITY needs the server's host name, not the address ${at.host ?? ''}: ` +
        'the driver cannot check an address against the certificate (use the name it holds, or VERIFY_CA)',
    );
  }
  return {
    host: at.host,
    port: at.port,
    user: at.user,
    password: at.password,
    database: at.database,
    ...(at.tls ? { ssl: mysqlTlsOptions(at.tls) } : {}),
    charset: 'utf8mb4_unicode_ci',
    // IDs above 2^53 stay exact: BIGINT columns come back as strings.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    timezone: 'Z',
    connectTimeout: 10_000,
    multipleStatements: false,
    enableKeepAlive: true,
  };
}

type Queryable = Pick<Pool, 'query'> | PoolConnection | Connection;

function runner(conn: Queryable): SqlRunner {
  return {
    query: async <R extends Row>(sql: string, params: readonly SqlValue[] = []) => {
      const [rows] = await conn.query(sql, params as SqlValue[]);
      return rows as R[];
    },
    execute: async (sql: string, params: readonly SqlValue[] = []) => {
      const [res] = await conn.query<ResultSetHeader>(sql, params as SqlValue[]);
      const out: { affected: number; insertId?: string } = { affected: res.affectedRows };
      if (res.insertId) out.insertId = String(res.insertId);
      return out;
    },
  };
}

export class MysqlClient implements SqlClient {
  readonly dialect = 'mysql' as const;
  readonly pool: Pool;
  private readonly base: SqlRunner;

  constructor(
    readonly config: ConnectionConfig,
    private readonly log: Logger,
  ) {
    this.pool = mysql.createPool({
      ...connectionOptions(config),
      connectionLimit: config.maxConnections ?? DEFAULT_POOL_SIZE,
    });
    // READ COMMITTED: readers see every committed row at once and take no gap locks that would
    // block writers; UTC session time zone for timestamps.
    // MariaDB (10.3 and later) ends a connection idle inside a transaction after
    // idle_transaction_timeout (see ConnectionConfig.idleTransactionMs); MySQL has no such
    // setting and refuses it as unknown: then it is not sent again.
    let idleTimeout =
      config.idleTransactionMs === undefined || config.idleTransactionMs <= 0
        ? null
        : `SET SESSION idle_transaction_timeout = ${Math.max(1, Math.ceil(config.idleTransactionMs / 1000))}`;
    this.pool.on('connection', (conn) => {
      const raw = (
        conn as unknown as { query(sql: string, done?: (err: Error | null) => void): unknown }
      ).query.bind(conn);
      for (const stmt of SESSION_SETUP) raw(stmt);
      if (idleTimeout !== null) {
        raw(idleTimeout, (err) => {
          // ER_UNKNOWN_SYSTEM_VARIABLE: the server has no such setting (another error is the
          // connection's, and the next connection tries again).
          if ((err as { errno?: number } | null)?.errno === 1193) idleTimeout = null;
        });
      }
    });
    const base = runner(this.pool);
    const rethrow = (err: unknown): never => {
      throw tlsFailure(err, config) ?? err;
    };
    // Connection errors said as TLS failures where they are (see tlsFailure).
    this.base = config.tls
      ? {
          query: <R extends Row>(sql: string, params?: readonly SqlValue[]) =>
            base.query<R>(sql, params).catch(rethrow),
          execute: (sql: string, params?: readonly SqlValue[]) =>
            base.execute(sql, params).catch(rethrow),
        }
      : base;
  }

  query<R extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.base.query<R>(sql, params);
  }

  execute(
    sql: string,
    params?: readonly SqlValue[],
  ): Promise<{ affected: number; insertId?: string }> {
    return this.base.execute(sql, params);
  }

  async transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    const conn = await this.connection();
    let broken = false;
    try {
      await conn.query('START TRANSACTION');
      try {
        const result = await work(runner(conn));
        await commitOrMark(() => conn.query('COMMIT'));
        return result;
      } catch (err) {
        await conn.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  async script(sql: string, hooks: ScriptHooks = {}): Promise<void> {
    // DDL commits implicitly on MySQL: each statement stands alone, so migrations for MySQL are
    // written to be safe to run again after a failure (IF NOT EXISTS and the like).
    const conn = await this.connection();
    try {
      const tx = runner(conn);
      if (hooks.before) await hooks.before(tx);
      for (const stmt of splitStatements(sql)) await tx.execute(stmt);
      if (hooks.after) await hooks.after(tx);
    } finally {
      // Named locks (GET_LOCK) belong to the session, which goes back to the pool.
      await conn.query('DO RELEASE_ALL_LOCKS()').catch(() => undefined);
      conn.release();
    }
  }

  private connection(): Promise<PoolConnection> {
    return this.pool.getConnection().catch((err: unknown) => {
      throw tlsFailure(err, this.config) ?? err;
    });
  }

  async openSession(at: SessionAddress = this.config): Promise<SessionConnection> {
    const conn = await mysql.createConnection(connectionOptions(at)).catch((err: unknown) => {
      throw tlsFailure(err, { ...this.config, ...at, tls: at.tls }) ?? err;
    });
    let resolveClosed!: (err: Error | undefined) => void;
    const closed = new Promise<Error | undefined>((r) => (resolveClosed = r));
    conn.on('error', (err: Error) => resolveClosed(err));
    conn.on('end', () => resolveClosed(undefined));
    try {
      for (const stmt of SESSION_SETUP) await conn.query(stmt);
    } catch (err) {
      conn.destroy();
      throw err;
    }
    return {
      ...runner(conn),
      closed,
      onNotification: () => undefined,
      close: async () => {
        await waitAtMost(
          conn.end().catch(() => undefined),
          SESSION_CLOSE_WAIT_MS,
        );
        conn.destroy();
        resolveClosed(undefined);
      },
      destroy: () => {
        conn.destroy();
        resolveClosed(new Error('Connection destroyed'));
      },
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
