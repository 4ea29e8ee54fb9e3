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

/** Prepared statements kept per connection (most used first out: least recently used). */
const STATEMENT_CACHE = 64;

/**
 * One SQLite connection with its prepared statements cached: preparing a statement costs about
 * as much as running a one-row INSERT.
 */
class Connection {
  /** Prepared (or preparing) statements, least recently used first. */
  private readonly statements = new Map<string, Promise<sqlite3.Statement>>();

  /** Set by close(): no statement is prepared after it, so nothing keeps the file open. */
  private closed = false;

  constructor(readonly db: sqlite3.Database) {}

  private statement(sql: string): Promise<sqlite3.Statement> {
    if (this.closed) return Promise.reject(new Error('The SQLite connection is closed'));
    let stmt = this.statements.get(sql);
    if (stmt) {
      this.statements.delete(sql); // re-inserted below: most recently used last
    } else {
      stmt = new Promise((resolve, reject) => {
        const prepared = this.db.prepare(sql, (err) => (err ? reject(err) : resolve(prepared)));
      });
      // A statement that fails to prepare is not kept.
      stmt.catch(() => this.statements.delete(sql));
      if (this.statements.size >= STATEMENT_CACHE) {
        const [oldest, old] = this.statements.entries().next().value as [
          string,
          Promise<sqlite3.Statement>,
        ];
        this.statements.delete(oldest);
        void old.then((s) => s.finalize()).catch(() => undefined);
      }
    }
    this.statements.set(sql, stmt);
    return stmt;
  }

  async all<R>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    const stmt = await this.statement(sql);
    return new Promise((resolve, reject) => {
      stmt.all(params as SqlValue[], (err: Error | null, rows: unknown[]) =>
        err ? reject(err) : resolve(rows as R[]),
      );
    });
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ affected: number }> {
    const stmt = await this.statement(sql);
    return new Promise((resolve, reject) => {
      stmt.run(params as SqlValue[], function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ affected: this.changes });
      });
    });
  }

  /** Statements that are not worth keeping (PRAGMA, BEGIN, COMMIT). */
  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.db.exec(sql, (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    // sqlite3_close refuses (SQLITE_BUSY) while a statement is not finalized, and a connection
    // left open keeps the WAL file: finalize every one, each after its pending runs.
    const statements = await Promise.allSettled(this.statements.values());
    this.statements.clear();
    await Promise.all(
      statements.map((r) =>
        r.status === 'fulfilled'
          ? new Promise<void>((resolve) => r.value.finalize(() => resolve()))
          : Promise.resolve(),
      ),
    );
    await new Promise<void>((resolve, reject) =>
      this.db.close((err) => (err ? reject(err) : resolve())),
    );
  }
}

function runner(conn: Connection): SqlRunner {
  return {
    query: <R extends Row>(sql: string, params?: readonly SqlValue[]) => conn.all<R>(sql, params),
    execute: (sql: string, params?: readonly SqlValue[]) => conn.run(sql, params),
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
  private readonly writerRunner: SqlRunner;

  private constructor(
    readonly config: ConnectionConfig,
    private readonly writer: Connection,
    private readonly reader: Connection,
  ) {
    this.writerRunner = runner(writer);
  }

  static async open(config: ConnectionConfig): Promise<SqliteClient> {
    const file = config.file;
    if (!file) throw new Error('SQLite needs a file');
    const writer = new Connection(await open(file));
    const reader = new Connection(await open(file));
    for (const c of [writer, reader]) c.db.configure('busyTimeout', 10_000);
    await writer.exec('PRAGMA journal_mode = WAL');
    for (const c of [writer, reader]) {
      await c.exec(`PRAGMA synchronous = ${config.synchronous ?? 'FULL'}`);
      await c.exec('PRAGMA foreign_keys = ON');
    }
    return new SqliteClient(config, writer, reader);
  }

  query<R extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    // Reads that write (INSERT ... RETURNING) must go through the writer.
    if (/^\s*(SELECT|WITH)\b/i.test(sql)) return this.reader.all<R>(sql, params);
    return this.lock.run(() => this.writer.all<R>(sql, params));
  }

  execute(sql: string, params?: readonly SqlValue[]): Promise<{ affected: number }> {
    return this.lock.run(() => this.writer.run(sql, params));
  }

  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      // IMMEDIATE takes the write lock up front, so two writers never deadlock on an upgrade.
      await this.writer.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(this.writerRunner);
        await commitOrMark(() => this.writer.exec('COMMIT'));
        return result;
      } catch (err) {
        await this.writer.exec('ROLLBACK').catch(() => undefined);
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
      // One after the other, the writer last: SQLite deletes the WAL file when the last
      // connection to the file closes, and two closing at once (each on a libuv thread) can each
      // see the other still open, so that neither does and the file stays behind.
      try {
        await this.reader.close();
      } finally {
        await this.writer.close();
      }
    });
  }
}
