import sqlite3 from 'sqlite3';
import type { ConnectionConfig } from '../config';
import {
  Lock,
  splitStatements,
  type Row,
  type ScriptHooks,
  type SqlClient,
  type SqlRunner,
  type SqlValue,
} from '../sql';
import { commitOrMark } from '../retry';

function open(file: string): Promise<sqlite3.Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(
      file,
      sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE | sqlite3.OPEN_FULLMUTEX,
      (err) => (err ? reject(err) : resolve(db)),
    );
  });
}

function all<R>(db: sqlite3.Database, sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
  return new Promise((resolve, reject) => {
    db.all(sql, params as SqlValue[], (err, rows) => (err ? reject(err) : resolve(rows as R[])));
  });
}

function run(
  db: sqlite3.Database,
  sql: string,
  params: readonly SqlValue[] = [],
): Promise<{ affected: number }> {
  return new Promise((resolve, reject) => {
    db.run(sql, params as SqlValue[], function (this: sqlite3.RunResult, err: Error | null) {
      if (err) reject(err);
      else resolve({ affected: this.changes });
    });
  });
}

function runner(db: sqlite3.Database): SqlRunner {
  return {
    query: <R extends Row>(sql: string, params?: readonly SqlValue[]) => all<R>(db, sql, params),
    execute: (sql: string, params?: readonly SqlValue[]) => run(db, sql, params),
  };
}

/**
 * Two connections to one file in WAL mode: a writer, used by one transaction at a time under a
 * lock, and a reader for plain SELECTs, which WAL lets run beside the writer and which only ever
 * sees committed data. SQLite allows one writer at a time, so every write goes through the lock.
 */
export class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  private readonly lock = new Lock();

  private constructor(
    readonly config: ConnectionConfig,
    private readonly writer: sqlite3.Database,
    private readonly reader: sqlite3.Database,
  ) {}

  static async open(config: ConnectionConfig): Promise<SqliteClient> {
    const file = config.file;
    if (!file) throw new Error('SQLite needs a file');
    const writer = await open(file);
    const reader = await open(file);
    for (const db of [writer, reader]) {
      db.configure('busyTimeout', 10_000);
    }
    await run(writer, 'PRAGMA journal_mode = WAL');
    for (const db of [writer, reader]) {
      await run(db, `PRAGMA synchronous = ${config.synchronous ?? 'FULL'}`);
      await run(db, 'PRAGMA foreign_keys = ON');
    }
    return new SqliteClient(config, writer, reader);
  }

  query<R extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    // Reads that write (INSERT ... RETURNING) must go through the writer.
    if (/^\s*(SELECT|WITH)\b/i.test(sql)) return all<R>(this.reader, sql, params);
    return this.lock.run(() => all<R>(this.writer, sql, params));
  }

  execute(
    sql: string,
    params?: readonly SqlValue[],
  ): Promise<{ affected: number; insertId?: string }> {
    return this.lock.run(() => run(this.writer, sql, params));
  }

  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      // IMMEDIATE takes the write lock up front, so two writers never deadlock on an upgrade.
      await run(this.writer, 'BEGIN IMMEDIATE');
      try {
        const result = await work(runner(this.writer));
        await commitOrMark(() => run(this.writer, 'COMMIT'));
        return result;
      } catch (err) {
        await run(this.writer, 'ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async script(sql: string, hooks: ScriptHooks = {}): Promise<void> {
    await this.transaction(async (tx) => {
      if (hooks.before) await hooks.before(tx);
      for (const stmt of splitStatements(sql)) await tx.execute(stmt);
      if (hooks.after) await hooks.after(tx);
    });
  }

  async close(): Promise<void> {
    await this.lock.run(async () => {
      await Promise.all(
        [this.writer, this.reader].map(
          (db) =>
            new Promise<void>((resolve, reject) =>
              db.close((err) => (err ? reject(err) : resolve())),
            ),
        ),
      );
    });
  }
}
