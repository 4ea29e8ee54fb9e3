/**
 * One suite, three databases: describeDatabases() runs the same tests against a fresh SQLite
 * file, a fresh PostgreSQL database and a fresh MariaDB database (EVT_TEST_DBS narrows that
 * down, outside CI).
 */
import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import { consoleLogger } from '../../src/common/log';
import type { ConnectionConfig } from '../../src/storage/config';
import { parseDbUrl } from '../../src/storage/config';
import { migrate } from '../../src/storage/migrate';
import type { Dialect } from '../../src/storage/sql';
import { EventStore, type StoreOptions } from '../../src/storage/store';
import { needServers } from './servers';

export const DIALECTS: readonly Dialect[] = ['sqlite', 'postgresql', 'mysql'];

/**
 * The databases EVT_TEST_DBS names (comma-separated, e.g. `sqlite,postgresql`), or all of them.
 * Refused with CI=true, where every database suite must run.
 */
export function selectedDialects(value = process.env['EVT_TEST_DBS']): readonly Dialect[] {
  if (value === undefined || value.trim() === '') return DIALECTS;
  if (process.env['CI'] === 'true') {
    throw new Error(`EVT_TEST_DBS=${value}: with CI=true every database runs; unset EVT_TEST_DBS`);
  }
  const names = value.split(',').map((n) => n.trim());
  for (const n of names) {
    if (!(DIALECTS as readonly string[]).includes(n)) {
      throw new Error(`EVT_TEST_DBS: unknown database "${n}" (known: ${DIALECTS.join(', ')})`);
    }
  }
  return DIALECTS.filter((d) => names.includes(d));
}

export const testLog = consoleLogger((process.env['EVT_TEST_LOG'] as 'debug') ?? 'error', 'test');

const serverUrl = (d: Dialect): string | undefined =>
  d === 'postgresql'
    ? process.env['EVT_TEST_PG_URL']
    : d === 'mysql'
      ? process.env['EVT_TEST_MYSQL_URL']
      : 'sqlite:';

/** A fresh, empty database of one kind, dropped after the suite. */
export class DbFixture {
  config!: ConnectionConfig;
  /** The URL for --db. */
  url = '';
  private dbName = '';
  private readonly opened: EventStore[] = [];

  constructor(readonly dialect: Dialect) {}

  get available(): boolean {
    return serverUrl(this.dialect) !== undefined;
  }

  async create(): Promise<void> {
    const tag = `evt_t_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
    this.dbName = tag;
    if (this.dialect === 'sqlite') {
      const file = path.join(os.tmpdir(), `${tag}.sqlite`);
      this.url = `sqlite:${file}`;
      this.config = parseDbUrl(this.url);
      return;
    }
    const base = serverUrl(this.dialect) ?? '';
    await this.admin(`CREATE DATABASE ${tag}`);
    const u = new URL(base);
    u.pathname = `/${tag}`;
    this.url = u.toString();
    this.config = parseDbUrl(this.url);
  }

  /** Runs a statement on the server's admin connection (not in the test database). */
  async admin(sql: string): Promise<void> {
    const base = serverUrl(this.dialect) ?? '';
    if (this.dialect === 'postgresql') {
      const c = new Client({ connectionString: base });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    } else if (this.dialect === 'mysql') {
      const c = await mysql.createConnection(base);
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    }
  }

  /** Opens a store on the test database with the active schema migrated. */
  async openStore(
    options: StoreOptions = {},
    config: Partial<ConnectionConfig> = {},
  ): Promise<EventStore> {
    const store = await EventStore.open(
      { ...this.config, ...config },
      { log: testLog, ...options },
    );
    this.opened.push(store);
    await migrate(store.db, store.dialect, { kind: 'active' });
    return store;
  }

  async drop(): Promise<void> {
    await Promise.all(this.opened.splice(0).map((s) => s.close().catch(() => undefined)));
    if (!this.dbName) return;
    if (this.dialect === 'sqlite') {
      for (const ext of ['', '-wal', '-shm'])
        fs.rmSync(`${this.config.file ?? ''}${ext}`, { force: true });
    } else if (this.dialect === 'postgresql') {
      await this.admin(`DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`);
    } else {
      await this.admin(`DROP DATABASE IF EXISTS ${this.dbName}`);
    }
  }
}

/**
 * Declares `title [dialect]` suites for every database (of `dialects`, as far as EVT_TEST_DBS
 * selects them), each on a fresh database.
 */
export function describeDatabases(
  title: string,
  body: (fx: DbFixture) => void,
  dialects = DIALECTS,
): void {
  const selected = selectedDialects();
  // Both servers, whatever the selection: some suites also open a database of another kind.
  needServers();
  for (const dialect of dialects.filter((d) => selected.includes(d))) {
    describe(`${title} [${dialect}]`, function () {
      const fx = new DbFixture(dialect);
      before(async function () {
        if (!fx.available) {
          if (process.env['CI'] === 'true')
            throw new Error(`No ${dialect} server for the tests (CI=true)`);
          this.skip();
        }
        await fx.create();
      });
      after(() => fx.drop());
      body(fx);
    });
  }
}

/** futoin-database AutoConfig variables (DB_EVT_*) for a connection, as its env argument takes. */
export function futoinDbEnv(config: ConnectionConfig, connLimit = 4): Record<string, string> {
  if (config.dialect === 'sqlite') {
    // AutoConfig parses _PORT as a number; a SQLite file goes in _SOCKET.
    return { DB_EVT_TYPE: 'sqlite', DB_EVT_SOCKET: config.file ?? '', DB_EVT_MAXCONN: '1' };
  }
  const env: Record<string, string> = {
    DB_EVT_TYPE: config.dialect,
    DB_EVT_HOST: config.host ?? '127.0.0.1',
    DB_EVT_MAXCONN: String(connLimit),
  };
  if (config.port) env['DB_EVT_PORT'] = String(config.port);
  if (config.user) env['DB_EVT_USER'] = config.user;
  if (config.password) env['DB_EVT_PASS'] = config.password;
  if (config.database) env['DB_EVT_DB'] = config.database;
  return env;
}

/**
 * A "database server" on 127.0.0.1 that accepts connections and hangs up on each after `ms`:
 * a database that fails, but only after a while (a refused connection fails at once).
 */
export async function hangingUpServer(
  ms: number,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
