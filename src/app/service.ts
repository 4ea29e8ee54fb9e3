import type http from 'http';
import { AdvancedCCM } from 'futoin-invoker';
import { waitAtMost } from '../common/async';
import { SPEC_DIRS_ALL } from '../common/constants';
import type { Logger } from '../common/log';
import type { DBPushService } from '../delivery/push/DBPushService';
import type { PushServiceOptions } from '../delivery/push/PushService';
import type { DBEventDiscarderOptions } from '../maintenance/DBEventDiscarder';
import { describeConnection, type ConnectionConfig } from '../storage/config';
import { loadDatabaseModules } from '../storage/preload';
import type { EventStore } from '../storage/store';
import type { CoordinationOptions } from '../storage/coordination/options';
import { UsersSecurityProvider, type AuthOptions, type Users } from '../transport/auth';
import { EvtNodeExecutor } from '../transport/executor';
import { createHttpServer, listen, serverUrl, type TlsFiles } from '../transport/server';
import { DBServiceApp } from './DBServiceApp';
import { serviceSettings } from './options';
import { serveMetrics, type MetricsAccess } from '../ops/metrics';
import { serveConsole } from '../ops/console';
import { serveHealth } from '../ops/health';

/** What StreamService runs with; SERVICE_DEFAULTS (app/options) has the defaults. */
export interface ServiceConfig {
  db: ConnectionConfig;
  host: string;
  port: number;
  users: Users;
  /** Users with the admin right (ftn18es.admin, the console, /metrics). */
  admins?: Users;
  /** /metrics: for admins (HTTP Basic auth), for anyone, or not served. */
  metrics?: MetricsAccess;
  /** Serve the web console at /console. */
  console?: boolean;
  log: Logger;
  tls?: TlsFiles;
  /** Trust X-Forwarded-Proto/-For/-Host from a reverse proxy (TLS terminated in front). */
  trustProxy?: boolean;
  /**
   * Browser origins besides the service's own from which the admin interface may be called
   * (the console served elsewhere, a proxy that rewrites Host): `https://ops.example.com`.
   */
  adminOrigins?: readonly string[];
  /** Count loopback connections as secure channels. */
  secureLoopback?: boolean;
  /** Largest event data accepted (bytes of JSON). */
  maxEventBytes?: number;
  /** Push service options (in-flight calls, queues, timeouts, wake-ups). */
  push?: PushServiceOptions;
  /** A warehouse to archive the stream to (the archiver runs in process). */
  warehouse?: ConnectionConfig;
  /** Run the discarder with these options. */
  discard?: DBEventDiscarderOptions;
  /** The limit on failed authentications per client address (AUTH_DEFAULTS). */
  auth?: Omit<AuthOptions, 'log'>;
  /** How long shutdown() may take (SIGTERM in `serve`). */
  shutdownTimeoutMs?: number;
  /** /readyz: how long the database may take to answer. */
  readyTimeoutMs?: number;
  /** This node's coordination with the others over the database: name, timings. */
  coordination?: CoordinationOptions;
  /** Where connections that need a session of their own go (default: `db`). */
  sessionDb?: ConnectionConfig;
}

/**
 * A running event stream service: HTTP + WebSocket executor with gen and push (+ poll) on a
 * store, /livez and /readyz for probes, /metrics and the console.
 */
export class StreamService {
  private closing: Promise<void> | null = null;
  private shuttingDown: Promise<boolean> | null = null;

  private constructor(
    readonly url: string,
    readonly wsUrl: string,
    readonly app: DBServiceApp,
    private readonly server: http.Server,
    private readonly log: Logger,
    private readonly shutdownTimeoutMs: number,
  ) {}

  get store(): EventStore {
    return this.app.store!;
  }

  get ccm(): AdvancedCCM {
    return this.app.ccm();
  }

  get executor(): EvtNodeExecutor {
    return this.app.executor() as EvtNodeExecutor;
  }

  get push(): DBPushService {
    return this.app.push!;
  }

  static async start(config: ServiceConfig): Promise<StreamService> {
    const { log } = config;
    const settings = serviceSettings(config);
    const security = new UsersSecurityProvider(config.users, config.admins, {
      ...config.auth,
      log,
    });
    // Before the executor: see loadDatabaseModules.
    await loadDatabaseModules(
      config.db.dialect,
      ...(config.warehouse ? [config.warehouse.dialect] : []),
    );
    const ccm = new AdvancedCCM();
    const server = createHttpServer(config.tls);
    const executor = new EvtNodeExecutor(ccm, {
      httpServer: server,
      httpPath: '/',
      secureChannel: !!config.tls,
      trustProxy: settings.trustProxy,
      secureLoopback: settings.secureLoopback,
      allowedOrigins: settings.adminOrigins,
      securityProvider: security,
      specDirs: SPEC_DIRS_ALL,
      // Responses are ours and checked by the tests; skip re-validating each one.
      prodMode: true,
    });
    const notExpected = (err: unknown, info: unknown, e: unknown): void =>
      log.error(`Unexpected error ${String(err)}: ${String(info)}`, {
        code: String(err),
        ...(e instanceof Error ? { err: e, stack: e.stack } : {}),
      });
    executor.on('notExpected', notExpected);
    let app: DBServiceApp | undefined;
    /** Set once the service is made: until then nothing drains. */
    let service: StreamService | undefined;
    try {
      app = await DBServiceApp.start({
        ccm,
        executor,
        database: config.db,
        ...(config.warehouse ? { warehouse: config.warehouse, enableArchiver: true } : {}),
        ...(config.discard ? { enableDiscarder: true, discarderOptions: config.discard } : {}),
        ...(config.coordination ? { coordination: config.coordination } : {}),
        ...(config.sessionDb ? { sessionDatabase: config.sessionDb } : {}),
        evtOptions: {
          ...config.push,
          ...(config.maxEventBytes ? { max_event_bytes: config.maxEventBytes } : {}),
        },
        notExpectedHandler: (...args: unknown[]) => notExpected(args[0], args[1], args[2]),
        log,
      });
      const { metrics } = settings;
      if (metrics !== 'off') {
        serveMetrics(executor, app, metrics === 'open' ? null : (config.admins ?? new Map()), {
          log,
          auth: security,
        });
      }
      if (settings.console) serveConsole(executor);
      const store = app.store;
      serveHealth(
        executor,
        {
          store,
          get draining() {
            return service?.draining ?? false;
          },
        },
        { readyTimeoutMs: settings.readyTimeoutMs, log },
      );
      const addr = await listen(server, config.port, config.host);
      const tls = !!config.tls;
      service = new StreamService(
        serverUrl(addr, tls),
        serverUrl(addr, tls, 'ws'),
        app,
        server,
        log,
        settings.shutdownTimeoutMs,
      );
      log.info(
        `Serving on ${service.url} with ${describeConnection(config.db)}` +
          (config.warehouse ? `, archiving to ${describeConnection(config.warehouse)}` : '') +
          (config.discard ? ', discarding delivered events' : ''),
      );
      return service;
    } catch (err) {
      if (app) await app.close();
      else {
        executor.close();
        ccm.close();
      }
      throw err;
    }
  }

  /** Push sessions open now. */
  sessions(): Promise<number> {
    return this.push.sessions();
  }

  /** True once shutdown() has begun: /readyz answers 503 and new push sessions are refused. */
  get draining(): boolean {
    return this.shuttingDown !== null;
  }

  /**
   * Stops the service the way a load balancer expects: at once /readyz answers 503 and new push
   * sessions are refused (DefenseRejected: receivers connect again, elsewhere); the onEvents
   * calls in flight get their answers and their pointers stored; then it closes as close()
   * does. All within `timeoutMs` (shutdownTimeoutMs by default): past it, what is left is cut
   * off (unconfirmed batches are delivered again by the consumer's next session). Resolves true
   * if everything finished in time.
   */
  shutdown(timeoutMs = this.shutdownTimeoutMs): Promise<boolean> {
    this.shuttingDown ??= (async () => {
      const started = performance.now();
      const drained = await this.push.drain(timeoutMs);
      if (!drained)
        this.log.warn(
          `Shutdown: push batches still unanswered after ${timeoutMs} ms; their consumers get them again from their stored pointers`,
        );
      const left = Math.max(0, timeoutMs - (performance.now() - started));
      let closed = false;
      await waitAtMost(
        this.close(left).then(() => {
          closed = true;
        }),
        left,
      );
      if (!closed) this.log.warn(`Shutdown: not closed within ${timeoutMs} ms; stopping anyway`);
      return drained && closed;
    })();
    return this.shuttingDown;
  }

  /** Stops accepting calls, lets running ones finish (up to `graceMs`), closes the database. */
  close(graceMs = 5_000): Promise<void> {
    this.closing ??= (async () => {
      const forceClose = setTimeout(() => this.server.closeAllConnections(), graceMs);
      forceClose.unref();
      await this.app.close();
      clearTimeout(forceClose);
      this.log.info('Stopped');
    })();
    return this.closing;
  }
}
