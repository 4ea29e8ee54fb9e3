import type { Logger } from '../common/log';
import type { ConnectionConfig } from './config';
import type { SqlClient } from './sql';

/**
 * Opens the SqlClient for a connection. Each driver is loaded only when used, so a process
 * serving SQLite does not carry pg and mysql2 in memory (and the other way round).
 */
export async function openClient(config: ConnectionConfig, log: Logger): Promise<SqlClient> {
  switch (config.dialect) {
    case 'sqlite': {
      const { SqliteClient } = await import('./drivers/sqlite');
      return SqliteClient.open(config);
    }
    case 'postgresql': {
      const { PostgresClient } = await import('./drivers/postgres');
      return new PostgresClient(config, log);
    }
    case 'mysql': {
      const { MysqlClient } = await import('./drivers/mysql');
      return new MysqlClient(config, log);
    }
  }
}
