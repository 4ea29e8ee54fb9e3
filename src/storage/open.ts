import type { Logger } from '../common/log';
import type { ConnectionConfig } from './config';
import { MysqlClient } from './drivers/mysql';
import { PostgresClient } from './drivers/postgres';
import { SqliteClient } from './drivers/sqlite';
import type { SqlClient } from './sql';

/** Opens the SqlClient for a connection. */
export async function openClient(config: ConnectionConfig, log: Logger): Promise<SqlClient> {
  switch (config.dialect) {
    case 'sqlite':
      return SqliteClient.open(config);
    case 'postgresql':
      return new PostgresClient(config, log);
    case 'mysql':
      return new MysqlClient(config, log);
  }
}
