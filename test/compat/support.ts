/**
 * Running application code written for futoin-eventstream (fixtures/reference-apps.js) with
 * either package, each run on fresh databases: the reference's on its own schema (which it does
 * not create itself), ours on empty ones (it migrates them).
 */
import fs from 'fs';
import mysql from 'mysql2/promise';
import net from 'net';
import path from 'path';
import { Client } from 'pg';
import sqlite3 from 'sqlite3';
import type { Dialect } from '../../src/storage/sql';
import { openClient } from '../../src/storage/open';
import { DbFixture, futoinDbEnv, testLog } from '../support/db';
import { waitFor } from '../support/wait';

export const REFERENCE = 'futoin-eventstream';
export const OURS = 'ftn18-eventstream';
export type Package = typeof REFERENCE | typeof OURS;

/** What a scenario gets. */
export interface AppContext {
  pkg: Package;
  /** DB_EVT_* for AutoConfig and DBServiceApp's databaseConfig. */
  env: Record<string, string>;
  /** DB_EVTDWH_*: a second fresh database of the same kind. */
  dwhEnv: Record<string, string>;
  waitFor: typeof waitFor;
  /** A port where nothing listens. */
  closedPort: number;
  /** Called by a scenario the moment the application's close completed (its callback). */
  closed(): void;
}

export type Scenario = (ctx: AppContext) => Promise<unknown>;

/* eslint-disable-next-line @typescript-eslint/no-require-imports -- plain JavaScript, as users write it */
export const apps = require('./fixtures/reference-apps') as Record<string, Scenario>;

const REFERENCE_SQL = path.join(
  path.dirname(require.resolve('futoin-eventstream/package.json')),
  'sql',
);

/** V18.1__Tables.sql → [18, 1]: Flyway's order, V18.1 before V18.1.1. */
const flywayVersion = (file: string): number[] =>
  (/^V([0-9.]+)__/.exec(file)?.[1] ?? '0').split('.').map(Number);

const byFlyway = (a: string, b: string): number => {
  const va = flywayVersion(a);
  const vb = flywayVersion(b);
  for (let i = 0; i < Math.max(va.length, vb.length); i++) {
    const d = (va[i] ?? -1) - (vb[i] ?? -1);
    if (d) return d;
  }
  return 0;
};

/** Applies the reference's schema (`active` or `dwh`) to a fresh database, as its users do. */
export async function referenceSchema(fx: DbFixture, kind: 'active' | 'dwh'): Promise<void> {
  const dir = path.join(REFERENCE_SQL, kind, fx.dialect);
  const db = await openClient(fx.config, testLog);
  try {
    for (const file of fs.readdirSync(dir).sort(byFlyway)) {
      for (const statement of fs.readFileSync(path.join(dir, file), 'utf8').split(';')) {
        const sql = statement.replace(/--[^\n]*/g, '').trim();
        if (sql) await db.execute(sql);
      }
    }
  } finally {
    await db.close();
  }
}

/** Other connections to the test database than the one asking: none once closed. */
export async function openConnections(fx: DbFixture): Promise<number | string> {
  if (fx.dialect === 'sqlite') {
    // Switching the journal mode needs the only connection to the file: SQLITE_BUSY while any
    // other is open (and an open WAL database keeps its -wal file).
    const db = new sqlite3.Database(fx.config.file ?? '');
    try {
      return await new Promise<string>((resolve, reject) =>
        db.get('PRAGMA journal_mode = DELETE', (err: Error | null, row: Record<string, string>) =>
          err ? reject(err) : resolve(row['journal_mode'] ?? ''),
        ),
      );
    } finally {
      await new Promise((resolve) => db.close(resolve));
    }
  }
  const database = fx.config.database ?? '';
  if (fx.dialect === 'postgresql') {
    const { host, port, user, password } = fx.config;
    const c = new Client({ host, port, user, password, database: 'postgres' });
    await c.connect();
    try {
      const r = await c.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1',
        [database],
      );
      return Number(r.rows[0]?.n);
    } finally {
      await c.end();
    }
  }
  const { host, port, user, password } = fx.config;
  const c = await mysql.createConnection({ host, port, user, password });
  try {
    const [rows] = await c.query(
      'SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?',
      [database],
    );
    return Number((rows as Array<{ n: number }>)[0]?.n);
  } finally {
    await c.end();
  }
}

export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** What a run leaves for checks after it: the databases, until `drop()`. */
export interface AppRun<T> {
  outcome: T;
  active: DbFixture;
  /**
   * SQLite: whether the database's WAL file was still there when the scenario's close
   * completed (`ctx.closed()`). The last connection to close removes it, so true means a
   * connection was left open; checked at once, before any later step can let it finish.
   */
  walAtClose?: boolean;
  drop(): Promise<void>;
}

/**
 * Runs scenario `name` with `pkg` on fresh databases of `dialect`; the caller drops them
 * (after checking them, if it wants).
 */
export async function runApp<T>(name: string, pkg: Package, dialect: Dialect): Promise<AppRun<T>> {
  const scenario = apps[name];
  if (!scenario) throw new Error(`No scenario ${name}`);
  const active = new DbFixture(dialect);
  const dwh = new DbFixture(dialect);
  // Once the application's connections are gone: a database dropped under them would end them
  // with an error that futoin-database's pools do not listen for (the process would crash).
  const drop = async (): Promise<void> => {
    await Promise.all(
      [active, dwh].map(async (fx) => {
        if (fx.dialect !== 'sqlite' && fx.url) {
          await waitFor(
            `connections to ${fx.dialect} to close`,
            async () => (await openConnections(fx)) === 0,
          );
        }
        await fx.drop();
      }),
    );
  };
  let walAtClose: boolean | undefined;
  const closed = (): void => {
    if (active.dialect === 'sqlite') walAtClose = fs.existsSync(`${active.config.file ?? ''}-wal`);
  };
  try {
    await active.create();
    await dwh.create();
    if (pkg === REFERENCE) {
      await referenceSchema(active, 'active');
      await referenceSchema(dwh, 'dwh');
    }
    const dwhEnv = Object.fromEntries(
      Object.entries(futoinDbEnv(dwh.config)).map(([k, v]) => [
        k.replace(/^DB_EVT_/, 'DB_EVTDWH_'),
        v,
      ]),
    );
    const outcome = (await scenario({
      pkg,
      env: futoinDbEnv(active.config),
      dwhEnv,
      waitFor,
      closedPort: await closedPort(),
      closed,
    })) as T;
    return { outcome, active, walAtClose, drop };
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
}

/** Runs a scenario with both packages; resolves with both outcomes once the databases are gone. */
export async function runBoth<T>(
  name: string,
  dialect: Dialect,
): Promise<{ reference: T; ours: T }> {
  const reference = await runApp<T>(name, REFERENCE, dialect);
  await reference.drop();
  const ours = await runApp<T>(name, OURS, dialect);
  await ours.drop();
  return { reference: reference.outcome, ours: ours.outcome };
}
