/**
 * futoin-database internals, in one place. Each use names the version it was read from: 1.9.12,
 * which package.json pins. Nothing else in src/ reaches into a futoin-database object.
 */
import type L2Service from 'futoin-database/L2Service';
import type { SimpleCCM } from 'futoin-invoker';

export type FutoinDbKind = 'sqlite' | 'postgresql' | 'mysql';

/** Where a server database service connects to, as its pool holds it. */
export interface FutoinDbServer {
  host?: string;
  port?: number | string;
  user?: string;
  password?: string;
  database?: string;
  /** Connections of its pool at most. */
  poolSize?: number;
  /** The driver's TLS settings (pg: Node's TLS options or true; mysqljs: its `ssl`), if any. */
  ssl?: unknown;
}

/** What the service registered under a name in a CCM connects to. */
export type FutoinDbTarget =
  | { kind: 'none' }
  /** Registered, but not a futoin-database service of this process we know how to read. */
  | { kind: 'other' }
  | { kind: 'sqlite'; file: string }
  | ({ kind: 'postgresql' | 'mysql' } & FutoinDbServer);

/** 1.9.12: the pool members of its services (pg's Pool, mysqljs' Pool) and SQLite's handle. */
interface ServiceInternals {
  _db?: { close(callback?: (err: Error | null) => void): void } | null;
  _db_params?: { filename?: string };
  _pool?: {
    options?: {
      host?: string;
      port?: number | string;
      user?: string;
      password?: string;
      database?: string;
      max?: number;
      ssl?: unknown;
    };
    config?: {
      connectionLimit?: number;
      connectionConfig?: {
        host?: string;
        port?: number | string;
        user?: string;
        password?: string;
        database?: string;
        ssl?: unknown;
      };
    };
    on(event: 'error', listener: (err: Error) => void): void;
    end(callback?: (err?: Error) => void): Promise<void> | void;
  };
}

/** The members above of a futoin-database service (all optional: checked where used). */
const internals = (service: object): ServiceInternals => service;

/**
 * What the futoin-database service behind `regName` (`#db.evt`) connects to. Neither
 * futoin-invoker nor futoin-database exposes it: futoin-invoker 2.4.9 keeps the registration in
 * the CCM's `_iface_info`, whose endpoint is the in-process Executor; futoin-executor 2.3.7 keeps
 * the service in its `_impls` (iface → major → impl); futoin-database 1.9.12 keeps the SQLite file
 * in `_db_params`, the pg pool options or the mysqljs pool config in `_pool`.
 */
export function futoinDbTarget(ccm: SimpleCCM, regName: string): FutoinDbTarget {
  const info = (ccm as unknown as { _iface_info?: Record<string, { endpoint?: unknown }> })
    ._iface_info?.[regName];
  if (!info) return { kind: 'none' };
  const impls = (info.endpoint as { _impls?: Record<string, Record<string, unknown>> } | undefined)
    ?._impls;
  const found = impls?.['futoin.db.l2']?.['1'] ?? impls?.['futoin.db.l1']?.['1'];
  if (typeof found !== 'object' || found === null) return { kind: 'other' };
  const service = internals(found);
  if (service._db_params?.filename) return { kind: 'sqlite', file: service._db_params.filename };
  const pool = service._pool;
  if (pool?.options && 'max' in pool.options) {
    const { host, port, user, password, database, max, ssl } = pool.options;
    return { kind: 'postgresql', host, port, user, password, database, poolSize: max, ssl };
  }
  if (pool?.config?.connectionConfig) {
    const { host, port, user, password, database, ssl } = pool.config.connectionConfig;
    const poolSize = pool.config.connectionLimit;
    return { kind: 'mysql', host, port, user, password, database, poolSize, ssl };
  }
  return { kind: 'other' };
}

/** What a hooked futoin-database service tells (see hookedService). */
export interface ServiceHooks {
  /** Called as each service is made; what it returns hears when its connections have closed. */
  created: () => (closed: Promise<void>) => void;
  /** An error of a PostgreSQL service's pool (an idle connection the server dropped). */
  poolError?: (err: Error) => void;
}

/** Closes the service's connections; resolves once they are (their errors are of no use then). */
function endConnections(kind: FutoinDbKind, service: ServiceInternals): Promise<void> {
  if (kind === 'sqlite') {
    const db = service._db;
    service._db = null;
    return new Promise<void>((resolve) => (db ? db.close(() => resolve()) : resolve()));
  }
  // pg's Pool.end() and mysqljs's pool.end() both take a callback.
  const pool = service._pool;
  return new Promise<void>((resolve) => (pool ? void pool.end(() => resolve()) : resolve()));
}

/**
 * `Base` (a futoin-database service class of `kind`) with hooks on its connections. In 1.9.12 a
 * service's `_close()` (called when its executor closes) ends its connections without waiting
 * for them; here they are ended through `_db` (SQLite) or `_pool`, and `hooks.created()`'s
 * listener hears when that is done. A PostgreSQL service's `_pool` gets an 'error' listener,
 * which it lacks: without one, a pooled connection the server drops ends the process.
 */
export function hookedService(
  kind: FutoinDbKind,
  Base: typeof L2Service,
  hooks: ServiceHooks,
): typeof L2Service {
  return class HookedService extends Base {
    private readonly reportClosed: (closed: Promise<void>) => void;

    constructor(options: ConstructorParameters<typeof L2Service>[0]) {
      super(options);
      this.reportClosed = hooks.created();
      const { poolError } = hooks;
      if (kind === 'postgresql' && poolError) internals(this)._pool?.on('error', poolError);
    }

    protected override _close(): void {
      this.reportClosed(endConnections(kind, internals(this)));
    }
  };
}
