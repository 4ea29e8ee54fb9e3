/**
 * /metrics: the stream's figures in the Prometheus text exposition format (0.0.4), built with
 * prom-client on a registry of our own per served app (metrics-registry.ts, loaded at the first
 * scrape that passes the access check).
 *
 * Nothing here runs on the event path. The services only bump plain numbers (StreamCounters),
 * read when a scrape comes in. A service nobody scrapes pays for one HTTP route, nothing per
 * event, and does not even load prom-client.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import { ErrorCode } from '../common/errors';
import type { Logger } from '../common/log';
import { sameSecret } from '../common/secret';
import type { PushHub } from '../delivery/push/hub';
import type { ArchiverCounters, DiscarderCounters } from '../storage/counters';
import type { EventStore } from '../storage/store';
import type { Users } from '../transport/auth';
import type { EvtNodeExecutor } from '../transport/executor';
import type { AdminCore } from './admin';
import type { StreamMetrics } from './metrics-registry';

export type { StreamMetrics } from './metrics-registry';

/** What /metrics reads from the app it serves (a DBServiceApp has all of it). */
export interface MetricsSource {
  /** The active store (required: metrics cannot be served without it). */
  readonly store: EventStore | null;
  /** The push service of this process, for its sessions. */
  readonly push: { hub(): Promise<PushHub> } | null;
  /** The app's AdminCore when it serves ftn18es.admin (else metrics make one on the store). */
  readonly admin: AdminCore | null;
  /** The app's archiver, for its progress (evtstream_archiver_*), when it runs one. */
  readonly archiver?: { readonly counters: ArchiverCounters } | null;
  /** The app's discarder, for its progress (evtstream_discarder_*), when it runs one. */
  readonly discarder?: { readonly counters: DiscarderCounters } | null;
}

/** Who may read /metrics: admins (HTTP Basic auth), anyone, or nobody (not served). */
export type MetricsAccess = 'admins' | 'open' | 'off';

/** Where the metrics are served. */
export const METRICS_PATH = '/metrics';

/**
 * Consumer lag in events is counted up to this many per consumer and scrape: counting is an
 * index range scan, and a scrape every few seconds must stay cheap however far a consumer is
 * behind. Past it, `evtstream_consumer_lag_capped` is 1; the lag in seconds stays exact.
 */
export const METRICS_LAG_LIMIT = 10_000;

/** A scrape that has not finished by then answers 503 (the database may be down or stuck). */
export const METRICS_TIMEOUT_MS = 10_000;

export interface MetricsOptions {
  /** See METRICS_LAG_LIMIT. */
  lagLimit?: number;
  /** See METRICS_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Where a failed scrape is reported (default: the executor's `notExpected` event). */
  log?: Logger;
  /**
   * Also expose Node's process metrics (CPU, memory, event loop, GC: prom-client's default
   * metrics, unprefixed as dashboards expect). Default true. They are collected once per process,
   * set up at the first scrape, so a service nobody scrapes never pays for them.
   */
  processMetrics?: boolean;
}

/** Whether an Authorization header names one of `admins` with the right secret (HTTP Basic). */
export function isAdminBasicAuth(header: string | undefined, admins: Users): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  const pair = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon < 0) return false;
  const expected = admins.get(pair.slice(0, colon));
  // Compare even for an unknown name, so unknown and known names take the same time.
  const ok = sameSecret(pair.slice(colon + 1), expected ?? '\u0000no-such-admin');
  return ok && expected !== undefined;
}

const plain = (rsp: ServerResponse, status: number, text: string, headers = {}): void => {
  rsp
    .writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers })
    .end(`${text}\n`);
};

/**
 * Serves /metrics (Prometheus text format) on the executor's HTTP server. `admins` null: to
 * anyone; else only to those admins, with HTTP Basic auth (what Prometheus' `basic_auth` sends).
 * A scrape that fails or takes too long (the database down or stuck) answers 503 with a short
 * text; the process carries on.
 */
export function serveMetrics(
  executor: EvtNodeExecutor,
  app: MetricsSource,
  admins: Users | null,
  options: MetricsOptions = {},
): void {
  let metrics: Promise<StreamMetrics> | null = null;
  const report = (msg: string): void => {
    if (options.log) options.log.warn(msg);
    else executor.emit('notExpected', ErrorCode.MetricsUnavailable, msg, null, null);
  };
  executor.route(METRICS_PATH, (req: IncomingMessage, rsp: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== METRICS_PATH) return plain(rsp, 404, 'Not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return plain(rsp, 405, 'Method not allowed', { Allow: 'GET, HEAD' });
    }
    if (admins && !isAdminBasicAuth(req.headers.authorization, admins)) {
      return plain(rsp, 401, 'Unauthorized', { 'WWW-Authenticate': 'Basic realm="evtstream"' });
    }
    metrics ??= import('./metrics-registry').then((m) => m.createMetrics(app, options));
    const scraped = metrics.then(async (m) => ({
      text: await m.scrape(),
      type: m.registry.contentType,
    }));
    scraped.then(
      ({ text, type }) => {
        rsp.writeHead(200, {
          'Content-Type': type,
          'Cache-Control': 'no-store',
        });
        rsp.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        report(
          `/metrics: reading the figures failed: ${err instanceof Error ? err.message : String(err)}`,
        );
        if (!rsp.headersSent)
          plain(rsp, 503, 'Metrics unavailable: the event store did not answer');
        else rsp.end();
      },
    );
  });
}
