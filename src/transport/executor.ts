import type { IncomingMessage, ServerResponse } from 'http';
// NodeExecutor freezes Object.prototype (futoin's defence against prototype pollution,
// CVE-2018-3721). A module loaded after that which assigns toString & co. on its own prototypes
// throws; moment, which futoin-database's query drivers use, does. Load them first.
import 'futoin-database/MySQLDriver';
import 'futoin-database/PostgreSQLDriver';
import 'futoin-database/SQLiteDriver';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor, NodeExecutorOptions } from 'futoin-executor';
import { ErrorCode } from '../common/errors';
import type { SimpleCCM } from 'futoin-invoker';
import { FTN18_1_1_MESSAGE_LIMIT, IFACE } from '../common/constants';
import {
  HookedNodeExecutor,
  registerOwnOverInherited,
  type RequestOrigin,
  type WsConnection,
  type WsListener,
} from '../futoin/executor';
import { normalOrigin, originOf, recordRequestSource } from './origin';

export interface EvtExecutorOptions extends NodeExecutorOptions {
  /** Treat connections from loopback addresses as secure channels (default false). */
  secureLoopback?: boolean;
  /**
   * Browser origins (`https://ops.example.com`) besides the service's own whose requests count
   * as same-origin (see transport/origin: what the admin interface accepts from browsers).
   */
  allowedOrigins?: readonly string[];
}

/** Settings kept outside the instance: NodeExecutor seals itself at the end of its constructor. */
const secureLoopback = new WeakMap<object, boolean>();
const originSettings = new WeakMap<object, { allowed: ReadonlySet<string>; trustProxy: boolean }>();

/** Serves a plain HTTP request (not FutoIn) on a path of its own. */
export type HttpRoute = (req: IncomingMessage, rsp: ServerResponse) => void;

/** Per executor: path → route (see EvtNodeExecutor.route). */
const httpRoutes = new WeakMap<object, Map<string, HttpRoute>>();

/** The route for `url`: its path equal to a route's, or below it ('/console/app.js'). */
function findRoute(routes: Map<string, HttpRoute> | undefined, url: string): HttpRoute | null {
  if (!routes || routes.size === 0) return null;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  for (const [prefix, route] of routes) {
    if (path === prefix || path.startsWith(`${prefix}/`)) return route;
  }
  return null;
}

const isLoopback = (addr: string | undefined): boolean =>
  !!addr && (addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.'));

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A FutoIn request as the executor's checks expect it: an object, with `p` an object if given.
 * Anything else would throw inside futoin-executor outside any request (JSON `null` body) or
 * become an InternalError (`"p": null`); normalised, it gets InvalidRequest.
 */
function normalizeRequest(ftnreq: unknown): Record<string, unknown> {
  if (!isPlainObject(ftnreq)) return {};
  if ('p' in ftnreq && !isPlainObject(ftnreq['p'])) return { ...ftnreq, p: {} };
  return ftnreq;
}

/**
 * futoin-executor's NodeExecutor with what an event stream needs from its transport:
 * - responses up to the size the registered interfaces allow (FTN18 1.1 allows 8 MiB poll
 *   results): the base class refuses anything over 64 KiB whatever the specs say;
 * - no single message can end the process: the base class has no 'error' listener on its
 *   WebSockets (a frame over the size limit, invalid UTF-8 or a bad opcode would be an uncaught
 *   error) and throws from its message handler on a JSON `null`, a missing or a non-string
 *   `rid`; here such a connection is closed (1008) and everyone else keeps being served;
 * - optionally, loopback connections counted as secure channels (traffic that never leaves the
 *   machine), so futoin.evt.gen's SecureChannel rule can be met locally without TLS.
 * What it needs of NodeExecutor's internals, it reaches through HookedNodeExecutor's hooks.
 */
export class EvtNodeExecutor extends HookedNodeExecutor {
  constructor(ccm: SimpleCCM, opts: EvtExecutorOptions = {}) {
    super(ccm, opts);
    secureLoopback.set(this, opts.secureLoopback ?? false);
    const allowed = new Set<string>();
    for (const o of opts.allowedOrigins ?? []) {
      const normal = normalOrigin(o);
      if (normal === null) throw new TypeError(`Not an http(s) origin: ${JSON.stringify(o)}`);
      allowed.add(normal);
    }
    originSettings.set(this, { allowed, trustProxy: opts.trustProxy ?? false });
    httpRoutes.set(this, new Map());
  }

  /**
   * Serves `path` (and everything below it) with `route` instead of FutoIn's HTTP handling:
   * /metrics, /console. Requests to other paths reach the FutoIn services as before.
   */
  route(path: string, route: HttpRoute): void {
    httpRoutes.get(this)!.set(path.replace(/\/+$/, ''), route);
  }

  override handleHTTPRequest(req: IncomingMessage, rsp: ServerResponse): boolean {
    const route = findRoute(httpRoutes.get(this), req.url ?? '/');
    if (!route) return super.handleHTTPRequest(req, rsp);
    req.on('error', () => this.emit('clientError', req, 'HTTP request failed'));
    try {
      route(req, rsp);
    } catch (err) {
      this.emit('clientError', req, `HTTP route failed: ${(err as Error).message}`);
      if (!rsp.headersSent) rsp.writeHead(500);
      rsp.end();
    }
    return true;
  }

  /**
   * The largest response this executor sends: what the registered specs allow, and at least
   * FTN18 1.1's 8 MiB (futoin.evt.push inherits poll 1.0, so a push service alone would not
   * raise it; each service bounds its responses by the version its caller speaks).
   */
  get maxResponseBytes(): number {
    return Math.max(this.SAFE_PAYLOAD_LIMIT, this.specMaxResponseBytes, FTN18_1_1_MESSAGE_LIMIT);
  }

  override packPayload(coder: { encode(msg: unknown): string | Buffer }, msg: unknown): Buffer {
    const encoded = coder.encode(msg);
    const raw = typeof encoded === 'string' ? Buffer.from(encoded) : encoded;
    if (raw.length > this.maxResponseBytes) {
      this.emit(
        'notExpected',
        ErrorCode.InternalError,
        `Response of ${raw.length} bytes exceeds ${this.maxResponseBytes}`,
        null,
        null,
      );
      throw new Error(ErrorCode.InternalError);
    }
    return raw;
  }

  /**
   * futoin.evt.push inherits futoin.evt.poll, so futoin-executor refuses to register both, and
   * push's "BiDirectChannel" rule then covers pollEvents too: polling over HTTP would fail. Here
   * both live side by side: poll calls go to the poll service (any channel), push calls to the
   * push service.
   */
  override register(
    as: AsyncSteps,
    ifacever: string,
    impl: object | ((impl: unknown, executor: Executor) => object),
    specdirs?: string | string[],
  ): void {
    const [iface = ''] = ifacever.split(':');
    if (iface !== IFACE.poll && iface !== IFACE.push) {
      super.register(as, ifacever, impl, specdirs);
      return;
    }
    registerOwnOverInherited(as, this, iface, { iface: IFACE.poll, major: '1' }, (as) =>
      super.register(as, ifacever, impl, specdirs),
    );
  }

  protected override isSecureRequest(req: IncomingMessage, secure: boolean): boolean {
    return secure || (secureLoopback.get(this) === true && isLoopback(req.socket.remoteAddress));
  }

  /** Also notes where the request came from (see transport/origin), for the admin interface. */
  protected override acceptRequest(
    ftnreq: unknown,
    from: RequestOrigin | null,
  ): Record<string, unknown> {
    const request = normalizeRequest(ftnreq);
    const settings = originSettings.get(this);
    if (from && settings) {
      const { origin, sameOrigin } = originOf(from.req, settings.allowed, settings.trustProxy);
      recordRequestSource(request, { origin, sameOrigin, urlForm: from.urlForm });
    }
    return request;
  }

  override handleWSConnection(upgradeReq: IncomingMessage, wsArg: unknown): void {
    const ws = wsArg as WsConnection;
    // `ws` has already closed the connection with the right code when it emits 'error'.
    ws.on('error', (err) => this.emit('clientError', upgradeReq, (err as Error).message));
    super.handleWSConnection(upgradeReq, ws);
  }

  /**
   * NodeExecutor's own listeners run through guards: on 'message' (see guardMessage), and on
   * 'close', where it fails the server's calls still waiting on this consumer (onEvents in
   * flight): AsyncSteps delivers that error to the caller, then throws it again from the
   * 'close' handler, which would end the process.
   */
  protected override wsListener(
    event: string,
    listener: WsListener,
    ws: WsConnection,
    upgradeReq: IncomingMessage,
  ): WsListener {
    if (event === 'message')
      return (...args: unknown[]) => this.guardMessage(ws, upgradeReq, listener, args);
    if (event === 'close')
      return (...args: unknown[]) => this.guardClose(upgradeReq, listener, args);
    return listener;
  }

  private guardClose(
    upgradeReq: IncomingMessage,
    listener: (...a: unknown[]) => void,
    args: unknown[],
  ): void {
    // Each throw comes after one waiting call was failed; run again for the others (the
    // handler's own clean-up is idempotent).
    for (let attempt = 0; attempt < 10_000; attempt++) {
      try {
        listener(...args);
        return;
      } catch (err) {
        if (attempt === 0)
          this.emit('clientError', upgradeReq, `Closing connection: ${(err as Error).message}`);
      }
    }
  }

  private guardMessage(
    ws: WsConnection,
    upgradeReq: IncomingMessage,
    listener: (...a: unknown[]) => void,
    args: unknown[],
  ): void {
    try {
      listener(...args);
    } catch (err) {
      // The base handler throws before it starts any request: nothing is half-done.
      this.emit('clientError', upgradeReq, `Invalid FutoIn message: ${(err as Error).message}`);
      ws.close(1008, 'Invalid FutoIn message');
    }
  }
}
