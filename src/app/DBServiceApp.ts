import $asyncevent from 'futoin-asyncevent';
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor, type ExecutorOptions } from 'futoin-executor';
import { AdvancedCCM, type RegisterOptions } from 'futoin-invoker';
import { waitAtMost } from '../common/async';
import { DB_CONN, FACE_NAMES } from '../common/constants';
import { runSteps } from '../common/errors';
import { defaultLogger, type Logger } from '../common/log';
import { DBPollService } from '../delivery/poll/DBPollService';
import { DBPushService, type DBPushServiceOptions } from '../delivery/push/DBPushService';
import { PushFace } from '../common/faces/PushFace';
import { DBGenFace } from '../generation/DBGenFace';
import { DBGenService, type DBGenServiceOptions } from '../generation/DBGenService';
import { DBEventArchiver, type ArchiverStartOptions } from '../maintenance/DBEventArchiver';
import { DBEventDiscarder, type DBEventDiscarderOptions } from '../maintenance/DBEventDiscarder';
import { bindStore } from '../storage/ccm';
import { configFromEnv, parseDbUrl, type ConnectionConfig } from '../storage/config';
import { futoinDbClosed, registerFutoinDb } from '../storage/futoin-db';
import { migrate } from '../storage/migrate';
import { boundIdleTransactions, EventStore } from '../storage/store';
import type { CoordinationOptions } from '../storage/coordination/options';
import { EvtNodeExecutor } from '../transport/executor';
import { AdminCore } from '../ops/admin';
import { AdminService } from '../ops/AdminService';
import { CLI_HINTS } from './hints';
import { appSettings } from './options';

/** A database as a URL (`sqlite:PATH`, `postgres://...`, `mysql://...`) or settings. */
export type DatabaseSpec = string | ConnectionConfig;

/** Options of DBServiceApp; APP_DEFAULTS (app/options) has the defaults. */
export interface DBServiceAppOptions {
  /** An existing CCM (default: a new AdvancedCCM with `ccmOptions`). */
  ccm?: AdvancedCCM;
  /** futoin-invoker's CCM options. */
  ccmOptions?: RegisterOptions;
  /** The executor to serve on (default: a new in-process Executor with `executorOptions`);
   * give an EvtNodeExecutor to serve HTTP and WebSocket. */
  executor?: Executor;
  executorOptions?: ExecutorOptions;
  /** Called for the executor's and workers' unexpected errors (default: the log). */
  notExpectedHandler?: (...args: unknown[]) => void;
  /** Options of the gen, push and poll services. */
  evtOptions?: DBGenServiceOptions & DBPushServiceOptions;
  /**
   * futoin-database AutoConfig variables, as the reference takes them: DB_EVT_* for the active
   * store, DB_EVTDWH_* for the warehouse.
   */
  databaseConfig?: Record<string, string | undefined>;
  /** The active store (instead of DB_EVT_*). Without either, `#db.evt` must be in the CCM. */
  database?: DatabaseSpec;
  /** The warehouse (instead of DB_EVTDWH_*). */
  warehouse?: DatabaseSpec;
  /**
   * How this node coordinates with others over the active database (one pusher per consumer,
   * maintenance once): its name and timings (COORDINATION_DEFAULTS). Applies when the app opens
   * the active store (`database` or DB_EVT_*).
   */
  coordination?: CoordinationOptions;
  /**
   * Where connections that need a database session of their own go (the coordination
   * connection with its locks, and LISTEN): a direct address or a session pool. Default: the
   * active database. Required when that is a transaction pool (`?pool_mode=transaction`).
   */
  sessionDatabase?: DatabaseSpec;
  enableArchiver?: boolean;
  archiverOptions?: ArchiverStartOptions;
  enableDiscarder?: boolean;
  discarderOptions?: DBEventDiscarderOptions;
  /**
   * Serve ftn18es.admin (when the app opens the active store): consumers, moves, statistics,
   * event reads, for callers with the admin right only (see AdminService).
   */
  enableAdmin?: boolean;
  log?: Logger;
}

/** The longest close() waits for the executor, then for the database connections. */
const CLOSE_WAIT_MS = 5_000;

/** Room for the CCM's close handlers (see the constructor). */
const CCM_CLOSE_HANDLERS = 32;

const asConfig = (spec: DatabaseSpec): ConnectionConfig =>
  typeof spec === 'string' ? parseDbUrl(spec) : spec;

/**
 * All in one, as the reference's DBServiceApp: the CCM with `#db.evt` (and `#db.evtdwh`)
 * registered for your own transactions, an executor serving futoin.evt.gen and futoin.evt.push
 * (and futoin.evt.poll beside it on our executor), the faces `#evtgen`, `#evtpush` and `#evtpoll`
 * in the CCM, and optionally the archiver and the discarder. `close()` stops it all.
 *
 * `new DBServiceApp(as, options)` adds its set-up to `as` (the FutoIn way); `DBServiceApp.start()`
 * does the same for promise code.
 */
export class DBServiceApp {
  private readonly ccmRef: AdvancedCCM;
  private readonly executorRef: Executor;
  private readonly log: Logger;
  private storeRef: EventStore | null = null;
  private adminRef: AdminCore | null = null;
  /** A store on the warehouse, opened on the first admin call that needs it. */
  private warehouseStore: Promise<EventStore | null> | null = null;
  private pushRef: DBPushService | null = null;
  private archiverRef: DBEventArchiver | null = null;
  private discarderRef: DBEventDiscarder | null = null;
  private closingRun: Promise<void> | null = null;
  private closingStarted = false;
  private ccmClosed = false;

  constructor(as: AsyncSteps, options: DBServiceAppOptions = {}) {
    const settings = appSettings(options);
    const log = options.log ?? defaultLogger();
    this.log = log;
    const ccm = options.ccm ?? new AdvancedCCM(options.ccmOptions);
    const notExpected =
      options.notExpectedHandler ??
      ((...args: unknown[]) =>
        log.error(`Unexpected error: ${args.slice(0, 2).map(String).join(': ')}`, {
          code: String(args[0]),
          ...(args[2] instanceof Error ? { err: args[2] } : {}),
        }));
    const executor = options.executor ?? new Executor(ccm, options.executorOptions);
    if (!options.executor) executor.on('notExpected', notExpected);
    this.ccmRef = ccm;
    this.executorRef = executor;
    // Everything here closes with the CCM: the app, each database, the executors, the archiver
    // and its session, the discarder. Past futoin-asyncevent's default of 8 close handlers, it
    // warns on the console, though nothing leaks (each session's executor removes its own).
    $asyncevent.EventEmitter.setMaxListeners(ccm, CCM_CLOSE_HANDLERS);
    ccm.once('close', () => {
      this.ccmClosed = true;
      void this.close();
    });

    const env = options.databaseConfig ?? {};
    const active = options.database
      ? asConfig(options.database)
      : configFromEnv(DB_CONN.active, env);
    const warehouseGiven = options.warehouse
      ? asConfig(options.warehouse)
      : configFromEnv(DB_CONN.warehouse, env);
    // Archive transactions bounded as the store's (see boundIdleTransactions): on the event
    // database's server, a paused node's open one would hold delivery back on every node.
    const warehouse = warehouseGiven && boundIdleTransactions(warehouseGiven, options.coordination);

    if (active) {
      // Our store for the services, and the futoin-database connection for user transactions.
      registerFutoinDb(as, ccm, DB_CONN.active, active, log);
      as.await(
        (async () => {
          const store = await EventStore.open(active, {
            log,
            ...(options.coordination ? { coordination: options.coordination } : {}),
            ...(options.sessionDatabase
              ? { sessionDatabase: asConfig(options.sessionDatabase) }
              : {}),
          });
          this.storeRef = store;
          await migrate(store.db, store.dialect, { kind: 'active', log });
          bindStore(ccm, store);
        })(),
      );
    }
    if (warehouse) registerFutoinDb(as, ccm, DB_CONN.warehouse, warehouse, log);

    // The services replay from the warehouse what the discarder deleted (see Backlog).
    const historyTable = options.archiverOptions?.history_table;
    const replay: DBPushServiceOptions = warehouse
      ? {
          warehouse: () => this.warehouseStoreOf(warehouse),
          ...(historyTable === undefined ? {} : { history_table: historyTable }),
        }
      : {};
    as.add((as) => {
      const evtOptions = {
        log,
        ...replay,
        ...options.evtOptions,
        ...(this.storeRef ? { store: this.storeRef } : {}),
      };
      DBGenService.register(as, executor, evtOptions);
      // On our executor, poll lives beside push (see EvtNodeExecutor.register), so polling
      // works over HTTP too; a plain executor gets push only, which includes poll.
      if (executor instanceof EvtNodeExecutor) DBPollService.register(as, executor, evtOptions);
      this.pushRef = DBPushService.register(as, executor, {
        operatorHints: CLI_HINTS,
        ...evtOptions,
      });
      DBGenFace.register(as, ccm, FACE_NAMES.gen, executor);
      PushFace.register(as, ccm, FACE_NAMES.push, executor);
      as.add((_as) => ccm.alias(FACE_NAMES.push, FACE_NAMES.poll));
      if (this.storeRef && settings.enableAdmin) {
        const push = this.pushRef;
        const core = new AdminCore(this.storeRef, {
          hub: async () => push.hub(),
          warehouse: () => this.warehouseStoreOf(warehouse ?? null),
        });
        this.adminRef = core;
        AdminService.serve(as, executor, core);
      }
    });

    if (settings.enableArchiver && settings.enableDiscarder) {
      // The in-process archiver registers itself only once its warehouse is open; until then
      // the discarder must already wait for it, or it would delete what was never archived.
      const component = options.archiverOptions?.component ?? DBEventArchiver.COMPONENT;
      as.add((as) => {
        if (this.storeRef) as.await(this.storeRef.registerConsumer(`-internal:${component}`));
      });
    }
    if (settings.enableDiscarder) {
      const discarder = new DBEventDiscarder();
      discarder.on('workerError', notExpected);
      this.discarderRef = discarder;
      as.add((_as) =>
        discarder.start(ccm, {
          log,
          ...options.discarderOptions,
          ...(this.storeRef ? { store: this.storeRef } : {}),
        }),
      );
    }
    if (settings.enableArchiver) {
      const archiver = new DBEventArchiver(ccm, { log, ...(warehouse ? { warehouse } : {}) });
      archiver.on('workerError', notExpected);
      this.archiverRef = archiver;
      // In process: the archiver is the consumer `-internal:ARCHIVER`.
      as.add((_as) => archiver.start(executor, null, options.archiverOptions ?? {}));
    }
  }

  /**
   * A store on the warehouse, opened at the first call that needs it (the admin interface, a
   * consumer replaying), shared, closed with the app; a failed opening is tried again next time.
   */
  private warehouseStoreOf(warehouse: ConnectionConfig | null): Promise<EventStore | null> {
    if (!this.warehouseStore) {
      const opening =
        !warehouse || this.closing
          ? Promise.resolve(null)
          : EventStore.open(warehouse, { log: this.log });
      this.warehouseStore = opening;
      opening.catch(() => {
        if (this.warehouseStore === opening) this.warehouseStore = null;
      });
    }
    return this.warehouseStore;
  }

  /** Sets the application up; resolves once it serves. */
  static async start(options: DBServiceAppOptions = {}): Promise<DBServiceApp> {
    // Refused options reject as they are (RangeError, TypeError), not as a FutoIn error.
    appSettings(options);
    let app: DBServiceApp | undefined;
    try {
      await runSteps(
        () => $as(),
        (as) => {
          app = new DBServiceApp(as, options);
        },
      );
    } catch (err) {
      await app?.close();
      throw err;
    }
    return app!;
  }

  ccm(): AdvancedCCM {
    return this.ccmRef;
  }

  executor(): Executor {
    return this.executorRef;
  }

  /** The active store (when the app opened it). */
  get store(): EventStore | null {
    return this.storeRef;
  }

  /** The push service (also polling), once set up. */
  get push(): DBPushService | null {
    return this.pushRef;
  }

  /** What ftn18es.admin serves (also for /metrics), when enabled. */
  get admin(): AdminCore | null {
    return this.adminRef;
  }

  get archiver(): DBEventArchiver | null {
    return this.archiverRef;
  }

  get discarder(): DBEventDiscarder | null {
    return this.discarderRef;
  }

  /** Set once close() has begun. */
  get closing(): boolean {
    return this.closingStarted;
  }

  /** Stops the archiver and discarder, the executor and the CCM, then closes the store. */
  close(done?: () => void): Promise<void> {
    this.closingStarted = true;
    this.closingRun ??= (async () => {
      const archiver = this.archiverRef;
      if (archiver) {
        archiver.stop();
        await archiver.whenStopped().catch(() => undefined);
      }
      await this.discarderRef?.stop().catch(() => undefined);
      await waitAtMost(
        new Promise<void>((resolve) => this.executorRef.close(() => resolve())),
        CLOSE_WAIT_MS,
      );
      if (!this.ccmClosed) this.ccmRef.close();
      // The CCM's close ends the #db.evt and #db.evtdwh connections; wait for them too, so
      // that a process exiting next leaves its databases cleanly (a SQLite WAL checkpointed).
      await waitAtMost(futoinDbClosed(this.ccmRef), CLOSE_WAIT_MS);
      const warehouseStore = await this.warehouseStore?.catch(() => null);
      await warehouseStore?.close().catch(() => undefined);
      await this.storeRef
        ?.close()
        .catch((err: unknown) => this.log.warn(`closing the event store failed: ${String(err)}`));
      this.log.debug('DBServiceApp closed');
    })();
    if (done) void this.closingRun.then(done);
    return this.closingRun;
  }
}
