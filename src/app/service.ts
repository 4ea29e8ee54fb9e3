import type http from 'http';
import $as from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import { SPEC_DIRS_ALL } from '../common/constants';
import { runSteps } from '../common/errors';
import type { Logger } from '../common/log';
import { DBGenService } from '../generation/DBGenService';
import { DBPollService } from '../delivery/poll/DBPollService';
import { DBPushService } from '../delivery/push/DBPushService';
import type { PushServiceOptions } from '../delivery/push/PushService';
import { bindStore } from '../storage/ccm';
import { describeConnection, type ConnectionConfig } from '../storage/config';
import { migrate } from '../storage/migrate';
import { EventStore } from '../storage/store';
import { UsersSecurityProvider, type Users } from '../transport/auth';
import { EvtNodeExecutor } from '../transport/executor';
import { createHttpServer, listen, serverUrl, type TlsFiles } from '../transport/server';

export interface ServiceConfig {
  db: ConnectionConfig;
  host: string;
  port: number;
  users: Users;
  log: Logger;
  tls?: TlsFiles;
  /** Trust X-Forwarded-Proto/-For from a reverse proxy (TLS terminated in front). */
  trustProxy?: boolean;
  /** Count loopback connections as secure channels. */
  secureLoopback?: boolean;
  /** Largest event data accepted (bytes of JSON). */
  maxEventBytes?: number;
  /** Push service options (in-flight calls, queues, timeouts, wake-ups). */
  push?: PushServiceOptions;
}

/** A running event stream service: HTTP + WebSocket executor with gen and push (+ poll) on a store. */
export class StreamService {
  private closing: Promise<void> | null = null;

  private constructor(
    readonly url: string,
    readonly wsUrl: string,
    readonly store: EventStore,
    readonly ccm: AdvancedCCM,
    readonly executor: EvtNodeExecutor,
    readonly push: DBPushService,
    private readonly server: http.Server,
    private readonly log: Logger,
  ) {}

  static async start(config: ServiceConfig): Promise<StreamService> {
    const { log } = config;
    const store = await EventStore.open(config.db, { log });
    let ccm: AdvancedCCM | undefined;
    let executor: EvtNodeExecutor | undefined;
    try {
      const applied = await migrate(store.db, store.dialect, { kind: 'active', log });
      if (applied.length === 0) log.debug('Schema is up to date');

      ccm = new AdvancedCCM();
      bindStore(ccm, store);
      const server = createHttpServer(config.tls);
      executor = new EvtNodeExecutor(ccm, {
        httpServer: server,
        httpPath: '/',
        secureChannel: !!config.tls,
        trustProxy: config.trustProxy ?? false,
        secureLoopback: config.secureLoopback ?? false,
        securityProvider: new UsersSecurityProvider(config.users),
        specDirs: SPEC_DIRS_ALL,
        // Responses are ours and checked by the tests; skip re-validating each one.
        prodMode: true,
      });
      executor.on('notExpected', (err: unknown, info: unknown, e: unknown) => {
        log.error(
          `Unexpected error ${String(err)}: ${String(info)}${e instanceof Error ? `\n${e.stack ?? ''}` : ''}`,
        );
      });

      const options = {
        store,
        ...(config.maxEventBytes ? { max_event_bytes: config.maxEventBytes } : {}),
      };
      const target = executor;
      const push = await runSteps<DBPushService>(
        () => $as(),
        (as) => {
          DBGenService.register(as, target, options);
          // Poll beside push (see EvtNodeExecutor.register): polling works on HTTP too.
          DBPollService.register(as, target, options);
          const impl = DBPushService.register(as, target, { ...config.push, ...options });
          as.add((as) => as.success(impl));
        },
      );

      const addr = await listen(server, config.port, config.host);
      const tls = !!config.tls;
      const service = new StreamService(
        serverUrl(addr, tls),
        serverUrl(addr, tls, 'ws'),
        store,
        ccm,
        executor,
        push,
        server,
        log,
      );
      log.info(`Serving on ${service.url} with ${describeConnection(config.db)}`);
      return service;
    } catch (err) {
      executor?.close();
      ccm?.close();
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  /** Push sessions open now. */
  sessions(): Promise<number> {
    return this.push.sessions();
  }

  /** Stops accepting calls, lets running ones finish (up to `graceMs`), closes the database. */
  close(graceMs = 5_000): Promise<void> {
    this.closing ??= (async () => {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.server.closeAllConnections();
          resolve();
        }, graceMs);
        timer.unref();
        this.executor.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.ccm.close();
      await this.store.close();
      this.log.info('Stopped');
    })();
    return this.closing;
  }
}
