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

/**
 * futoin-executor's NodeExecutor with what an event stream needs from its transport:
 * - responses up to the size the registered interfaces allow (FTN18 1.1 allows 8 MiB poll
 *   results): the base class refuses anything over 64 KiB whatever the specs say;
 * - optionally, loopback connections counted as secure channels (traffic that never leaves the
 *   machine), so futoin.evt.gen's SecureChannel rule can be met locally without TLS.
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
    const base = Reflect.get(NodeExecutor.prototype, '_isSecureChannel') as (
      this: NodeExecutor,
      r: IncomingMessage,
    ) => boolean;
    return (
      base.call(this, req) ||
      (secureLoopback.get(this) === true && isLoopback(req.socket.remoteAddress))
    );
  }
}
