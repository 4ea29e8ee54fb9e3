import { Client, Pool, type ClientConfig, type PoolClient, type QueryResult } from 'pg';
import type { ConnectionConfig } from '../config';
import { DEFAULT_POOL_SIZE } from '../config';
import {
  splitStatements,
  type Row,
  type ScriptHooks,
  type SqlClient,
  type SqlRunner,
  type SqlValue,
} from '../sql';
import { commitOrMark } from '../retry';
import { nodeTlsOptions, tlsFailure } from '../tls';
import type { Logger } from '../../common/log';

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

type Queryable = Pick<Pool, 'query'> | PoolClient;

async function run(
  conn: Queryable,
  sql: string,
  params: readonly SqlValue[] = [],
): Promise<QueryResult<Row>> {
  const { text, name } = prepared(sql);
  return conn.query<Row>(
    name ? { name, text, values: params as SqlValue[] } : { text, values: params as SqlValue[] },
  );
}

function runner(conn: Queryable): SqlRunner {
  return {
    query: async <R extends Row>(sql: string, params?: readonly SqlValue[]) =>
      (await run(conn, sql, params)).rows as R[],
    execute: async (sql: string, params?: readonly SqlValue[]) => ({
      affected: (await run(conn, sql, params)).rowCount ?? 0,
    }),
  };
}

/** The pool's runner, its connection errors said as TLS failures where they are (see tlsFailure). */
function poolRunner(pool: Pool, config: ConnectionConfig): SqlRunner {
  const base = runner(pool);
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
export function pgConnection(config: ConnectionConfig): ClientConfig {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    ...(config.tls ? { ssl: nodeTlsOptions(config.tls) } : {}),
  };
}

export class PostgresClient implements SqlClient {
  readonly dialect = 'postgresql' as const;
  readonly pool: Pool;
  private readonly base: SqlRunner;

  constructor(
    readonly config: ConnectionConfig,
    private readonly log: Logger,
  ) {
    this.pool = new Pool({
      ...pgConnection(config),
      max: config.maxConnections ?? DEFAULT_POOL_SIZE,
      // Timestamps are stored as UTC wall-clock time, whatever the server's zone.
      options: '-c TimeZone=UTC',
      application_name: 'ftn18-eventstream',
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client whose server went away emits 'error' on the pool; without a listener
    // Node would crash the process (as the reference does on a database restart).
    this.pool.on('error', (err) =>
      this.log.warn(`PostgreSQL idle connection lost: ${err.message}`),
    );
    this.base = poolRunner(this.pool, config);
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
        const result = await work(runner(conn));
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

  /** A new connection outside the pool, not connected yet (for LISTEN). */
  newClient(): Client {
    return new Client({
      ...pgConnection(this.config),
      application_name: 'ftn18-eventstream',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
