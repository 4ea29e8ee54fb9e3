import net from 'net';
import { Client, Pool, type ClientConfig, type PoolClient, type QueryResult } from 'pg';
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
import { nodeTlsOptions, tlsFailure } from '../tls';
import { waitAtMost } from '../../common/async';
import type { Logger } from '../../common/log';

/** How long closing a session connection waits for the server's goodbye before dropping it. */
const SESSION_CLOSE_WAIT_MS = 2_000;

/** A statement as we send it: `?` numbered `$1, $2, ...`, and a name once it is used often. */
interface Prepared {
  text: string;
  uses: number;
  name?: string;
}

const statements = new Map<string, Prepared>();
/** Statements tracked at most; the (few) hot ones are named, so each connection parses them once. */
const MAX_STATEMENTS = 1000;
const MAX_NAMED = 200;
const NAME_AFTER_USES = 3;
let named = 0;

function prepared(sql: string): Prepared {
  let p = statements.get(sql);
  if (!p) {
    let n = 0;
    // Our SQL has no `?` inside literals.
    p = { text: sql.replace(/\?/g, () => `$${++n}`), uses: 0 };
    if (statements.size < MAX_STATEMENTS) statements.set(sql, p);
  }
  if (
    ++p.uses === NAME_AFTER_USES &&
    named < MAX_NAMED &&
    /^\s*(SELECT|INSERT|UPDATE|WITH)\b/i.test(sql)
  ) {
    p.name = `evt${++named}`;
  }
  return p;
}

type Queryable = Pick<Pool, 'query'> | PoolClient | Client;

async function run(
  conn: Queryable,
  sql: string,
  params: readonly SqlValue[] = [],
  named = true,
): Promise<QueryResult<Row>> {
  const { text, name } = prepared(sql);
  return conn.query<Row>(
    name && named
      ? { name, text, values: params as SqlValue[] }
      : { text, values: params as SqlValue[] },
  );
}

/**
 * Statements on `conn`; `named` false sends none as a named prepared statement (a transaction
 * pooler hands each transaction another server session, which has not prepared it).
 */
function runner(conn: Queryable, named = true): SqlRunner {
  return {
    query: async <R extends Row>(sql: string, params?: readonly SqlValue[]) =>
      (await run(conn, sql, params, named)).rows as R[],
    execute: async (sql: string, params?: readonly SqlValue[]) => ({
      affected: (await run(conn, sql, params, named)).rowCount ?? 0,
    }),
  };
}

/** The pool's runner, its connection errors said as TLS failures where they are (see tlsFailure). */
function poolRunner(pool: Pool, config: ConnectionConfig, named: boolean): SqlRunner {
  const base = runner(pool, named);
  if (!config.tls) return base;
  const rethrow = (err: unknown): never => {
    throw tlsFailure(err, config) ?? err;
  };
  return {
    query: <R extends Row>(sql: string, params?: readonly SqlValue[]) =>
      base.query<R>(sql, params).catch(rethrow),
    execute: (sql: string, params?: readonly SqlValue[]) =>
      base.execute(sql, params).catch(rethrow),
  };
}

/** What pg's Pool and Client take of a ConnectionConfig, besides their own settings. */
export function pgConnection(config: ConnectionConfig | SessionAddress): ClientConfig {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    ...(config.tls ? { ssl: nodeTlsOptions(config.tls) } : {}),
  };
}

/** The session settings a direct pool connection starts with (see ConnectionConfig). */
function pgStartupOptions(config: ConnectionConfig): string {
  const options = ['-c TimeZone=UTC'];
  if (config.idleTransactionMs !== undefined && config.idleTransactionMs > 0) {
    options.push(`-c idle_in_transaction_session_timeout=${Math.ceil(config.idleTransactionMs)}`);
  }
  return options.join(' ');
}

export class PostgresClient implements SqlClient {
  readonly dialect = 'postgresql' as const;
  readonly pool: Pool;
  private readonly base: SqlRunner;
  /** Named prepared statements only where each connection is one server session. */
  private readonly named: boolean;

  constructor(
    readonly config: ConnectionConfig,
    private readonly log: Logger,
  ) {
    this.named = config.poolMode !== 'transaction';
    this.pool = new Pool({
      ...pgConnection(config),
      max: config.maxConnections ?? DEFAULT_POOL_SIZE,
      // Our statements keep UTC wall-clock time whatever the session's zone; UTC sessions are a
      // second guard. PgBouncer refuses startup options: through a pooler, the server's zone.
      ...(config.poolMode ? {} : { options: pgStartupOptions(config) }),
      application_name: 'ftn18-eventstream',
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client whose server went away emits 'error' on the pool; without a listener
    // Node would crash the process (as the reference does on a database restart).
    this.pool.on('error', (err) =>
      this.log.warn(`PostgreSQL idle connection lost: ${err.message}`),
    );
    this.base = poolRunner(this.pool, config, this.named);
  }

  query<R extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.base.query<R>(sql, params);
  }

  execute(sql: string, params?: readonly SqlValue[]): Promise<{ affected: number }> {
    return this.base.execute(sql, params);
  }

  async transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    const conn = await this.pool.connect().catch((err: unknown) => {
      throw tlsFailure(err, this.config) ?? err;
    });
    // pg-pool takes its own error listener off a client it hands out: an error the server sends
    // between our statements (a restart's "terminating connection") would otherwise be thrown
    // as uncaught. Note it, and hand the client back as broken so the pool drops it.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken ??= err;
    };
    conn.on('error', onError);
    try {
      await conn.query('BEGIN');
      try {
        const result = await work(runner(conn, this.named));
        await commitOrMark(() => conn.query('COMMIT'));
        return result;
      } catch (err) {
        await conn.query('ROLLBACK').catch((e: Error) => {
          broken ??= e;
        });
        throw err;
      }
    } finally {
      conn.off('error', onError);
      conn.release(broken);
    }
  }

  async script(sql: string, hooks: ScriptHooks = {}): Promise<void> {
    await this.transaction(async (tx) => {
      if (hooks.before) await hooks.before(tx);
      for (const stmt of splitStatements(sql)) await tx.execute(stmt);
      if (hooks.after) await hooks.after(tx);
    });
  }

  async openSession(at: SessionAddress = this.config): Promise<SessionConnection> {
    // Our own socket, so that destroy() can drop it at once (pg's end() waits for the server).
    const socket = new net.Socket();
    const client = new Client({
      ...pgConnection(at),
      application_name: 'ftn18-eventstream',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      stream: () => socket,
    });
    let resolveClosed!: (err: Error | undefined) => void;
    const closed = new Promise<Error | undefined>((r) => (resolveClosed = r));
    client.on('error', (err: Error) => resolveClosed(err));
    client.on('end', () => resolveClosed(undefined));
    socket.on('close', () => resolveClosed(new Error('Connection terminated')));
    try {
      await client.connect();
    } catch (err) {
      socket.destroy();
      throw tlsFailure(err, { ...this.config, ...at, tls: at.tls }) ?? err;
    }
    const base = runner(client, false);
    return {
      ...base,
      closed,
      onNotification: (listener) =>
        client.on('notification', (n) => listener(n.channel, n.payload ?? '')),
      close: async () => {
        await waitAtMost(
          client.end().catch(() => undefined),
          SESSION_CLOSE_WAIT_MS,
        );
        socket.destroy();
      },
      destroy: () => socket.destroy(),
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
