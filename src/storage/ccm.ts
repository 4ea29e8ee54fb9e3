import type { SimpleCCM } from 'futoin-invoker';
import { DB_CONN } from '../common/constants';
import { defaultLogger, type Logger } from '../common/log';
import { futoinDbTarget } from '../futoin/database';
import type { ConnectionConfig, DbTls } from './config';
import { migrate } from './migrate';
import { EventStore, type StoreOptions } from './store';
import { skipHostCheck } from './tls';

/** Stores bound to a CCM, shared by every service registered with that CCM's executors. */
const stores = new WeakMap<object, Promise<EventStore>>();

/** Makes `store` the one services of this CCM use (DBServiceApp and `evtstream serve` do). */
export function bindStore(ccm: SimpleCCM, store: EventStore): void {
  stores.set(ccm, Promise.resolve(store));
}

export interface ResolveStoreOptions extends StoreOptions {
  /** An explicit store; otherwise the CCM's bound one, or one opened from `#db.evt`. */
  store?: EventStore;
  /** Apply pending migrations when opening from `#db.evt` (default true). */
  migrate?: boolean;
}

/**
 * The store for services of `ccm`: `options.store`, the store bound with bindStore(), or else
 * one opened (and migrated) from the connection settings of the futoin-database service
 * registered as `#db.evt` in the CCM, closed when the CCM closes. This is what lets our services
 * drop in where the reference's are set up with futoin-database's AutoConfig.
 */
export function resolveStore(
  ccm: SimpleCCM,
  options: ResolveStoreOptions = {},
): Promise<EventStore> {
  const { eventTable, consumerTable } = options;
  // Each service sees its own tables, if it names any, on the shared connection.
  const tables = (s: EventStore): EventStore =>
    s.withTables(eventTable ?? s.eventTable, consumerTable ?? s.consumerTable);
  if (options.store) return Promise.resolve(tables(options.store));
  let found = stores.get(ccm);
  if (!found) {
    const opened = openFromCcm(ccm, {
      ...options,
      eventTable: undefined,
      consumerTable: undefined,
    });
    found = opened;
    stores.set(ccm, opened);
    ccm.once('close', () => {
      void opened.then((s) => s.close()).catch(() => undefined);
    });
  }
  return found.then(tables);
}

async function openFromCcm(ccm: SimpleCCM, options: ResolveStoreOptions): Promise<EventStore> {
  const log: Logger = options.log ?? defaultLogger();
  const config = configFromFutoinDb(ccm, DB_CONN.active);
  const store = await EventStore.open(config, { ...options, log });
  if (options.migrate !== false) {
    try {
      await migrate(store.db, store.dialect, { kind: 'active', log });
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store;
}

/**
 * Connection settings of the futoin-database service behind `#db.<name>` in this process, read
 * from the service itself (futoin-database does not expose them: see futoinDbTarget).
 */
export function configFromFutoinDb(ccm: SimpleCCM, name: string): ConnectionConfig {
  const regName = `#db.${name}`;
  const target = futoinDbTarget(ccm, regName);
  switch (target.kind) {
    case 'none':
      throw new Error(
        `No ${regName} in the CCM: register it with futoin-database's AutoConfig, or pass options.store`,
      );
    case 'other':
      throw new Error(
        `${regName} is not a futoin-database 1.x service in this process; pass options.store instead`,
      );
    case 'sqlite':
      return { dialect: 'sqlite', file: target.file };
    case 'postgresql':
    case 'mysql':
      return {
        dialect: target.kind,
        host: target.host ?? 'localhost',
        ...(target.port ? { port: Number(target.port) } : {}),
        ...(target.user ? { user: target.user } : {}),
        ...(target.password ? { password: target.password } : {}),
        ...(target.database ? { database: target.database } : {}),
        maxConnections: Math.max(target.poolSize ?? 1, 4),
        ...tlsOfDriver(target.kind, target.ssl),
      };
  }
}

const pem = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;

/**
 * The TLS a futoin-database service was set up with (its `raw.ssl`, as the driver takes it), so
 * that our connections to the same server are as secure as the service's own. pg's `ssl: true`
 * or an object verify the certificate and the host unless told otherwise (a host check of its
 * own is taken as the standard one: stricter, never weaker); mysqljs never checks the host
 * name, so its verifying settings are taken as verify-ca unless `verifyIdentity` says.
 */
function tlsOfDriver(kind: 'postgresql' | 'mysql', ssl: unknown): { tls?: DbTls } {
  if (ssl === true) return { tls: { mode: 'verify-full' } };
  if (typeof ssl !== 'object' || ssl === null) return {};
  const o = ssl as Record<string, unknown>;
  const tls: DbTls = { mode: 'verify-full' };
  if (o['rejectUnauthorized'] === false) tls.mode = 'require';
  else if (
    kind === 'postgresql'
      ? o['checkServerIdentity'] === skipHostCheck
      : o['verifyIdentity'] !== true
  )
    tls.mode = 'verify-ca';
  const [ca, cert, key] = [pem(o['ca']), pem(o['cert']), pem(o['key'])];
  // Without the check the service has, a CA would make `require` check the chain.
  if (ca && tls.mode !== 'require') tls.ca = ca;
  if (cert && key) {
    tls.cert = cert;
    tls.key = key;
  }
  return { tls };
}
