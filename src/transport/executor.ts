import type { IncomingMessage } from 'http';
// NodeExecutor freezes Object.prototype (futoin's defence against prototype pollution,
// CVE-2018-3721). A module loaded after that which assigns toString & co. on its own prototypes
// throws; moment, which futoin-database's query drivers use, does. Load them first.
import 'futoin-database/MySQLDriver';
import 'futoin-database/PostgreSQLDriver';
import 'futoin-database/SQLiteDriver';
import { NodeExecutor } from 'futoin-executor';
import type { SimpleCCM } from 'futoin-invoker';
import type { NodeExecutorOptions } from 'futoin-executor';

export interface EvtExecutorOptions extends NodeExecutorOptions {
  /** Treat connections from loopback addresses as secure channels (default false). */
  secureLoopback?: boolean;
}

/** Settings kept outside the instance: NodeExecutor seals itself at the end of its constructor. */
const secureLoopback = new WeakMap<object, boolean>();

const isLoopback = (addr: string | undefined): boolean =>
  !!addr && (addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.'));

/** What NodeExecutor 2.3 does with the WebSocket objects it is given (the `ws` package). */
interface WsLike {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  close(code?: number, reason?: string): void;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Calls a NodeExecutor method the typings do not declare (futoin-executor 2.3 internals). */
function callBase<R>(self: NodeExecutor, name: string, ...args: unknown[]): R {
  const fn = Reflect.get(NodeExecutor.prototype, name) as (
    this: NodeExecutor,
    ...a: unknown[]
  ) => R;
  return fn.apply(self, args);
}

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
 * It relies on NodeExecutor 2.3 internals (`_handleHTTPRequestCommon`, `_handleWSRequest`,
 * `_isSecureChannel`); package.json pins that version.
 */
export class EvtNodeExecutor extends NodeExecutor {
  constructor(ccm: SimpleCCM, opts: EvtExecutorOptions = {}) {
    super(ccm, opts);
    secureLoopback.set(this, opts.secureLoopback ?? false);
  }

  /** The largest response this executor sends. */
  get maxResponseBytes(): number {
    return Math.max(this.SAFE_PAYLOAD_LIMIT, this._maxRspSize);
  }

  override packPayload(coder: { encode(msg: unknown): string | Buffer }, msg: unknown): Buffer {
    const encoded = coder.encode(msg);
    const raw = typeof encoded === 'string' ? Buffer.from(encoded) : encoded;
    if (raw.length > this.maxResponseBytes) {
      this.emit(
        'notExpected',
        'InternalError',
        `Response of ${raw.length} bytes exceeds ${this.maxResponseBytes}`,
        null,
        null,
      );
      throw new Error('InternalError');
    }
    return raw;
  }

  /** Overrides NodeExecutor's (undeclared) per-request check. */
  protected _isSecureChannel(req: IncomingMessage): boolean {
    return (
      callBase<boolean>(this, '_isSecureChannel', req) ||
      (secureLoopback.get(this) === true && isLoopback(req.socket.remoteAddress))
    );
  }

  override handleWSConnection(upgradeReq: IncomingMessage, wsArg: unknown): void {
    const ws = wsArg as WsLike;
    // `ws` has already closed the connection with the right code when it emits 'error'.
    ws.on('error', (err) => this.emit('clientError', upgradeReq, (err as Error).message));
    // Install NodeExecutor's listeners through a guard on 'message'.
    const on = ws.on.bind(ws);
    ws.on = (event, listener) =>
      on(
        event,
        event !== 'message'
          ? listener
          : (...args: unknown[]) => this.guardMessage(ws, upgradeReq, listener, args),
      );
    try {
      super.handleWSConnection(upgradeReq, ws);
    } finally {
      ws.on = on;
    }
  }

  private guardMessage(
    ws: WsLike,
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

  /** Overrides NodeExecutor's (undeclared) HTTP request entry. */
  protected _handleHTTPRequestCommon(params: { ftnreq: unknown; [k: string]: unknown }): void {
    callBase(this, '_handleHTTPRequestCommon', {
      ...params,
      ftnreq: normalizeRequest(params.ftnreq),
    });
  }

  /** Overrides NodeExecutor's (undeclared) WebSocket request entry. */
  protected _handleWSRequest(
    context: unknown,
    ftnreq: Record<string, unknown>,
    coder: unknown,
  ): void {
    callBase(this, '_handleWSRequest', context, normalizeRequest(ftnreq), coder);
  }
}
