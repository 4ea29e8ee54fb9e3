import $as from 'futoin-asyncsteps';
import type { L2Face, XferBuilder } from 'futoin-database';
import { ErrorCode, isEvtError, runSteps } from '../common/errors';
import type { EventId } from '../common/ids';

/**
 * Where a TransactionalReceiver keeps the last event it applied: a small table in the consumer's
 * own database, written in the same transaction as the consumer's effects. No database driver
 * is loaded here: each adapter works on the handle the consumer passes in (a pg Pool or Client,
 * a mysql2 promise Pool or Connection, a sqlite3 Database, a futoin-database L2Face), or on any
 * other driver through `sqlStateStore`.
 */

export type ConsumerDialect = 'sqlite' | 'postgresql' | 'mysql';

/** The default table of consumer positions. */
export const CONSUMER_STATE_TABLE = 'evt_consumer_state';

/**
 * What a TransactionalReceiver needs of the consumer's database. `H` is what its handler gets:
 * the driver's own handle inside the transaction (a pg client, a mysql2 connection, a sqlite3
 * Database, a futoin-database XferBuilder).
 */
export interface ConsumerStateStore<H> {
  /**
   * Creates the table when `create` and it is missing (see consumerStateDdl), and the
   * consumer's row at '0' when it has none. Safe to run at every start, from several processes.
   */
  prepare(table: string, consumer: string, create: boolean): Promise<void>;
  /** The last event ID applied for `consumer` ('0': none yet). */
  position(table: string, consumer: string): Promise<EventId>;
  /**
   * One transaction: the consumer's position moved from `from` to `to` (only while it is still
   * `from`) and `work` done with the handle. Both commit, or neither: resolves false when the
   * position was no longer `from` (someone else applied meanwhile), rejects when `work` or the
   * database failed.
   */
  apply(
    table: string,
    consumer: string,
    from: EventId,
    to: EventId,
    work: (handle: H) => Promise<void> | void,
  ): Promise<boolean>;
  /**
   * One transaction with `work` alone, the position left as it is: for replayed parked events,
   * whose IDs lie below it.
   */
  applyAside(
    table: string,
    consumer: string,
    work: (handle: H) => Promise<void> | void,
  ): Promise<void>;
}

const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A table name we can put into SQL as it is (letters, digits and _). */
export function checkTableName(name: string): string {
  if (!IDENTIFIER_RE.test(name)) throw new TypeError(`Invalid table name: ${JSON.stringify(name)}`);
  return name;
}

const quote = (dialect: ConsumerDialect, name: string): string =>
  dialect === 'mysql' ? `\`${checkTableName(name)}\`` : `"${checkTableName(name)}"`;

/**
 * The table's definition, for consumers that create their tables with their own migration tool
 * (`createTable: false`). Event IDs are kept as their decimal text (they pass 2^53, and some
 * drivers read BIGINT as a JS number); the receiver only compares them for equality in SQL.
 * This shape is fixed: a later version that needs more adds it at start, idempotently, and
 * never changes what is there.
 */
export function consumerStateDdl(dialect: ConsumerDialect, table = CONSUMER_STATE_TABLE): string {
  const t = quote(dialect, table);
  if (dialect === 'mysql') {
    return (
      `CREATE TABLE IF NOT EXISTS ${t} (consumer VARCHAR(128) NOT NULL PRIMARY KEY, ` +
      'last_id VARCHAR(20) NOT NULL, updated_at DATETIME NOT NULL) ' +
      'ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'
    );
  }
  return (
    `CREATE TABLE IF NOT EXISTS ${t} (consumer VARCHAR(128) NOT NULL PRIMARY KEY, ` +
    'last_id VARCHAR(20) NOT NULL, updated_at TIMESTAMP NOT NULL)'
  );
}

/** The statements on the table, `?` placeholders. */
function statements(dialect: ConsumerDialect, table: string) {
  const t = quote(dialect, table);
  const columns = `${t} (consumer, last_id, updated_at) VALUES (?, '0', CURRENT_TIMESTAMP)`;
  return {
    addRow:
      dialect === 'sqlite'
        ? `INSERT OR IGNORE INTO ${columns}`
        : dialect === 'mysql'
          ? `INSERT IGNORE INTO ${columns}`
          : `INSERT INTO ${columns} ON CONFLICT (consumer) DO NOTHING`,
    position: `SELECT last_id FROM ${t} WHERE consumer = ?`,
    /** Params: to, consumer, from. */
    move: `UPDATE ${t} SET last_id = ?, updated_at = CURRENT_TIMESTAMP WHERE consumer = ? AND last_id = ?`,
  };
}

/** One transaction open on a driver. */
export interface SqlTransaction<H> {
  /** What the handler gets: the driver's handle inside this transaction. */
  readonly handle: H;
  /** The rows of a statement with `?` placeholders. */
  query(sql: string, params: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** How many rows a statement with `?` placeholders changed. */
  execute(sql: string, params: readonly unknown[]): Promise<number>;
}

/** A driver as sqlStateStore uses it. */
export interface SqlDriver<H> {
  readonly dialect: ConsumerDialect;
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it rejects. */
  transaction<R>(work: (tx: SqlTransaction<H>) => Promise<R>): Promise<R>;
}

/** Thrown inside a transaction to roll it back: the position had moved. */
class PositionMoved extends Error {}

/** The state store of any SQL driver with transactions. */
export function sqlStateStore<H>(driver: SqlDriver<H>): ConsumerStateStore<H> {
  const sql = (table: string) => statements(driver.dialect, table);
  return {
    async prepare(table, consumer, create) {
      await driver.transaction(async (tx) => {
        if (create) await tx.execute(consumerStateDdl(driver.dialect, table), []);
      });
      await driver.transaction((tx) => tx.execute(sql(table).addRow, [consumer]));
    },
    async position(table, consumer) {
      const rows = await driver.transaction((tx) => tx.query(sql(table).position, [consumer]));
      return positionOf(rows, table, consumer);
    },
    async apply(table, consumer, from, to, work) {
      try {
        await driver.transaction(async (tx) => {
          // First: it also locks the row, so a second instance waits here rather than working.
          if ((await tx.execute(sql(table).move, [to, consumer, from])) !== 1)
            throw new PositionMoved();
          await work(tx.handle);
        });
        return true;
      } catch (err) {
        if (err instanceof PositionMoved) return false;
        throw err;
      }
    },
    async applyAside(table, consumer, work) {
      await driver.transaction(async (tx) => {
        // Read first, as apply() updates first: the consumer's row must be there.
        positionOf(await tx.query(sql(table).position, [consumer]), table, consumer);
        await work(tx.handle);
      });
    },
  };
}

function positionOf(rows: readonly Record<string, unknown>[], table: string, consumer: string) {
  const value = rows[0]?.['last_id'];
  if (typeof value !== 'string') {
    throw new Error(`No row for consumer ${JSON.stringify(consumer)} in ${table}: not prepared`);
  }
  return value;
}

/** Runs promise work one at a time (transactions on one connection). */
function serialized(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const result = tail.then(work);
    tail = result.catch(() => undefined);
    return result;
  };
}

/** `?` placeholders as PostgreSQL's $1, $2, ... (our statements have no `?` elsewhere). */
const pgText = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

// --- pg ------------------------------------------------------------------------------------

/** What is used of a pg Client (or a pool's client). */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * What is used of a pg Pool: `connect()`. Its callback form is declared too, as pg's Pool has
 * it, so that TypeScript infers the pool's client type for the handler from both.
 */
export interface PgPoolLike<C extends PgClientLike> {
  connect(): Promise<C & { release(err?: Error | boolean): void }>;
  connect(
    callback: (
      err: Error | undefined,
      client: C | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): void;
  readonly totalCount: number;
}

function pgDriver<C extends PgClientLike>(db: PgPoolLike<C> | C): SqlDriver<C> {
  const one = serialized();
  const run = async <R>(client: C, work: (tx: SqlTransaction<C>) => Promise<R>): Promise<R> => {
    await client.query('BEGIN');
    try {
      const result = await work({
        handle: client,
        query: async (sql, params) =>
          (await client.query(pgText(sql), [...params])).rows as Record<string, unknown>[],
        execute: async (sql, params) =>
          (await client.query(pgText(sql), [...params])).rowCount ?? 0,
      });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  };
  const isPool = (d: PgPoolLike<C> | C): d is PgPoolLike<C> => 'totalCount' in d;
  return {
    dialect: 'postgresql',
    async transaction(work) {
      if (!isPool(db)) return one(() => run(db, work));
      const client = await db.connect();
      let failure: Error | undefined;
      try {
        return await run(client, work);
      } catch (err) {
        // A connection whose ROLLBACK may not have run must not go back to the pool.
        failure = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        client.release(failure);
      }
    },
  };
}

/**
 * The state store on PostgreSQL through `pg`: a Pool (each batch on a client of its own; the
 * handler gets that client) or a connected Client (batches one at a time on it).
 */
export function pgDatabase<C extends PgClientLike>(pool: PgPoolLike<C>): ConsumerStateStore<C>;
export function pgDatabase<C extends PgClientLike>(client: C): ConsumerStateStore<C>;
export function pgDatabase<C extends PgClientLike>(db: PgPoolLike<C> | C): ConsumerStateStore<C> {
  return sqlStateStore(pgDriver(db));
}

// --- mysql2 --------------------------------------------------------------------------------

/** What is used of a mysql2/promise Connection (or a pool's connection). */
export interface MysqlConnectionLike {
  query(sql: string, values?: unknown): Promise<[unknown, unknown]>;
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** What is used of a mysql2/promise Pool. */
export interface MysqlPoolLike<C extends MysqlConnectionLike> {
  getConnection(): Promise<C & { release(): void }>;
}

/**
 * The state store on MySQL or MariaDB through `mysql2/promise`: a Pool (each batch on a
 * connection of its own; the handler gets that connection) or a Connection (batches one at a
 * time on it). For mysql2's callback API, pass its `.promise()`.
 */
export function mysqlDatabase<C extends MysqlConnectionLike>(
  pool: MysqlPoolLike<C>,
): ConsumerStateStore<C>;
export function mysqlDatabase<C extends MysqlConnectionLike>(connection: C): ConsumerStateStore<C>;
export function mysqlDatabase<C extends MysqlConnectionLike>(
  db: MysqlPoolLike<C> | C,
): ConsumerStateStore<C> {
  const one = serialized();
  const run = async <R>(conn: C, work: (tx: SqlTransaction<C>) => Promise<R>): Promise<R> => {
    await conn.beginTransaction();
    try {
      const result = await work({
        handle: conn,
        query: async (sql, params) => {
          const [rows] = await conn.query(sql, [...params]);
          return (Array.isArray(rows) ? rows : []) as Record<string, unknown>[];
        },
        execute: async (sql, params) => {
          const [header] = await conn.query(sql, [...params]);
          return Number((header as { affectedRows?: unknown }).affectedRows ?? 0);
        },
      });
      await conn.commit();
      return result;
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    }
  };
  const isPool = (d: MysqlPoolLike<C> | C): d is MysqlPoolLike<C> => !('beginTransaction' in d);
  return sqlStateStore<C>({
    dialect: 'mysql',
    async transaction(work) {
      if (!isPool(db)) return one(() => run(db, work));
      const conn = await db.getConnection();
      try {
        return await run(conn, work);
      } finally {
        conn.release();
      }
    },
  });
}

// --- sqlite3 -------------------------------------------------------------------------------

/** What is used of a sqlite3 Database. */
export interface SqliteDatabaseLike {
  run(
    sql: string,
    params: unknown[],
    callback: (this: { changes: number }, err: Error | null) => void,
  ): unknown;
  all(
    sql: string,
    params: unknown[],
    callback: (err: Error | null, rows: unknown[]) => void,
  ): unknown;
}

/**
 * The state store on SQLite through `sqlite3`: batches one at a time on the Database, each in a
 * `BEGIN IMMEDIATE` transaction; the handler gets the Database. Give the receiver a Database of
 * its own (another connection to the same file), so that no other code's statements run inside
 * its transactions, and set its busyTimeout if other connections write to the file.
 */
export function sqliteDatabase<D extends SqliteDatabaseLike>(db: D): ConsumerStateStore<D> {
  const one = serialized();
  const run = (sql: string, params: readonly unknown[]): Promise<number> =>
    new Promise((resolve, reject) => {
      db.run(sql, [...params], function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      });
    });
  const all = (sql: string, params: readonly unknown[]): Promise<Record<string, unknown>[]> =>
    new Promise((resolve, reject) => {
      db.all(sql, [...params], (err, rows) =>
        err ? reject(err) : resolve(rows as Record<string, unknown>[]),
      );
    });
  return sqlStateStore<D>({
    dialect: 'sqlite',
    transaction: (work) =>
      one(async () => {
        await run('BEGIN IMMEDIATE', []);
        try {
          const result = await work({ handle: db, query: all, execute: run });
          await run('COMMIT', []);
          return result;
        } catch (err) {
          await run('ROLLBACK', []).catch(() => undefined);
          throw err;
        }
      }),
  });
}

// --- futoin-database -----------------------------------------------------------------------

/** FutoIn calls from promise code, each in a step of its own (getFlavour may succeed at once). */
const steps = <T>(body: Parameters<typeof runSteps>[1]): Promise<T> =>
  runSteps<T>(
    () => $as(),
    (as) => as.add((as) => body(as)),
  );

/**
 * The state store on a futoin-database connection (`ccm.db('name')`, an L2Face): each batch is
 * one XferBuilder transaction, which the handler gets to add its statements to (it runs them
 * all at once, with the position's update first, when the handler returns). A condition of the
 * handler's statements that fails (`affected`, `selected`) fails the batch like any error.
 */
export function futoinDatabase(db: L2Face): ConsumerStateStore<XferBuilder> {
  let dialect: Promise<ConsumerDialect> | null = null;
  const flavour = (): Promise<ConsumerDialect> =>
    (dialect ??= steps<string>((as) => db.getFlavour(as)).then((f) => {
      if (f !== 'sqlite' && f !== 'postgresql' && f !== 'mysql') {
        throw new TypeError(`futoinDatabase: database type ${f} is not supported`);
      }
      return f;
    }));
  // Our statements with their values written in (futoin-database's L1 query takes no params).
  const inline = (sql: string, params: readonly unknown[]): string => {
    let i = 0;
    return sql.replace(/\?/g, () => db.helpers().escape(params[i++]));
  };
  const state = {
    async prepare(table: string, consumer: string, create: boolean) {
      const d = await flavour();
      if (create) await steps((as) => db.query(as, consumerStateDdl(d, table)));
      await steps((as) => db.query(as, inline(statements(d, table).addRow, [consumer])));
    },
    async position(table: string, consumer: string) {
      const d = await flavour();
      const rows = await steps<Record<string, unknown>[]>((as) =>
        db.select(quote(d, table)).get('last_id').where('consumer', consumer).executeAssoc(as),
      );
      return positionOf(rows, table, consumer);
    },
    async apply(
      table: string,
      consumer: string,
      from: EventId,
      to: EventId,
      work: (xfer: XferBuilder) => Promise<void> | void,
    ) {
      const d = await flavour();
      const xfer = db.newXfer();
      xfer.raw(inline(statements(d, table).move, [to, consumer, from]), null, { affected: 1 });
      await work(xfer);
      try {
        await steps((as) => xfer.execute(as));
        return true;
      } catch (err) {
        if (!isEvtError(err) || err.code !== ErrorCode.XferCondition) throw err;
        // Ours, or a condition of the handler's statements: the position tells.
        if ((await state.position(table, consumer)) !== from) return false;
        throw err;
      }
    },
    async applyAside(
      table: string,
      consumer: string,
      work: (xfer: XferBuilder) => Promise<void> | void,
    ) {
      const d = await flavour();
      const xfer = db.newXfer();
      // The consumer's row must be there (prepared), as apply() requires.
      xfer.raw(inline(statements(d, table).position, [consumer]), null, { selected: 1 });
      await work(xfer);
      await steps((as) => xfer.execute(as));
    },
  };
  return state;
}
