import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor } from 'futoin-executor';
import type { SimpleCCM } from 'futoin-invoker';
// Before futoin-database: moment must load also under a frozen Object.prototype.
import '../futoin/database-deps';
// futoin-database's main module registers its query builder drivers.
import 'futoin-database';
import L2Face from 'futoin-database/L2Face';
import type L2Service from 'futoin-database/L2Service';
import type { Logger } from '../common/log';
import { hookedService } from '../futoin/database';
import type { ConnectionConfig } from './config';
import { loadFutoinDbService } from './preload';
import { mysqlTlsOptions, nodeTlsOptions } from './tls';

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

/**
 * `Base` that reports when its connections are really closed (see futoinDbClosed), and, for
 * PostgreSQL, logs a dropped pooled connection (restart, failover, pg_terminate_backend) that
 * would otherwise end the process, as it does under the reference implementation.
 */
function closingService(
  dialect: ConnectionConfig['dialect'],
  Base: typeof L2Service,
  ccm: SimpleCCM,
  log: Logger,
): typeof L2Service {
  return hookedService(dialect, Base, {
    // Counted once a service exists, not before: a set-up that fails before it is made (the
    // active store unreachable, say) has no connections here, and futoinDbClosed must not wait
    // for a close that never comes.
    created: () => {
      let report!: (done: Promise<void>) => void;
      const list = closings.get(ccm) ?? [];
      closings.set(ccm, list);
      list.push(new Promise<void>((resolve) => (report = (done) => void done.then(resolve))));
      return report;
    },
    poolError: (err) => log.warn(`futoin-database PostgreSQL connection lost: ${err.message}`),
  });
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
    const raw: Record<string, unknown> = {};
    // mysqljs connects in 3-byte utf8 unless told otherwise: emoji would fail.
    if (config.dialect === 'mysql') raw['charset'] = 'UTF8MB4_UNICODE_CI';
    if (config.tls) {
      raw['ssl'] =
        config.dialect === 'mysql' ? mysqlTlsOptions(config.tls) : nodeTlsOptions(config.tls);
      if (config.dialect === 'mysql' && config.tls.mode === 'verify-full') {
        log.warn(
          `#db.${name}: futoin-database's MySQL driver (mysqljs) checks that the server's ` +
            'certificate is signed by the CA, not that it names the host (VERIFY_IDENTITY is ' +
            'VERIFY_CA for transactions through it)',
        );
      }
    }
    if (Object.keys(raw).length > 0) options.raw = raw;
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
