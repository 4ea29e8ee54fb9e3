import fs from 'fs';
import path from 'path';
import { parse as parsePgUrl } from 'pg-connection-string';
import type { Dialect } from './sql';

/**
 * TLS to a PostgreSQL or MySQL server. What each mode checks of the server's certificate (the
 * names are libpq's; MySQL's REQUIRED, VERIFY_CA and VERIFY_IDENTITY mean the same):
 * - `require`: nothing, the connection is only encrypted, unless a CA is given: then, as with
 *   libpq, the certificate must be signed by it;
 * - `verify-ca`: signed by `ca`;
 * - `verify-full`: signed by `ca` (without one: by a CA Node.js trusts) and naming the host of
 *   the URL.
 */
export interface DbTls {
  mode: 'require' | 'verify-ca' | 'verify-full';
  /** PEM: the CA certificates to trust (`sslrootcert`, `ssl-ca`). */
  ca?: string;
  /** PEM: a client certificate and its key, for servers that sign in by certificate. */
  cert?: string;
  key?: string;
}

/** Where a database is, in driver-neutral terms. */
export interface ConnectionConfig {
  dialect: Dialect;
  /** SQLite: the database file. */
  file?: string;
  /** SQLite: PRAGMA synchronous (FULL keeps every commit across power loss; the default). */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  /** A host name, or (PostgreSQL) the folder of a Unix socket. */
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** Connections in the pool (PostgreSQL and MySQL). */
  maxConnections?: number;
  /** TLS to the server; absent: a plain connection. */
  tls?: DbTls;
  /**
   * PostgreSQL through a connection pooler (PgBouncer): `session` sends no startup options
   * (PgBouncer refuses them); `transaction` also uses no named prepared statements, and what
   * needs a session of its own (locks, LISTEN) cannot go through it (see the store's
   * `sessionDatabase`).
   */
  poolMode?: PoolMode;
  /**
   * PostgreSQL and MariaDB: the server ends a pool connection left idle inside a transaction
   * for this long, rolling it back (idle_in_transaction_session_timeout, idle_transaction_timeout).
   * A node paused mid-transaction (a stopped process, a stalled VM) would otherwise keep its row
   * locks, and every other node waiting on them, until it runs again. Not from the URL: the
   * store sets it from its fence bound when coordination is on (EventStore.open); 0 or absent:
   * not set (the server's own setting holds). PostgreSQL through a pooler cannot take it as a
   * startup option: set it on the server or the role there.
   */
  idleTransactionMs?: number;
}

/** How a pooler in front of PostgreSQL hands out server connections (PgBouncer's pool_mode). */
export type PoolMode = 'session' | 'transaction';

export const DEFAULT_SQLITE_FILE = 'evtstream.sqlite';
export const DEFAULT_POOL_SIZE = 10;

/** Query parameters each kind of URL takes; any other is refused (a typo must not go unseen). */
const URL_PARAMS: Readonly<Record<Dialect, readonly string[]>> = {
  sqlite: ['synchronous'],
  postgresql: ['max', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'host', 'pool_mode'],
  mysql: ['max', 'ssl-mode', 'ssl-ca', 'ssl-cert', 'ssl-key'],
};

/**
 * Parses `sqlite:PATH`, `postgres://user:pass@host:port/db` (or `postgresql://`) and
 * `mysql://user:pass@host:port/db` (or `mariadb://`). A `?max=N` parameter sets the pool size;
 * `?synchronous=normal` relaxes SQLite's fsync per commit. PostgreSQL URLs are read by pg's own
 * parser (pg-connection-string) with libpq's meaning of `sslmode` (`disable`, `require`,
 * `verify-ca`, `verify-full`), `sslrootcert`, `sslcert` and `sslkey`; MySQL URLs take
 * `ssl-mode` (`DISABLED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`), `ssl-ca`, `ssl-cert` and
 * `ssl-key`, as the mysql client's options. Certificate files are read here: a missing one is
 * an error now, not at the first connection. `?pool_mode=session|transaction` says a
 * PostgreSQL URL reaches a pooler such as PgBouncer.
 */
export function parseDbUrl(url: string): ConnectionConfig {
  const sqlite = /^sqlite:(?:\/\/)?(.*)$/.exec(url);
  if (sqlite) {
    const [file = '', query = ''] = (sqlite[1] ?? '').split('?');
    if (!file) throw new Error(`No file in SQLite URL: ${url}`);
    const params = new URLSearchParams(query);
    checkParams('sqlite', params, url);
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
  // MySQL's option names are also written with underscores (ssl_ca): one spelling from here on.
  if (dialect === 'mysql') {
    for (const [k, v] of [...parsed.searchParams]) {
      if (k.startsWith('ssl_')) {
        parsed.searchParams.delete(k);
        parsed.searchParams.set(k.replace(/_/g, '-'), v);
      }
    }
  }
  checkParams(dialect, parsed.searchParams, url);
  const max = parsed.searchParams.get('max');
  parsed.searchParams.delete('max');
  const config = dialect === 'postgresql' ? postgresConfig(parsed, url) : mysqlConfig(parsed, url);
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

function checkParams(dialect: Dialect, params: URLSearchParams, url: string): void {
  const known = URL_PARAMS[dialect];
  for (const name of params.keys()) {
    if (!known.includes(name)) {
      throw new Error(
        `Unknown parameter "${name}" in database URL ${redactUrl(url)}: ` +
          `a ${dialect === 'sqlite' ? 'SQLite' : dialect === 'mysql' ? 'MySQL' : 'PostgreSQL'} ` +
          `URL takes ${known.join(', ')}`,
      );
    }
  }
}

const PG_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
const MYSQL_MODES: Readonly<Record<string, DbTls['mode'] | 'disable'>> = {
  DISABLED: 'disable',
  REQUIRED: 'require',
  VERIFY_CA: 'verify-ca',
  VERIFY_IDENTITY: 'verify-full',
};

/** The URL as pg reads it (pg-connection-string), with libpq's meaning of the TLS parameters. */
function postgresConfig(parsed: URL, url: string): ConnectionConfig {
  const params = parsed.searchParams;
  const modeText = params.get('sslmode');
  const mode = PG_MODES.find((m) => m === modeText) ?? null;
  if (modeText !== null && mode === null) {
    throw new Error(
      `sslmode=${modeText} is not supported: use ${PG_MODES.join(', ')}` +
        (modeText === 'prefer' || modeText === 'allow'
          ? ' (the driver cannot fall back between TLS and a plain connection)'
          : ''),
    );
  }
  const files = { sslrootcert: 'CA', sslcert: 'client certificate', sslkey: 'client key' };
  const given = Object.keys(files).filter((k) => params.has(k));
  // libpq's "system": the CAs the platform trusts, which is what Node.js does without a CA.
  const systemCa = params.get('sslrootcert') === 'system';
  if (systemCa) params.delete('sslrootcert');
  if (mode === 'disable' || mode === null) {
    if (mode === null && given.length > 0) {
      throw new Error(
        `${given.join(', ')} without sslmode: say sslmode=verify-full (or verify-ca, require)`,
      );
    }
    for (const k of Object.keys(files)) params.delete(k);
  }
  if (systemCa && mode !== 'verify-full') {
    throw new Error('sslrootcert=system goes with sslmode=verify-full only');
  }
  if (mode === 'verify-ca' && !params.has('sslrootcert')) throw noCaError('sslrootcert', url);
  let pg: ReturnType<typeof parsePgUrl>;
  try {
    pg = parsePgUrl(parsed.toString(), { useLibpqCompat: true });
  } catch (err) {
    throw certFileError(err, params, files) ?? new Error(`${(err as Error).message}`);
  }
  const config: ConnectionConfig = {
    dialect: 'postgresql',
    host: pg.host || 'localhost',
  };
  if (pg.port) config.port = Number(pg.port);
  if (pg.user) config.user = pg.user;
  if (pg.password) config.password = pg.password;
  if (pg.database) config.database = pg.database;
  if (mode !== null && mode !== 'disable') {
    const ssl = typeof pg.ssl === 'object' ? pg.ssl : {};
    config.tls = tlsOf(mode, ssl.ca, ssl.cert ?? undefined, ssl.key, { url, ca: 'sslrootcert' });
  }
  return config;
}

function mysqlConfig(parsed: URL, url: string): ConnectionConfig {
  const params = parsed.searchParams;
  const config: ConnectionConfig = { dialect: 'mysql', host: parsed.hostname || 'localhost' };
  if (parsed.port) config.port = Number(parsed.port);
  if (parsed.username) config.user = decodeURIComponent(parsed.username);
  if (parsed.password) config.password = decodeURIComponent(parsed.password);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database) config.database = database;
  const modeText = params.get('ssl-mode');
  const files = { 'ssl-ca': 'CA', 'ssl-cert': 'client certificate', 'ssl-key': 'client key' };
  const given = Object.keys(files).filter((k) => params.has(k));
  if (modeText === null) {
    if (given.length > 0) {
      throw new Error(
        `${given.join(', ')} without ssl-mode: say ssl-mode=VERIFY_IDENTITY (or VERIFY_CA, REQUIRED)`,
      );
    }
    return config;
  }
  const mode = MYSQL_MODES[modeText.toUpperCase()];
  if (!mode) {
    throw new Error(
      `ssl-mode=${modeText} is not supported: use ${Object.keys(MYSQL_MODES).join(', ')}` +
        (modeText.toUpperCase() === 'PREFERRED'
          ? ' (the driver cannot fall back to a plain connection)'
          : ''),
    );
  }
  if (mode === 'disable') return config;
  const read = (param: keyof typeof files): string | undefined => {
    const file = params.get(param);
    if (file === null) return undefined;
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(
        `Cannot read the ${files[param]} file of ${param}: ${(err as Error).message}`,
      );
    }
  };
  config.tls = tlsOf(mode, read('ssl-ca'), read('ssl-cert'), read('ssl-key'), {
    url,
    ca: 'ssl-ca',
  });
  return config;
}

function tlsOf(
  mode: DbTls['mode'],
  ca: string | undefined,
  cert: string | undefined,
  key: string | undefined,
  names: { url: string; ca: 'sslrootcert' | 'ssl-ca' },
): DbTls {
  if (mode === 'verify-ca' && !ca) throw noCaError(names.ca, names.url);
  if (!!cert !== !!key) {
    throw new Error(
      `A client certificate and its key go together (${redactUrl(names.url)}): give both or neither`,
    );
  }
  const tls: DbTls = { mode };
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  return tls;
}

function noCaError(param: 'sslrootcert' | 'ssl-ca', url: string): Error {
  return new Error(
    `${param} must name the CA that signed the server's certificate for ` +
      `${param === 'ssl-ca' ? 'ssl-mode=VERIFY_CA' : 'sslmode=verify-ca'} (${redactUrl(url)})`,
  );
}

/** An error of pg-connection-string reading a certificate file, said with the parameter. */
function certFileError(
  err: unknown,
  params: URLSearchParams,
  files: Record<string, string>,
): Error | undefined {
  const file = (err as { path?: unknown }).path;
  if (typeof file !== 'string') return undefined;
  const param = Object.keys(files).find((k) => params.get(k) === file);
  if (!param) return undefined;
  return new Error(`Cannot read the ${files[param]} file of ${param}: ${(err as Error).message}`);
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

/** A short description of the connection for logs (no password; the TLS mode if any). */
export function describeConnection(c: ConnectionConfig): string {
  if (c.dialect === 'sqlite') return `sqlite:${c.file ?? ''}`;
  const scheme = c.dialect === 'postgresql' ? 'postgres' : 'mysql';
  const user = c.user ? `${c.user}@` : '';
  const port = c.port ? `:${c.port}` : '';
  const mode = c.poolMode ? `pool_mode=${c.poolMode}` : '';
  const base = `${scheme}://${user}${c.host ?? 'localhost'}${port}/${c.database ?? ''}`;
  const tls = !c.tls
    ? ''
    : c.dialect === 'postgresql'
      ? `sslmode=${c.tls.mode}`
      : `ssl-mode=${MYSQL_MODE_NAMES[c.tls.mode]}`;
  const params = [tls, mode].filter(Boolean).join('&');
  return params ? `${base}?${params}` : base;
}

const MYSQL_MODE_NAMES: Readonly<Record<DbTls['mode'], string>> = {
  require: 'REQUIRED',
  'verify-ca': 'VERIFY_CA',
  'verify-full': 'VERIFY_IDENTITY',
};

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
