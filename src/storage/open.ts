import type { Logger } from '../common/log';
import type { ConnectionConfig } from './config';
import { loadDriver } from './preload';
import type { SqlClient } from './sql';

/** Opens the SqlClient for a connection, loading its driver on first use (see preload). */
export async function openClient(config: ConnectionConfig, log: Logger): Promise<SqlClient> {
  const open = await loadDriver(config.dialect);
  return open(config, log);
}
