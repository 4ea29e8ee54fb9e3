import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor } from 'futoin-executor';
import type { SimpleCCM } from 'futoin-invoker';
// futoin-database's main module registers its query builder drivers.
import 'futoin-database';
import L2Face from 'futoin-database/L2Face';
import type L2Service from 'futoin-database/L2Service';
import MySQLService from 'futoin-database/MySQLService';
import PostgreSQLService from 'futoin-database/PostgreSQLService';
import SQLiteService from 'futoin-database/SQLiteService';
import type { Logger } from '../common/log';
import type { ConnectionConfig } from './config';

/**
 * futoin-database's PostgreSQL service with a listener on its pool's 'error' event. Without it,
 * an idle connection that the server drops (restart, failover, pg_terminate_backend) raises an
 * unhandled 'error' and ends the process, as it does under the reference implementation.
 */
function guardedPostgreSQLService(log: Logger): typeof PostgreSQLService {
  return class GuardedPostgreSQLService extends PostgreSQLService {
    constructor(options: ConstructorParameters<typeof PostgreSQLService>[0]) {
      super(options);
      this._pool.on('error', (err: Error) =>
        log.warn(`futoin-database PostgreSQL connection lost: ${err.message}`),
      );
    }
  };
}

/**
 * Registers a futoin-database L2 connection `#db.<name>` in the CCM, as AutoConfig does, from a
 * ConnectionConfig and with the PostgreSQL pool guarded (see above). User code then runs its own
 * transactions with `ccm.db(name).newXfer()` and DBGenFace.addXferEvent.
 */
export function registerFutoinDb(
  as: AsyncSteps,
  ccm: SimpleCCM,
  name: string,
  config: ConnectionConfig,
  log: Logger,
): void {
  let Service: typeof L2Service;
  const options: ConstructorParameters<typeof L2Service>[0] = {};
  if (config.dialect === 'sqlite') {
    Service = SQLiteService;
    options.port = config.file ?? '';
  } else {
    Service = config.dialect === 'postgresql' ? guardedPostgreSQLService(log) : MySQLService;
    options.host = config.host ?? 'localhost';
    if (config.port) options.port = config.port;
    if (config.user) options.user = config.user;
    if (config.password) options.password = config.password;
    if (config.database) options.database = config.database;
    options.conn_limit = config.maxConnections ?? 4;
    // mysqljs connects in 3-byte utf8 unless told otherwise: emoji would fail.
    if (config.dialect === 'mysql') options.raw = { charset: 'UTF8MB4_UNICODE_CI' };
  }
  const executor = new Executor(ccm);
  executor.on('notExpected', (err: unknown, info: unknown) =>
    log.error(`futoin-database: ${String(err)}: ${String(info)}`),
  );
  Service.register(as, executor, options);
  L2Face.register(as, ccm, `#db.${name}`, executor);
  ccm.once('close', () => executor.close());
  // AutoConfig adds ccm.db(name); code written for it expects that helper.
  ccm.db ??= function (this: SimpleCCM, n?: string) {
    return this.iface(`#db.${n ?? 'default'}`);
  };
}
