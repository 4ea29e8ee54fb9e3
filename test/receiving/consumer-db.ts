/**
 * A consumer's own database for the TransactionalReceiver suites: the plain driver of each kind
 * (pg, mysql2, sqlite3) or futoin-database, a table `applied` that records each applied event as
 * a row with a unique event_id (its `seq` counts the order of application), and a handler that
 * inserts the events of a batch there in the receiver's transaction.
 */
import type { L2Face, XferBuilder } from 'futoin-database';
import type { AdvancedCCM } from 'futoin-invoker';
import mysql from 'mysql2/promise';
import { Client, Pool } from 'pg';
import sqlite3 from 'sqlite3';
import type { Event } from '../../src/common/event';
import {
  futoinDatabase,
  mysqlDatabase,
  pgDatabase,
  sqliteDatabase,
  type ConsumerStateStore,
} from '../../src/receiving/consumer-state';
import type { ConnectionConfig } from '../../src/storage/config';
import type { Dialect } from '../../src/storage/sql';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import { testLog } from '../support/db';
import { steps } from '../support/service';

/** The table of applied events, `name` in the consumer's database. */
export function appliedDdl(dialect: Dialect, name: string): string {
  switch (dialect) {
    case 'sqlite':
      return `CREATE TABLE ${name} (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id VARCHAR(20) NOT NULL UNIQUE)`;
    case 'postgresql':
      return `CREATE TABLE ${name} (seq BIGSERIAL PRIMARY KEY, event_id VARCHAR(20) NOT NULL UNIQUE)`;
    case 'mysql':
      return `CREATE TABLE ${name} (seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, event_id VARCHAR(20) NOT NULL UNIQUE) ENGINE=InnoDB`;
  }
}

/** INSERT of `n` rows into `name` with `?` placeholders (`$n` for pg). */
const insertRows = (name: string, n: number, pg = false): string =>
  `INSERT INTO ${name} (event_id) VALUES ${Array.from({ length: n }, (_, i) => (pg ? `($${i + 1})` : '(?)')).join(', ')}`;

/** The consumer's database through one kind of handle, and what a test needs around it. */
export interface ConsumerDb<H = unknown> {
  readonly adapter: string;
  readonly store: ConsumerStateStore<H>;
  /** Inserts the events into `table` in the receiver's transaction. */
  insert(handle: H, table: string, events: readonly Event[]): Promise<void>;
  /** A statement outside any transaction. */
  exec(sql: string): Promise<void>;
  /** event_id of `table`, in the order applied. */
  applied(table: string): Promise<string[]>;
  close(): Promise<void>;
}

function sqliteRun(db: sqlite3.Database, sql: string, params: unknown[] = []): Promise<void> {
  return new Promise((resolve, reject) =>
    db.run(sql, params, (err) => (err ? reject(err) : resolve())),
  );
}

function sqliteAll<R>(db: sqlite3.Database, sql: string): Promise<R[]> {
  return new Promise((resolve, reject) =>
    db.all(sql, [], (err, rows) => (err ? reject(err) : resolve(rows as R[]))),
  );
}

/** A sqlite3 Database on `file`, waiting for other connections' locks. */
export async function openSqlite(file: string): Promise<sqlite3.Database> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const d = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(d)));
  });
  db.configure('busyTimeout', 30_000);
  await sqliteRun(db, 'PRAGMA journal_mode = WAL');
  return db;
}

const ORDERED = (table: string): string => `SELECT event_id FROM ${table} ORDER BY seq`;

/** The adapters a database kind can be reached through. */
export function adaptersOf(dialect: Dialect): string[] {
  const plain = {
    sqlite: ['sqlite3'],
    postgresql: ['pg Pool', 'pg Client'],
    mysql: ['mysql2 Pool', 'mysql2 Connection'],
  };
  return [...plain[dialect], 'futoin-database'];
}

/** Opens the consumer's database `config` through `adapter` (see adaptersOf). */
export async function openConsumerDb(
  config: ConnectionConfig,
  url: string,
  adapter: string,
  ccm: AdvancedCCM,
  /** futoin-database: the connection's name (#db.NAME), one per open. */
  name = 'consumer',
): Promise<ConsumerDb> {
  switch (adapter) {
    case 'sqlite3': {
      const db = await openSqlite(config.file ?? '');
      const out: ConsumerDb<sqlite3.Database> = {
        adapter,
        store: sqliteDatabase(db),
        insert: (h, table, events) =>
          sqliteRun(
            h,
            insertRows(table, events.length),
            events.map((e) => e.id),
          ),
        exec: (sql) => sqliteRun(db, sql),
        applied: async (table) =>
          (await sqliteAll<{ event_id: string }>(db, ORDERED(table))).map((r) => r.event_id),
        close: () => new Promise((resolve) => db.close(() => resolve())),
      };
      return out;
    }
    case 'pg Pool':
    case 'pg Client': {
      const pool = new Pool({ connectionString: url, max: 4 });
      const client = new Client({ connectionString: url });
      await client.connect();
      const out: ConsumerDb<Pick<Client, 'query'>> = {
        adapter,
        store: adapter === 'pg Pool' ? pgDatabase(pool) : pgDatabase(client),
        insert: async (h, table, events) => {
          await h.query(
            insertRows(table, events.length, true),
            events.map((e) => e.id),
          );
        },
        exec: async (sql) => {
          await pool.query(sql);
        },
        applied: async (table) =>
          (await pool.query<{ event_id: string }>(ORDERED(table))).rows.map((r) => r.event_id),
        close: async () => {
          await client.end();
          await pool.end();
        },
      };
      return out;
    }
    case 'mysql2 Pool':
    case 'mysql2 Connection': {
      const pool = mysql.createPool({ uri: url, connectionLimit: 4 });
      const conn = await mysql.createConnection(url);
      const out: ConsumerDb<Pick<mysql.Connection, 'query'>> = {
        adapter,
        store: adapter === 'mysql2 Pool' ? mysqlDatabase(pool) : mysqlDatabase(conn),
        insert: async (h, table, events) => {
          await h.query(
            insertRows(table, events.length),
            events.map((e) => e.id),
          );
        },
        exec: async (sql) => {
          await pool.query(sql);
        },
        applied: async (table) => {
          const [rows] = await pool.query(ORDERED(table));
          return (rows as { event_id: string }[]).map((r) => r.event_id);
        },
        close: async () => {
          await conn.end();
          await pool.end();
        },
      };
      return out;
    }
    case 'futoin-database': {
      await steps((as) => registerFutoinDb(as, ccm, name, config, testLog));
      const db = ccm.iface<L2Face>(`#db.${name}`);
      const out: ConsumerDb<XferBuilder> = {
        adapter,
        store: futoinDatabase(db),
        insert: (xfer, table, events) => {
          for (const e of events) xfer.insert(table).set('event_id', e.id);
          return Promise.resolve();
        },
        exec: (sql) => steps((as) => db.query(as, sql)),
        applied: async (table) =>
          (
            await steps<Record<string, unknown>[]>((as) =>
              db.select(table).get('event_id').order('seq').executeAssoc(as),
            )
          ).map((r) => String(r['event_id'])),
        close: () => Promise.resolve(),
      };
      return out;
    }
    default:
      throw new Error(`Unknown adapter ${adapter}`);
  }
}
