import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor } from 'futoin-executor';
import type { SimpleCCM } from 'futoin-invoker';
// futoin-database's main module registers its query builder drivers.
import 'futoin-database';
import L2Face from 'futoin-database/L2Face';
import type L2Service from 'futoin-database/L2Service';
import type { Logger } from '../common/log';
import type { ConnectionConfig } from './config';
import { loadFutoinDbService } from './preload';

/** Per CCM: promises of its futoin-database services having closed their connections. */
const closings = new WeakMap<SimpleCCM, Promise<void>[]>();

/**
 * Resolves once every futoin-database service registered with registerFutoinDb on `ccm` has
 * closed its connections, which they start doing when the CCM closes. futoin-database does not
 * wait for that: an exit right after ccm.close() can cut a SQLite close short (leaving its WAL
 * file behind) or drop server connections without a goodbye.
 */
export async function futoinDbClosed(ccm: SimpleCCM): Promise<void> {
  await Promise.all(closings.get(ccm) ?? []);
}

/** The connection members of futoin-database's services (see types/futoin.d.ts). */
interface ServiceInternals {
  _db: { close(callback?: (err: Error | null) => void): void } | null;
  _pool: {
    on(event: 'error', listener: (err: Error) => void): void;
    end(callback?: (err?: Error) => void): Promise<void> | void;
  };
}

/** Closes the service's connections; resolves once they are (their errors are of no use then). */
function endConnections(
  dialect: ConnectionConfig['dialect'],
  service: ServiceInternals,
): Promise<void> {
  if (dialect === 'sqlite') {
    const db = service._db;
    service._db = null;
    return new Promise<void>((resolve) => (db ? db.close(() => resolve()) : resolve()));
  }
  // pg's Pool.end() and mysqljs's pool.end() both take a callback.
  return new Promise<void>((resolve) => void service._pool.end(() => resolve()));
}

/**
 * `Base` whose _close() reports when the connections are really closed (see futoinDbClosed),
 * and, for PostgreSQL, with a listener on the pool's 'error' event: without it, an idle
 * connection that the server drops (restart, failover, pg_terminate_backend) raises an
 * unhandled 'error' and ends the process, as it does under the reference implementation.
 */
function closingService(
  dialect: ConnectionConfig['dialect'],
  Base: typeof L2Service,
  ccm: SimpleCCM,
  log: Logger,
): typeof L2Service {
  return class ClosingService extends Base {
    private readonly reportClosed: (done: Promise<void>) => void;

    constructor(options: ConstructorParameters<typeof L2Service>[0]) {
      super(options);
      // Counted once it exists, not before: a set-up that fails before this service is made
      // (the active store unreachable, say) has no connections here, and futoinDbClosed must
      // not wait for a close that never comes.
      let report!: (done: Promise<void>) => void;
      const list = closings.get(ccm) ?? [];
      closings.set(ccm, list);
      list.push(new Promise<void>((resolve) => (report = (done) => void done.then(resolve))));
      this.reportClosed = report;
      if (dialect === 'postgresql') {
        (this as unknown as ServiceInternals)._pool.on('error', (err: Error) =>
          log.warn(`futoin-database PostgreSQL connection lost: ${err.message}`),
        );
      }
    }

    protected override _close(): void {
      this.reportClosed(endConnections(dialect, this as unknown as ServiceInternals));
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
  const options: ConstructorParameters<typeof L2Service>[0] = {};
  if (config.dialect === 'sqlite') {
    options.port = config.file ?? '';
  } else {
    options.host = config.host ?? 'localhost';
    if (config.port) options.port = config.port;
    if (config.user) options.user = config.user;
    if (config.password) options.password = config.password;
    if (config.database) options.database = config.database;
    options.conn_limit = config.maxConnections ?? 4;
    // mysqljs connects in 3-byte utf8 unless told otherwise: emoji would fail.
    if (config.dialect === 'mysql') options.raw = { charset: 'UTF8MB4_UNICODE_CI' };
  }
  // Only the service of this kind of database is loaded (with its driver).
  let Service: typeof L2Service | undefined;
  as.await(
    (async () => {
      Service = closingService(config.dialect, await loadFutoinDbService(config.dialect), ccm, log);
    })(),
  );
  as.add((as) => {
    const executor = new Executor(ccm);
    executor.on('notExpected', (err: unknown, info: unknown) =>
      log.error(`futoin-database: ${String(err)}: ${String(info)}`),
    );
    Service!.register(as, executor, options);
    L2Face.register(as, ccm, `#db.${name}`, executor);
    ccm.once('close', () => executor.close());
    // AutoConfig adds ccm.db(name); code written for it expects that helper.
    ccm.db ??= function (this: SimpleCCM, n?: string) {
      return this.iface(`#db.${n ?? 'default'}`);
    };
  });
}
