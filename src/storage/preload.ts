import type L2Service from 'futoin-database/L2Service';
import {
  isFrozenAssignment,
  isPrototypeFrozen,
  loadDespiteFrozenPrototype,
} from '../common/frozen-prototype';
import type { Logger } from '../common/log';
import type { ConnectionConfig } from './config';
import type { Dialect, SqlClient } from './sql';

/** Opens a connection of our driver adapter. */
export type OpenClient = (config: ConnectionConfig, log: Logger) => Promise<SqlClient>;

/**
 * The modules of each database kind: our driver adapter (with pg, mysql2 or sqlite3) and
 * futoin-database's service for it. Each is loaded on first use only, so a process serving
 * SQLite does not carry pg and mysql2 in memory (and the other way round).
 */
const MODULES: Record<
  Dialect,
  { driver(): Promise<OpenClient>; futoinService(): Promise<typeof L2Service> }
> = {
  sqlite: {
    driver: async () => {
      const { SqliteClient } = await import('./drivers/sqlite');
      return (config) => SqliteClient.open(config);
    },
    futoinService: async () => (await import('futoin-database/SQLiteService')).default,
  },
  postgresql: {
    driver: async () => {
      const { PostgresClient } = await import('./drivers/postgres');
      return async (config, log) => new PostgresClient(config, log);
    },
    futoinService: async () => (await import('futoin-database/PostgreSQLService')).default,
  },
  mysql: {
    driver: async () => {
      // mysql2 reads 64-bit integers with `long`, which cannot load under a frozen prototype.
      loadDespiteFrozenPrototype('long', require.resolve('mysql2'));
      const { MysqlClient } = await import('./drivers/mysql');
      return async (config, log) => new MysqlClient(config, log);
    },
    futoinService: async () => (await import('futoin-database/MySQLService')).default,
  },
};

/**
 * Runs a module load; a failure that the frozen Object.prototype caused (a library we do not
 * know to load safely) fails at once with an error that says so and what to do.
 */
async function loading<T>(dialect: Dialect, what: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (!isPrototypeFrozen() || !isFrozenAssignment(err)) throw err;
    throw new Error(
      `The ${dialect} ${what} cannot load: Object.prototype is frozen (futoin-executor's` +
        ` secureObjectPrototype) and a library of it assigns to a prototype` +
        ` (${(err as Error).message}). Call loadDatabaseModules('${dialect}') before` +
        ` constructing the executor.`,
      { cause: err },
    );
  }
}

/** Our driver adapter for a database kind (loaded now if it was not). */
export const loadDriver = (dialect: Dialect): Promise<OpenClient> =>
  loading(dialect, 'database driver', () => MODULES[dialect].driver());

/** futoin-database's service class for a database kind (loaded now if it was not). */
export const loadFutoinDbService = (dialect: Dialect): Promise<typeof L2Service> =>
  loading(dialect, 'futoin-database service', () => MODULES[dialect].futoinService());

/**
 * Loads the modules a database kind needs (see MODULES) now rather than on first use. Not
 * needed for a frozen Object.prototype (futoin-executor's NodeExecutor freezes it): the
 * libraries known to fail to load after that (mysql2's `long`, futoin-database's `moment`) are
 * loaded safely whenever they load. Useful to load a library that is not, or to pay the load
 * time at start.
 */
export async function loadDatabaseModules(...dialects: readonly Dialect[]): Promise<void> {
  for (const dialect of new Set(dialects)) {
    await loadDriver(dialect);
    await loadFutoinDbService(dialect);
  }
}
