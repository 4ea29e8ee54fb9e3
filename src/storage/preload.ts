import type L2Service from 'futoin-database/L2Service';
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
      const { MysqlClient } = await import('./drivers/mysql');
      return async (config, log) => new MysqlClient(config, log);
    },
    futoinService: async () => (await import('futoin-database/MySQLService')).default,
  },
};

/** Our driver adapter for a database kind (loaded now if it was not). */
export const loadDriver = (dialect: Dialect): Promise<OpenClient> => MODULES[dialect].driver();

/** futoin-database's service class for a database kind (loaded now if it was not). */
export const loadFutoinDbService = (dialect: Dialect): Promise<typeof L2Service> =>
  MODULES[dialect].futoinService();

/**
 * Loads the modules a database kind needs (see MODULES). Call before constructing a
 * futoin-executor NodeExecutor: it freezes Object.prototype (futoin's defence against prototype
 * pollution), after which some libraries fail to load (mysql2's `long` assigns toString on its
 * prototype). Everything else loads them on first use.
 */
export async function loadDatabaseModules(...dialects: readonly Dialect[]): Promise<void> {
  for (const dialect of new Set(dialects)) {
    await loadDriver(dialect);
    await loadFutoinDbService(dialect);
  }
}
