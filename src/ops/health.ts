/**
 * /livez and /readyz: what a load balancer or an orchestrator probes. Anonymous (probes carry
 * no credentials) and small: they say whether the process serves, and whether it should be sent
 * traffic, never anything about the data.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import { TimeoutError, withTimeout } from '../common/async';
import type { Logger } from '../common/log';
import { unappliedMigrations } from '../storage/migrate';
import type { EventStore } from '../storage/store';
import type { EvtNodeExecutor } from '../transport/executor';

export const LIVE_PATH = '/livez';
export const READY_PATH = '/readyz';
/** The same readiness under the name HAProxy examples (and earlier versions of ours) use. */
export const READY_ALIAS = '/ready';

/** A readiness check that has not finished by then answers 503 (the database is down or stuck). */
export const READY_TIMEOUT_MS = 2_000;

/** What the probes look at. */
export interface HealthSource {
  /** The active store (none: never ready). */
  readonly store: EventStore | null;
  /** True once the service is shutting down: it finishes what runs and takes nothing new. */
  readonly draining: boolean;
}

export interface HealthOptions {
  /** See READY_TIMEOUT_MS. */
  readyTimeoutMs?: number;
  /** Where changes of readiness are reported, with the cause. */
  log?: Logger;
}

const json = (rsp: ServerResponse, status: number, body: object, head: boolean): void => {
  const text = `${JSON.stringify(body)}\n`;
  rsp.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  rsp.end(head ? undefined : text);
};

/** Answers 404 or 405 unless `req` is a GET or HEAD of exactly `path`; true if it did. */
function refused(req: IncomingMessage, rsp: ServerResponse, path: string): boolean {
  if ((req.url ?? '').split('?')[0] !== path) {
    rsp.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    rsp.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return true;
  }
  return false;
}

/**
 * Serves the probes on the executor's HTTP server:
 * - /livez: 200 `{"status":"live"}` while the process serves HTTP (also while draining: a
 *   restart would not help);
 * - /readyz (and /ready): 200 `{"status":"ready"}` when the active database answers within the
 *   timeout and has every migration of this version applied, the node's coordination with the
 *   other nodes is up (connected, and heard from the database within the fence bound), and the
 *   service is not shutting down; else 503 `{"status":"not ready","reason":...}`.
 * Concurrent probes share one database check. Changes of readiness are logged once each, with
 * the error behind them; the answer itself names the cause only.
 */
export function serveHealth(
  executor: EvtNodeExecutor,
  source: HealthSource,
  options: HealthOptions = {},
): void {
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const log = options.log;
  let running: Promise<string | null> | null = null;
  /** The database query under way: one stuck query is waited on again, not piled up. */
  let query: Promise<string[]> | null = null;
  /** The last answer's cause (null: ready); undefined before the first. */
  let last: string | null | undefined;

  const report = (reason: string | null, detail: string): void => {
    if (reason === last) return;
    const was = last;
    last = reason;
    if (reason === null) {
      if (was !== undefined) log?.info('Ready again');
    } else if (!source.draining) {
      log?.warn(`Not ready: ${reason}${detail ? ` (${detail})` : ''}`);
    }
  };

  const check = async (): Promise<string | null> => {
    if (source.draining) return 'shutting down';
    const store = source.store;
    if (!store) return 'no event store';
    let detail = '';
    let reason: string | null = null;
    try {
      const q = (query ??= unappliedMigrations(store.db, store.dialect, 'active').finally(() => {
        if (query === q) query = null;
      }));
      const missing = await withTimeout(q, timeoutMs);
      if (missing.length > 0) reason = `migrations not applied: ${missing.join(', ')}`;
    } catch (err) {
      if (err instanceof TimeoutError)
        reason = `the database did not answer within ${timeoutMs} ms`;
      else {
        reason = 'the database check failed';
        detail = err instanceof Error ? err.message : String(err);
      }
    }
    if (reason === null && !store.coordinator().stats().up) {
      reason = 'no coordination with the database (not connected, or no recent heartbeat)';
    }
    if (source.draining) return 'shutting down';
    report(reason, detail);
    return reason;
  };

  executor.route(LIVE_PATH, (req, rsp) => {
    if (!refused(req, rsp, LIVE_PATH)) json(rsp, 200, { status: 'live' }, req.method === 'HEAD');
  });
  const ready = (path: string) => (req: IncomingMessage, rsp: ServerResponse) => {
    if (refused(req, rsp, path)) return;
    const head = req.method === 'HEAD';
    // Draining answers at once, whatever a check under way finds.
    if (source.draining) {
      json(rsp, 503, { status: 'not ready', reason: 'shutting down' }, head);
      return;
    }
    const job = (running ??= check().finally(() => {
      if (running === job) running = null;
    }));
    job.then(
      (reason) => {
        if (reason === null) json(rsp, 200, { status: 'ready' }, head);
        else json(rsp, 503, { status: 'not ready', reason }, head);
      },
      (err: unknown) =>
        json(rsp, 503, { status: 'not ready', reason: `check failed: ${String(err)}` }, head),
    );
  };
  executor.route(READY_PATH, ready(READY_PATH));
  executor.route(READY_ALIAS, ready(READY_ALIAS));
}
