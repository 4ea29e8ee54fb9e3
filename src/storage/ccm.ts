import type { SimpleCCM } from 'futoin-invoker';
import { DB_CONN } from '../common/constants';
import { defaultLogger, type Logger } from '../common/log';
import type { ConnectionConfig } from './config';
import { migrate } from './migrate';
import { EventStore, type StoreOptions } from './store';

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

interface PgPoolLike {
  options: {
    host?: string;
    port?: number;
    user?: string;
    password?: string;
    database?: string;
    max?: number;
  };
}
interface MysqlPoolLike {
  config: {
    connectionLimit?: number;
    connectionConfig: {
      host?: string;
      port?: number;
      user?: string;
      password?: string;
      database?: string;
    };
  };
}
interface FutoinDbServiceLike {
  _pool?: Partial<PgPoolLike & MysqlPoolLike>;
  _db_params?: { filename?: string };
}

/**
 * Connection settings of the futoin-database (1.9) service behind `#db.<name>` in this process.
 * futoin-database does not expose them, so this reads its service object: the CCM's interface
 * info holds the Executor, whose `_impls` hold the L2 service with its pg pool options, its
 * mysql pool config or its SQLite file name. Checked here, in one place, against the version we
 * depend on.
 */
export function configFromFutoinDb(ccm: SimpleCCM, name: string): ConnectionConfig {
  const regName = `#db.${name}`;
  const info = (ccm as unknown as { _iface_info?: Record<string, { endpoint?: unknown }> })
    ._iface_info?.[regName];
  if (!info) {
    throw new Error(
      `No ${regName} in the CCM: register it with futoin-database's AutoConfig, or pass options.store`,
    );
  }
  const impls = (info.endpoint as { _impls?: Record<string, Record<string, unknown>> } | undefined)
    ?._impls;
  const service = (impls?.['futoin.db.l2']?.['1'] ?? impls?.['futoin.db.l1']?.['1']) as
    FutoinDbServiceLike | undefined;
  if (service?._db_params?.filename) {
    return { dialect: 'sqlite', file: service._db_params.filename };
  }
  const pool = service?._pool;
  if (pool?.options && 'max' in pool.options) {
    const o = pool.options;
    return {
      dialect: 'postgresql',
      host: o.host ?? 'localhost',
      ...(o.port ? { port: Number(o.port) } : {}),
      ...(o.user ? { user: o.user } : {}),
      ...(o.password ? { password: o.password } : {}),
      ...(o.database ? { database: o.database } : {}),
      maxConnections: Math.max(o.max ?? 1, 4),
    };
  }
  if (pool?.config?.connectionConfig) {
    const c = pool.config.connectionConfig;
    return {
      dialect: 'mysql',
      host: c.host ?? 'localhost',
      ...(c.port ? { port: Number(c.port) } : {}),
      ...(c.user ? { user: c.user } : {}),
      ...(c.password ? { password: c.password } : {}),
      ...(c.database ? { database: c.database } : {}),
      maxConnections: Math.max(pool.config.connectionLimit ?? 1, 4),
    };
  }
  throw new Error(
    `${regName} is not a futoin-database 1.x service in this process; pass options.store instead`,
  );
}
