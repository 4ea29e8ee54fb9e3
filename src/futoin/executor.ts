/**
 * futoin-executor internals, in one place. Each use names the version it was read from: 2.3.7,
 * which package.json pins. Nothing else in src/ reaches into an executor: subclasses override
 * the typed hooks of HookedNodeExecutor, and the interface tables are changed by the functions
 * below.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { NodeExecutor, type Executor } from 'futoin-executor';
import { MessageCoder } from 'futoin-invoker';

/** A WebSocket of the `ws` package, as NodeExecutor is given one and channels hold it. */
export interface WsConnection {
  on(event: string, listener: WsListener): unknown;
  off?(event: string, listener: WsListener): unknown;
  close(code?: number, reason?: string): void;
  /** Sends a ping frame; the peer's WebSocket answers with 'pong'. */
  ping?(): void;
  /** Drops the connection at once, without the closing handshake. */
  terminate?(): void;
}

export type WsListener = (...args: unknown[]) => void;

/** The HTTP request a FutoIn request came with (a WebSocket's upgrade request for its messages). */
export interface RequestOrigin {
  req: IncomingMessage;
  /** The URL form (`/iface/version/func?params`), credentials possibly from the HTTP headers. */
  urlForm: boolean;
}

/** Each WebSocket's upgrade request, for the messages that come over it. */
const upgradeRequests = new WeakMap<object, IncomingMessage>();

/** Calls a NodeExecutor method its typings do not declare (2.3.7 internals). */
function callBase<R>(self: NodeExecutor, name: string, ...args: unknown[]): R {
  const fn = Reflect.get(NodeExecutor.prototype, name) as (
    this: NodeExecutor,
    ...a: unknown[]
  ) => R;
  return fn.apply(self, args);
}

/**
 * NodeExecutor with typed hooks where 2.3.7 has only undeclared methods. A subclass overrides
 * the hooks, never the underscore methods. Like NodeExecutor, it takes no instance fields: the
 * base class seals the instance at the end of its constructor.
 */
export class HookedNodeExecutor extends NodeExecutor {
  /** Whether `req` came over a secure channel; `secure` is NodeExecutor's answer. */
  protected isSecureRequest(_req: IncomingMessage, secure: boolean): boolean {
    return secure;
  }

  /**
   * A FutoIn request (an HTTP body or a WebSocket message, parsed) before NodeExecutor looks at
   * it, with the HTTP request it came with (null if unknown); what this returns is what
   * NodeExecutor checks and runs (and RequestInfo's RAW_REQUEST).
   */
  protected acceptRequest(ftnreq: unknown, _from: RequestOrigin | null): unknown {
    return ftnreq;
  }

  /**
   * A listener NodeExecutor is adding to a new WebSocket ('message', 'close', ...); what this
   * returns is added instead.
   */
  protected wsListener(
    _event: string,
    listener: WsListener,
    _ws: WsConnection,
    _upgradeReq: IncomingMessage,
  ): WsListener {
    return listener;
  }

  /** The largest response the registered specs allow (2.3.7: `_maxRspSize`). */
  protected get specMaxResponseBytes(): number {
    return this._maxRspSize;
  }

  /** The largest request the registered specs allow: 64 KiB unless one allows more (2.3.7: `_maxReqSize`). */
  protected get specMaxRequestBytes(): number {
    return this._maxReqSize;
  }

  /** Where FutoIn calls are served, ending in '/' (2.3.7: `_http_path`, from `httpPath`). */
  protected get httpPath(): string {
    return this._http_path;
  }

  /**
   * The client address of an HTTP request as FutoIn calls see it: with `trustProxy`, the
   * proxy's X-Real-IP or first X-Forwarded-For entry (2.3.7: `_clientAddress`).
   */
  clientAddressOf(req: IncomingMessage): string | undefined {
    return callBase<string | undefined>(this, '_clientAddress', req);
  }

  /**
   * Runs the FutoIn request of an HTTP POST whose body a subclass has read itself, as 2.3.7's
   * own body handler does: decoded in the format it is in, anything undecodable becoming an
   * empty request (InvalidRequest).
   */
  protected runHttpBody(req: IncomingMessage, rsp: ServerResponse, body: Buffer): void {
    const coder = MessageCoder.detect(body);
    let ftnreq: unknown;
    try {
      ftnreq = coder.decode(body);
    } catch {
      ftnreq = {};
    }
    this._handleHTTPRequestCommon({ ftnreq, req, rsp, coder });
  }

  override handleWSConnection(upgradeReq: IncomingMessage, wsArg: unknown): void {
    // 2.3.7 adds its listeners with ws.on() while handleWSConnection runs.
    const ws = wsArg as WsConnection;
    upgradeRequests.set(ws, upgradeReq);
    const on = ws.on.bind(ws);
    ws.on = (event, listener) => on(event, this.wsListener(event, listener, ws, upgradeReq));
    try {
      super.handleWSConnection(upgradeReq, ws);
    } finally {
      ws.on = on;
    }
  }

  /** 2.3.7: the per-request secure channel check. */
  protected _isSecureChannel(req: IncomingMessage): boolean {
    return this.isSecureRequest(req, callBase<boolean>(this, '_isSecureChannel', req));
  }

  /**
   * 2.3.7: where every HTTP request goes, parsed (a body, or the URL form with `from_query`),
   * with its `req`.
   */
  protected _handleHTTPRequestCommon(params: {
    ftnreq: unknown;
    req?: IncomingMessage;
    from_query?: boolean;
    [k: string]: unknown;
  }): void {
    const from = params.req ? { req: params.req, urlForm: params.from_query === true } : null;
    callBase(this, '_handleHTTPRequestCommon', {
      ...params,
      ftnreq: this.acceptRequest(params.ftnreq, from),
    });
  }

  /** 2.3.7: where every WebSocket request goes, parsed; the context holds the socket (`_ws_conn`). */
  protected _handleWSRequest(context: unknown, ftnreq: unknown, coder: unknown): void {
    const ws = (context as { _ws_conn?: unknown } | null)?._ws_conn;
    const req = typeof ws === 'object' && ws !== null ? upgradeRequests.get(ws) : undefined;
    const from = req ? { req, urlForm: false } : null;
    callBase(this, '_handleWSRequest', context, this.acceptRequest(ftnreq, from), coder);
  }
}

/** 2.3.7: an executor's interfaces (`_ifaces`) and implementations (`_impls`), by name and major. */
interface IfaceTables {
  _ifaces?: Record<string, Record<string, IfaceEntry | undefined> | undefined>;
  _impls?: Record<string, Record<string, unknown> | undefined>;
}

/** 2.3.7: an interface entry; `derived` is set on one registered as inherited by another. */
interface IfaceEntry {
  derived?: unknown;
  mnrver?: string;
}

const tablesOf = (executor: Executor): IfaceTables => executor as IfaceTables;

/**
 * Registers interface `iface` (with `register`, the executor's own registration) so that
 * `inherited` (an interface name and major version that another interface inherits) can be
 * registered both in its own right and through the interface inheriting it, in either order,
 * the own registration winning. 2.3.7 refuses the second of the two, and records the inherited
 * entry with `derived` set.
 */
export function registerOwnOverInherited(
  as: AsyncSteps,
  executor: Executor,
  iface: string,
  inherited: { iface: string; major: string },
  register: (as: AsyncSteps) => void,
): void {
  const { iface: name, major } = inherited;
  // Registrations run as steps: look at the tables when this one's turn comes.
  as.add((as) => {
    const tables = tablesOf(executor);
    const ifaces = tables._ifaces?.[name];
    const entry = ifaces?.[major];
    if (!ifaces || !entry) {
      register(as);
    } else if (iface === name) {
      // Registered after the one inheriting it: replaces the inherited entry.
      if (entry.derived) delete ifaces[major];
      register(as);
    } else if (!entry.derived) {
      // The one inheriting it, registered after it: it keeps its entry over the inherited one.
      const impls = tables._impls?.[name];
      const impl = impls?.[major];
      delete ifaces[major];
      register(as);
      as.add((_as) => {
        ifaces[major] = entry;
        if (impls) impls[major] = impl;
      });
    } else {
      register(as);
    }
  });
}

/**
 * Records the inherited entry of interface `iface`, major `major`, as minor version `minor` if
 * it is older. 2.3.7 records the version the inheriting interface's spec names, and answers
 * NotSupportedVersion to callers of a newer minor.
 */
export function raiseInheritedMinor(
  executor: Executor,
  iface: string,
  major: string,
  minor: string,
): void {
  const entry = tablesOf(executor)._ifaces?.[iface]?.[major];
  if (entry?.derived && Number(entry.mnrver) < Number(minor)) entry.mnrver = minor;
}
