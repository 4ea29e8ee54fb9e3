import type { Dialect } from './sql';

/**
 * Loads the modules a database kind needs: our driver adapter (with pg, mysql2 or sqlite3) and
 * futoin-database's service for it. Call before constructing a futoin-executor NodeExecutor:
 * it freezes Object.prototype (futoin's defence against prototype pollution), after which
 * some libraries fail to load (mysql2's `long` assigns toString on its prototype). Everything
 * else loads them on first use.
 */
export async function loadDatabaseModules(...dialects: readonly Dialect[]): Promise<void> {
  for (const dialect of new Set(dialects)) {
    switch (dialect) {
      case 'sqlite':
        await import('./drivers/sqlite');
        await import('futoin-database/SQLiteService');
        break;
      case 'postgresql':
        await import('./drivers/postgres');
        await import('futoin-database/PostgreSQLService');
        break;
      case 'mysql':
        await import('./drivers/mysql');
        await import('futoin-database/MySQLService');
        break;
    }
  }
}
