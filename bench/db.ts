/**
 * Fresh databases for the benchmark: one per server start, of the kind asked for, dropped after.
 * SQLite: a new file in a temporary folder (WAL, synchronous=NORMAL on both sides). PostgreSQL
 * and MariaDB/MySQL: a new database on the server at EVT_BENCH_PG_URL / EVT_BENCH_MYSQL_URL
 * (default: EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL, as `.ci/databases.sh start` prints them).
 *
 * Also what the harness does to a database directly, without any service: storing the events the
 * read scenarios start from, reading back what is stored, and the raw insert rate of the
 * database from Node (the "limits" rows).
 */
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { performance } from 'perf_hooks';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import sqlite3 from 'sqlite3';

export const DB_KINDS = ['sqlite', 'postgresql', 'mysql'] as const;
export type DbKind = (typeof DB_KINDS)[number];

export const isDbKind = (s: string): s is DbKind => (DB_KINDS as readonly string[]).includes(s);

/** Connections in each server's database pool (PostgreSQL and MySQL), the same for both. */
export const POOL_SIZE = 16;

/** The event type every scenario uses. */
export const EVENT_TYPE = 'BENCH';

/** The admin URL of the database server of `kind` (undefined for SQLite and when not set). */
export function serverUrl(kind: DbKind): string | undefined {
  const env = process.env;
  if (kind === 'postgresql') return env['EVT_BENCH_PG_URL'] ?? env['EVT_TEST_PG_URL'];
  if (kind === 'mysql') return env['EVT_BENCH_MYSQL_URL'] ?? env['EVT_TEST_MYSQL_URL'];
  return undefined;
}

/** Why `kind` cannot be benchmarked here, or null when it can. */
export function unavailable(kind: DbKind): string | null {
  if (kind === 'sqlite' || serverUrl(kind)) return null;
  const v = kind === 'postgresql' ? 'EVT_TEST_PG_URL' : 'EVT_TEST_MYSQL_URL';
  return `${kind}: set ${v} (or EVT_BENCH_${kind === 'postgresql' ? 'PG' : 'MYSQL'}_URL); from the repository root, eval "$(.ci/databases.sh start)" starts throw-away servers and prints it`;
}

/** The minimal SQL access the harness needs, over sqlite3, pg or mysql2. */
export interface SqlConn {
  /** Runs one statement with `?` placeholders; resolves with the rows (objects). */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

/** UTC "now" the way both services write `ts`. */
const NOW_UTC: Record<DbKind, string> = {
  sqlite: "strftime('%Y-%m-%d %H:%M:%S', 'now')",
  postgresql: "(now() AT TIME ZONE 'UTC')",
  mysql: 'UTC_TIMESTAMP()',
};

/** `INSERT INTO table (type, data, ts)` of `n` events `{ i }` from `first`, with its parameters. */
function insertEvents(
  kind: DbKind,
  table: string,
  first: number,
  n: number,
): [sql: string, params: unknown[]] {
  const rows = Array.from({ length: n }, () => `(?, ?, ${NOW_UTC[kind]})`);
  const params = Array.from({ length: n }, (_v, i) => [
    EVENT_TYPE,
    JSON.stringify({ i: first + i }),
  ]).flat();
  return [`INSERT INTO ${table} (type, data, ts) VALUES ${rows.join(', ')}`, params];
}

async function openSqlite(file: string): Promise<SqlConn> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const d = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(d)));
  });
  db.configure('busyTimeout', 10_000);
  const conn: SqlConn = {
    query: <R>(sql: string, params: unknown[] = []) =>
      new Promise<R[]>((resolve, reject) =>
        db.all(sql, params, (err: Error | null, rows: R[]) => (err ? reject(err) : resolve(rows))),
      ),
    close: () =>
      new Promise<void>((resolve, reject) => db.close((e) => (e ? reject(e) : resolve()))),
  };
  await conn.query('PRAGMA journal_mode = WAL');
  await conn.query('PRAGMA synchronous = NORMAL');
  return conn;
}

async function openPg(url: string): Promise<SqlConn> {
  const c = new Client({ connectionString: url });
  await c.connect();
  return {
    query: async <R>(sql: string, params: unknown[] = []) => {
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${++n}`);
      return (await c.query(text, params)).rows as R[];
    },
    close: () => c.end(),
  };
}

async function openMysql(url: string): Promise<SqlConn> {
  const c = await mysql.createConnection(url);
  return {
    query: async <R>(sql: string, params: unknown[] = []) => {
      const [rows] = await c.query(sql, params);
      return (Array.isArray(rows) ? rows : []) as R[];
    },
    close: () => c.end(),
  };
}

/** Runs `body` on a connection to the server's admin database. */
async function withAdmin<T>(kind: DbKind, body: (c: SqlConn) => Promise<T>): Promise<T> {
  const url = serverUrl(kind);
  if (!url) throw new Error(unavailable(kind) ?? `no ${kind} server`);
  const c = kind === 'postgresql' ? await openPg(url) : await openMysql(url);
  try {
    return await body(c);
  } finally {
    await c.close();
  }
}

let counter = 0;

/** A fresh, empty database; `drop()` removes it. */
export class FreshDb {
  private constructor(
    readonly kind: DbKind,
    /** The database name, or for SQLite the file. */
    readonly name: string,
    /** Connection URL of the database itself (pg/mysql URL, or sqlite:FILE). */
    private readonly dbUrl: string,
    private readonly tmpDir: string | null,
  ) {}

  /**
   * `prefix` starts the database's name, so that a script's leftovers on a shared server can be
   * told apart (and dropped) by it.
   */
  static async create(kind: DbKind, prefix = 'evtbench'): Promise<FreshDb> {
    const tag = `${prefix}_${process.pid}_${++counter}_${crypto.randomBytes(3).toString('hex')}`;
    if (kind === 'sqlite') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtbench-'));
      const file = path.join(dir, `${tag}.sqlite`);
      return new FreshDb(kind, file, `sqlite:${file}`, dir);
    }
    await withAdmin(kind, (c) => c.query(`CREATE DATABASE ${tag}`));
    const u = new URL(serverUrl(kind) ?? '');
    u.pathname = `/${tag}`;
    return new FreshDb(kind, tag, u.toString(), null);
  }

  /** `--db` for our service: the same durability and pool size as the reference gets. */
  get ourUrl(): string {
    if (this.kind === 'sqlite') return `${this.dbUrl}?synchronous=normal`;
    const u = new URL(this.dbUrl);
    u.searchParams.set('max', String(POOL_SIZE));
    return u.toString();
  }

  /** futoin-database AutoConfig variables for the reference (`#db.evt`). */
  get referenceEnv(): Record<string, string> {
    if (this.kind === 'sqlite') return { DB_EVT_TYPE: 'sqlite', DB_EVT_SOCKET: this.name };
    const u = new URL(this.dbUrl);
    const env: Record<string, string> = {
      DB_EVT_TYPE: this.kind,
      DB_EVT_HOST: u.hostname,
      DB_EVT_PORT: u.port || (this.kind === 'postgresql' ? '5432' : '3306'),
      DB_EVT_DB: this.name,
      DB_EVT_MAXCONN: String(POOL_SIZE),
    };
    if (u.username) env['DB_EVT_USER'] = decodeURIComponent(u.username);
    if (u.password) env['DB_EVT_PASS'] = decodeURIComponent(u.password);
    return env;
  }

  connect(): Promise<SqlConn> {
    if (this.kind === 'sqlite') return openSqlite(this.name);
    if (this.kind === 'postgresql') return openPg(this.dbUrl);
    return openMysql(this.dbUrl);
  }

  /**
   * Stores `count` events in evt_queue (created by the service under test) as both services
   * store them: type, JSON text data, UTC timestamp; 500 rows per INSERT and transaction.
   * Resolves with every ID in the table, in ID order.
   */
  async seed(count: number, batch = 500): Promise<string[]> {
    const c = await this.connect();
    try {
      for (let done = 0; done < count; done += batch) {
        await c.query(...insertEvents(this.kind, 'evt_queue', done, Math.min(batch, count - done)));
      }
      const ids = await c.query<{ id: unknown }>('SELECT id FROM evt_queue ORDER BY id');
      return ids.map((r) => String(r.id));
    } finally {
      await c.close();
    }
  }

  /** Every stored event's ID and data (parsed), in ID order. */
  async stored(): Promise<{ id: string; data: unknown }[]> {
    const c = await this.connect();
    try {
      const rows = await c.query<{ id: unknown; data: unknown }>(
        'SELECT id, data FROM evt_queue ORDER BY id',
      );
      return rows.map((r) => ({
        id: String(r.id),
        // pg parses JSON columns itself; SQLite and MySQL return the text.
        data: typeof r.data === 'string' ? (JSON.parse(r.data) as unknown) : r.data,
      }));
    } finally {
      await c.close();
    }
  }

  /** The server's version and the durability settings in force. */
  async version(): Promise<string> {
    const c = await this.connect();
    const one = async (sql: string): Promise<string> => {
      const [row] = await c.query<Record<string, unknown>>(sql);
      return String(Object.values(row ?? {})[0]);
    };
    try {
      if (this.kind === 'sqlite') {
        return `SQLite ${await one('SELECT sqlite_version()')} (journal_mode=WAL, synchronous=NORMAL)`;
      }
      if (this.kind === 'postgresql') {
        const settings = ['fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers'];
        const shown = [];
        for (const s of settings) shown.push(`${s}=${await one(`SHOW ${s}`)}`);
        return `${await one('SELECT version()')} (${shown.join(', ')})`;
      }
      const flush = await one('SELECT @@innodb_flush_log_at_trx_commit');
      const binlog = await one('SELECT @@log_bin');
      return `${await one('SELECT version()')} (innodb_flush_log_at_trx_commit=${flush}, log_bin=${binlog})`;
    } finally {
      await c.close();
    }
  }

  async drop(): Promise<void> {
    if (this.tmpDir) {
      fs.rmSync(this.tmpDir, { recursive: true, force: true });
    } else if (this.kind === 'postgresql') {
      await withAdmin(this.kind, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`),
      );
    } else {
      await withAdmin(this.kind, (c) => c.query(`DROP DATABASE IF EXISTS ${this.name}`));
    }
  }
}

/** What the database itself does from Node: one connection, no service in between. */
export interface RawInsertResult {
  /** Rows per second, one INSERT (and transaction) per row, one after another. */
  single: number;
  /** Rows per second, `batch` rows per INSERT and transaction. */
  batched: number;
  batch: number;
  /** Rows counted in the table afterwards, and how many were inserted. */
  stored: number;
  expected: number;
}

const RAW_TABLE: Record<DbKind, string> = {
  sqlite:
    'CREATE TABLE raw_insert (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, type VARCHAR(16) NOT NULL, data TEXT NOT NULL, ts TIMESTAMP NOT NULL)',
  postgresql:
    'CREATE TABLE raw_insert (id BIGSERIAL NOT NULL PRIMARY KEY, type VARCHAR(16) NOT NULL, data JSON NOT NULL, ts TIMESTAMP NOT NULL)',
  mysql:
    'CREATE TABLE raw_insert (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, type VARCHAR(16) NOT NULL, data LONGTEXT NOT NULL, ts DATETIME NOT NULL) ENGINE=InnoDB',
};

/**
 * The raw insert rate of a fresh database of `kind`, from Node over one connection, into a table
 * shaped like evt_queue: `single` rows one per transaction, then `total` rows in batches.
 */
export async function rawInsert(
  kind: DbKind,
  single: number,
  total: number,
  batch = 100,
): Promise<RawInsertResult> {
  const db = await FreshDb.create(kind);
  try {
    const c = await db.connect();
    try {
      await c.query(RAW_TABLE[kind]);
      let t0 = performance.now();
      for (let i = 0; i < single; i++) await c.query(...insertEvents(kind, 'raw_insert', i, 1));
      const singleRate = single / ((performance.now() - t0) / 1000);

      t0 = performance.now();
      for (let done = 0; done < total; done += batch) {
        await c.query(...insertEvents(kind, 'raw_insert', done, Math.min(batch, total - done)));
      }
      const batchedRate = total / ((performance.now() - t0) / 1000);
      const [row] = await c.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM raw_insert');
      return {
        single: singleRate,
        batched: batchedRate,
        batch,
        stored: Number(row?.n),
        expected: single + total,
      };
    } finally {
      await c.close();
    }
  } finally {
    await db.drop();
  }
}
