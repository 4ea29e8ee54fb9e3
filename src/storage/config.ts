import path from 'path';
import type { Dialect } from './sql';

/** Where a database is, in driver-neutral terms. */
export interface ConnectionConfig {
  dialect: Dialect;
  /** SQLite: the database file. */
  file?: string;
  /** SQLite: PRAGMA synchronous (FULL keeps every commit across power loss; the default). */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** Connections in the pool (PostgreSQL and MySQL). */
  maxConnections?: number;
  /**
   * PostgreSQL through a connection pooler (PgBouncer): `session` sends no startup options
   * (PgBouncer refuses them); `transaction` also uses no named prepared statements, and what
   * needs a session of its own (locks, LISTEN) cannot go through it (see the store's
   * `sessionDatabase`).
   */
  poolMode?: PoolMode;
}

/** How a pooler in front of PostgreSQL hands out server connections (PgBouncer's pool_mode). */
export type PoolMode = 'session' | 'transaction';

export const DEFAULT_SQLITE_FILE = 'evtstream.sqlite';
export const DEFAULT_POOL_SIZE = 10;

/**
 * Parses `sqlite:PATH`, `postgres://user:pass@host:port/db` (or `postgresql://`) and
 * `mysql://user:pass@host:port/db` (or `mariadb://`). A `?max=N` parameter sets the pool size;
 * `?synchronous=normal` relaxes SQLite's fsync per commit; `?pool_mode=session|transaction`
 * says a PostgreSQL URL reaches a pooler such as PgBouncer.
 */
export function parseDbUrl(url: string): ConnectionConfig {
  const sqlite = /^sqlite:(?:\/\/)?(.*)$/.exec(url);
  if (sqlite) {
    const [file = '', query = ''] = (sqlite[1] ?? '').split('?');
    if (!file) throw new Error(`No file in SQLite URL: ${url}`);
    const params = new URLSearchParams(query);
    const config: ConnectionConfig = { dialect: 'sqlite', file: path.resolve(file) };
    const sync = params.get('synchronous');
    if (sync) config.synchronous = parseSynchronous(sync);
    return config;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`Not a database URL: ${redactUrl(url)}`);
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  const dialect: Dialect | undefined =
    scheme === 'postgres' || scheme === 'postgresql'
      ? 'postgresql'
      : scheme === 'mysql' || scheme === 'mariadb'
        ? 'mysql'
        : undefined;
  if (!dialect) {
    throw new Error(`Unknown database scheme "${scheme}": use sqlite:, postgres:// or mysql://`);
  }
  const config: ConnectionConfig = { dialect, host: parsed.hostname || 'localhost' };
  if (parsed.port) config.port = Number(parsed.port);
  if (parsed.username) config.user = decodeURIComponent(parsed.username);
  if (parsed.password) config.password = decodeURIComponent(parsed.password);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database) config.database = database;
  const max = parsed.searchParams.get('max');
  if (max) {
    const n = Number(max);
    if (!Number.isInteger(n) || n < 1) throw new Error(`Invalid pool size in database URL: ${max}`);
    config.maxConnections = n;
  }
  const poolMode = parsed.searchParams.get('pool_mode');
  if (poolMode !== null) {
    if (dialect !== 'postgresql') throw new Error('pool_mode applies to PostgreSQL URLs only');
    if (poolMode !== 'session' && poolMode !== 'transaction')
      throw new Error(`Invalid pool_mode in database URL: ${poolMode} (session or transaction)`);
    config.poolMode = poolMode;
  }
  return config;
}

function parseSynchronous(v: string): 'FULL' | 'NORMAL' | 'OFF' {
  const up = v.toUpperCase();
  if (up === 'FULL' || up === 'NORMAL' || up === 'OFF') return up;
  throw new Error(`Invalid SQLite synchronous mode: ${v}`);
}

/** The URL with its password hidden, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

/** A short description of the connection for logs (no password). */
export function describeConnection(c: ConnectionConfig): string {
  if (c.dialect === 'sqlite') return `sqlite:${c.file ?? ''}`;
  const scheme = c.dialect === 'postgresql' ? 'postgres' : 'mysql';
  const user = c.user ? `${c.user}@` : '';
  const port = c.port ? `:${c.port}` : '';
  const mode = c.poolMode ? `?pool_mode=${c.poolMode}` : '';
  return `${scheme}://${user}${c.host ?? 'localhost'}${port}/${c.database ?? ''}${mode}`;
}

/**
 * The futoin-database AutoConfig variables (DB_<NAME>_TYPE, _HOST, _PORT, _USER, _PASS, _DB,
 * _MAXCONN) for a connection name, as a ConnectionConfig; undefined when _TYPE is not set.
 * For SQLite, AutoConfig takes the file from _SOCKET (it parses _PORT as a number); we accept
 * _SOCKET, then _PORT, then _DB.
 */
export function configFromEnv(
  name: string,
  env: Record<string, string | undefined> = process.env,
): ConnectionConfig | undefined {
  const v = (key: string): string | undefined =>
    env[`DB_${name.toUpperCase()}_${key}`] || undefined;
  const type = v('TYPE');
  if (!type) return undefined;
  if (type !== 'sqlite' && type !== 'postgresql' && type !== 'mysql') {
    throw new Error(
      `DB_${name.toUpperCase()}_TYPE must be sqlite, postgresql or mysql, not "${type}"`,
    );
  }
  if (type === 'sqlite') {
    const file = v('SOCKET') ?? v('PORT') ?? v('DB');
    if (!file) throw new Error(`DB_${name.toUpperCase()}_SOCKET must name the SQLite file`);
    return { dialect: 'sqlite', file: path.resolve(file) };
  }
  const config: ConnectionConfig = { dialect: type, host: v('HOST') ?? 'localhost' };
  const port = v('PORT');
  if (port) config.port = Number(port);
  const user = v('USER');
  if (user) config.user = user;
  const password = v('PASS');
  if (password) config.password = password;
  const database = v('DB');
  if (database) config.database = database;
  const max = v('MAXCONN');
  if (max) config.maxConnections = Number(max);
  return config;
}
