/**
 * The narrow database seam: every SQL statement of this project runs through an SqlClient.
 * One adapter per driver (drivers/), the statements of each dialect in queries/. Statements use
 * `?` placeholders on every dialect; the PostgreSQL adapter numbers them.
 */
import type { ConnectionConfig, DbTls } from './config';

export type Dialect = 'sqlite' | 'postgresql' | 'mysql';

export type SqlValue = string | number | boolean | null;
export type Row = Record<string, unknown>;

export interface SqlRunner {
  /** Runs a statement that returns rows (SELECT, or INSERT ... RETURNING). */
  query<R extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
  /** Runs a statement for its effect; resolves with the affected row count and, for an
   * auto-increment INSERT on MySQL/SQLite, the first new ID as a decimal string. */
  execute(
    sql: string,
    params?: readonly SqlValue[],
  ): Promise<{ affected: number; insertId?: string }>;
}

export interface SqlClient extends SqlRunner {
  readonly dialect: Dialect;
  /** Where it connects (server databases). */
  readonly config?: ConnectionConfig;
  /** Runs `work` in one transaction on one connection: COMMIT if it resolves, ROLLBACK if not. */
  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Runs a script of `;`-terminated statements in one transaction (DDL is transactional on
   * PostgreSQL and SQLite; MySQL commits each DDL statement by itself), with `hooks.before` and
   * `hooks.after` on the same connection before and after the statements. */
  script(sql: string, hooks?: ScriptHooks): Promise<void>;
  /**
   * Opens one connection of its own, outside the pool, to `at` (this client's database unless
   * given): for what belongs to a database session, such as session locks and LISTEN. Absent
   * where the database has no sessions to speak of (SQLite).
   */
  openSession?(at?: SessionAddress): Promise<SessionConnection>;
  close(): Promise<void>;
}

/** Where a session connection goes: host, port, credentials and database (a ConnectionConfig). */
export interface SessionAddress {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** TLS to the server, as the pool's (see ConnectionConfig). */
  tls?: DbTls;
}

/**
 * One server session on one connection: statements run in order, outside any pool, so that what
 * the session holds (locks, LISTEN) stays with it. TCP keepalive is on.
 */
export interface SessionConnection extends SqlRunner {
  /** Resolves once the connection has ended: with the error that ended it, if any. */
  readonly closed: Promise<Error | undefined>;
  /** Calls `listener` for each notification the session receives (PostgreSQL LISTEN). */
  onNotification(listener: (channel: string, payload: string) => void): void;
  /** Ends the session politely (the server releases what it held). */
  close(): Promise<void>;
  /** Drops the connection at once, without waiting for the server. */
  destroy(): void;
}

export interface ScriptHooks {
  before?: (tx: SqlRunner) => Promise<void>;
  after?: (tx: SqlRunner) => Promise<void>;
}

/** What a driver error means to us, whatever the driver. */
/**
 * - `duplicate`: a unique key was violated;
 * - `transient`: nothing was applied and the same statement may well work again (deadlock,
 *   serialization failure, no connection to be had yet);
 * - `lost`: the connection broke while the statement ran: a write may or may not have been
 *   applied, so only idempotent work may run again;
 * - `other`: anything else.
 */
export type ErrorKind = 'duplicate' | 'transient' | 'lost' | 'other';

/** Splits a migration script into statements: a statement ends with `;` at the end of a line. */
export function splitStatements(script: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  for (const line of script.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('--') && current.length === 0) continue;
    current.push(line);
    if (trimmed.endsWith(';')) {
      const stmt = current.join('\n').trim().replace(/;$/, '').trim();
      if (stmt) out.push(stmt);
      current = [];
    }
  }
  const rest = current.join('\n').trim();
  if (rest && !/^(--[^\n]*\n?)*$/.test(rest)) out.push(rest);
  return out;
}

/** A tiny FIFO lock for promise code (one holder at a time). */
export class Lock {
  private tail: Promise<void> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
