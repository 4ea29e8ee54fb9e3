/**
 * GET /ready: whether this node can serve now, for load balancers' health checks (HAProxy
 * `option httpchk GET /ready`). Ready while the active store is open, the node is not closing,
 * and its coordination with the other nodes is up (connected, and heard from the database within
 * the fence bound). Anonymous: it tells nothing but that, and the node's name.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { EventStore } from '../storage/store';
import type { EvtNodeExecutor } from '../transport/executor';

/** Where readiness is served. */
export const READY_PATH = '/ready';

/** What readiness looks at in the app it serves (a DBServiceApp has it). */
export interface ReadinessSource {
  readonly store: EventStore | null;
  /** Set once the app started to close. */
  readonly closing: boolean;
}

export interface Readiness {
  ready: boolean;
  /** This node's name (empty before the store is open). */
  node: string;
  /** Why not, when not. */
  reason: string;
}

export function readinessOf(app: ReadinessSource): Readiness {
  const store = app.store;
  if (!store || store.isClosed) return { ready: false, node: '', reason: 'no event store open' };
  const stats = store.coordinator().stats();
  if (app.closing) return { ready: false, node: stats.node, reason: 'closing' };
  if (!stats.up) {
    return {
      ready: false,
      node: stats.node,
      reason: 'no coordination with the database (not connected, or no recent heartbeat)',
    };
  }
  return { ready: true, node: stats.node, reason: '' };
}

/** Serves READY_PATH on the executor's HTTP server: 200 when ready, else 503 with the reason. */
export function serveReadiness(executor: EvtNodeExecutor, app: ReadinessSource): void {
  executor.route(READY_PATH, (req: IncomingMessage, rsp: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      rsp.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const r = readinessOf(app);
    const text = r.ready ? `ready ${r.node}\n` : `not ready ${r.node}: ${r.reason}\n`;
    rsp.writeHead(r.ready ? 200 : 503, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    rsp.end(req.method === 'HEAD' ? undefined : text);
  });
}
