import type { IncomingMessage, Server, ServerResponse } from 'http';
// NodeExecutor freezes Object.prototype (futoin's defence against prototype pollution,
// CVE-2018-3721). A module loaded after that which assigns toString & co. on its own prototypes
// throws; moment, which futoin-database's query drivers use, does. Load them first (and moment
// safely, in case the prototype is frozen already).
import '../futoin/database-deps';
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

/** The path of a request URL, without its query. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The route for `path`: equal to a route's, or below it ('/console/app.js'). */
function findRoute(routes: Map<string, HttpRoute> | undefined, path: string): HttpRoute | null {
  if (!routes || routes.size === 0) return null;
  for (const [prefix, route] of routes) {
    if (path === prefix || path.startsWith(`${prefix}/`)) return route;
  }
  return null;
}

/**
 * A FutoIn call in the URL (FTN5 GET-style: `iface/version/func`, then optionally the
 * credentials), below the executor's path: everything else there that no route serves is 404.
 */
const FUTOIN_CALL_PATH = /^[A-Za-z][\w.-]*\/\d+\.\d+\/[^/]+(\/.*)?$/;

/**
 * A request body over the message limit is read to its end and thrown away, so that the 413
 * answer and the close that follows reach a client still sending (closing on unread data would
 * reset the connection, losing the answer); past this many bytes it is not worth it.
 */
const OVERSIZED_DRAIN_BYTES = 64 * 1024 * 1024;

/** WebSocket close code for a message over the size limit (RFC 6455). */
const WS_MESSAGE_TOO_BIG = 1009;

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
    const server = opts.httpServer;
    // Node answers `Expect: 100-continue` itself unless someone listens; here an oversized body
    // is refused before the client sends it.
    if (server && server.listenerCount('checkContinue') === 0)
      server.on('checkContinue', (req, rsp) => this.checkContinue(server, req, rsp));
  }

  /** The largest request body or WebSocket message taken: what the registered specs allow. */
  get maxRequestBytes(): number {
    return this.specMaxRequestBytes;
  }

  /**
   * Serves `path` (and everything below it) with `route` instead of FutoIn's HTTP handling:
   * /metrics, /console. Requests to other paths reach the FutoIn services as before.
   */
  route(path: string, route: HttpRoute): void {
    httpRoutes.get(this)!.set(path.replace(/\/+$/, ''), route);
  }

  /**
   * HTTP requests: routes first; FutoIn POSTs with their size checked (over the limit: 413 with
   * a FutoIn error, see readFutoinPost); FutoIn GET-style calls as futoin-executor serves them;
   * any other path below the executor's is 404.
   */
  override handleHTTPRequest(req: IncomingMessage, rsp: ServerResponse): boolean {
    const url = req.url ?? '/';
    const path = pathOf(url);
    const route = findRoute(httpRoutes.get(this), path);
    if (!route) {
      const base = this.httpPath;
      // Not below our path: NodeExecutor leaves it to the server's other listeners.
      if (!`${path}/`.startsWith(base)) return super.handleHTTPRequest(req, rsp);
      if (path === base || `${path}/` === base) {
        if (req.method !== 'POST' || url !== path) return super.handleHTTPRequest(req, rsp);
        this.readFutoinPost(req, rsp);
        return true;
      }
      if (FUTOIN_CALL_PATH.test(path.slice(base.length))) return super.handleHTTPRequest(req, rsp);
      rsp.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
      return true;
    }
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
   * A FutoIn message POSTed to the executor's path, read here rather than by NodeExecutor, which
   * resets the connection of a body over the limit: the client gets no answer at all. Here it
   * gets 413 with a FutoIn error ({"e":"InvalidRequest","edesc":...}, what futoin-invoker reads
   * as the call's error), after the rest of the body was read and thrown away, and the
   * connection is then closed: nothing of it reaches a service.
   */
  private readFutoinPost(req: IncomingMessage, rsp: ServerResponse): void {
    const limit = this.maxRequestBytes;
    req.on('error', () => this.emit('clientError', req, 'HTTP request failed'));
    const declared = Number(req.headers['content-length']);
    if (declared > OVERSIZED_DRAIN_BYTES) {
      this.refuseOversized(req, rsp, declared);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > OVERSIZED_DRAIN_BYTES) this.refuseOversized(req, rsp, size);
      else chunks.length = 0;
    });
    req.on('end', () => {
      if (size <= limit) this.runHttpBody(req, rsp, Buffer.concat(chunks, size));
      else this.refuseOversized(req, rsp, size);
    });
  }

  /** Answers `Expect: 100-continue`: 413 at once for a FutoIn message declared too large. */
  private checkContinue(server: Server, req: IncomingMessage, rsp: ServerResponse): void {
    const path = pathOf(req.url ?? '/');
    const base = this.httpPath;
    const declared = Number(req.headers['content-length']);
    if (
      req.method === 'POST' &&
      (path === base || `${path}/` === base) &&
      declared > this.maxRequestBytes &&
      !findRoute(httpRoutes.get(this), path)
    ) {
      // The client waits for this answer before it sends the body: nothing is left unread.
      this.refuseOversized(req, rsp, declared);
      return;
    }
    rsp.writeContinue();
    server.emit('request', req, rsp);
  }

  /** 413 with a FutoIn error; `Connection: close` ends the connection once it is sent. */
  private refuseOversized(req: IncomingMessage, rsp: ServerResponse, bytes: number): void {
    if (rsp.headersSent) return;
    const limit = this.maxRequestBytes;
    const info = `Request message of ${bytes} bytes exceeds the message limit of ${limit} bytes`;
    this.emit('clientError', req, info);
    const body = Buffer.from(JSON.stringify({ e: ErrorCode.InvalidRequest, edesc: info }));
    rsp.writeHead(413, {
      'Content-Type': 'application/futoin+json',
      'Content-Length': body.length,
      Connection: 'close',
    });
    rsp.end(body);
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
    // ...but with no reason: ws 8 closes on a message over its size limit with 1009 alone.
    const close = ws.close.bind(ws);
    ws.close = (code, reason) =>
      close(
        code,
        reason ??
          (code === WS_MESSAGE_TOO_BIG
            ? `Message over the limit of ${this.maxRequestBytes} bytes`
            : undefined),
      );
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
