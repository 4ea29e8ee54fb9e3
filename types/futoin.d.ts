/* eslint-disable @typescript-eslint/no-explicit-any -- step arguments and event payloads are
   untyped in FutoIn itself: a step receives whatever the previous step succeeded with. */
/**
 * Declarations for the parts of the untyped `futoin-*` packages this project uses, written from
 * their sources (futoin-asyncsteps 2.5, futoin-invoker 2.4, futoin-executor 2.3,
 * futoin-database 1.9). One place only: the rest of the code imports these modules through the
 * types declared here. Members are declared as the packages really behave (for example,
 * `AsyncSteps#error` always throws, and `RequestInfo#info.USER_INFO` is null for anonymous calls).
 */

declare module 'futoin-asyncsteps' {
  namespace $as {
    /** A step: runs with the step's AsyncSteps and the values the previous step succeeded with. */
    type StepFunc = (as: AsyncSteps, ...args: any[]) => void;
    /** An error handler: `err` is the FutoIn error code (a string). */
    type ErrorHandler = (as: AsyncSteps, err: string) => void;

    interface AsyncStepsState {
      error_info?: string | undefined;
      last_exception?: Error | undefined;
      [key: string]: unknown;
    }

    interface AsyncSteps {
      readonly state: AsyncStepsState;
      add(func: StepFunc, onerror?: ErrorHandler): AsyncSteps;
      parallel(onerror?: ErrorHandler): AsyncSteps;
      sync(object: unknown, func: StepFunc, onerror?: ErrorHandler): AsyncSteps;
      /** Raises a FutoIn error in the current step; never returns. */
      error(name: string, error_info?: string): never;
      success(...args: unknown[]): void;
      setTimeout(timeout_ms: number): AsyncSteps;
      setCancel(oncancel: (as: AsyncSteps) => void): AsyncSteps;
      waitExternal(): AsyncSteps;
      loop(func: (as: AsyncSteps) => void, label?: string): AsyncSteps;
      repeat(count: number, func: (as: AsyncSteps, i: number) => void, label?: string): AsyncSteps;
      forEach<T>(
        list: T[],
        func: (as: AsyncSteps, i: number, v: T) => void,
        label?: string,
      ): AsyncSteps;
      break(label?: string): never;
      continue(label?: string): never;
      successStep(...args: unknown[]): AsyncSteps;
      /** Adds a step that waits for the promise; a rejection becomes error 'PromiseReject'. */
      await(promise: Promise<unknown>, onerror?: ErrorHandler): AsyncSteps;
      /** Runs the steps; resolves with the last step's result, rejects with Error(code). */
      promise(): Promise<any>;
      execute(): AsyncSteps;
      cancel(): AsyncSteps;
      newInstance(): AsyncSteps;
    }

    const Errors: Record<string, string>;
    const FutoInError: Record<string, string>;
  }

  function $as(): $as.AsyncSteps;
  export = $as;
}

declare module 'futoin-asyncevent' {
  /** The emitter futoin-asyncevent attaches (listeners are called asynchronously). */
  interface AsyncEventEmitterClass {
    /** Sets how many handlers per event `instance` takes before it warns on the console. */
    setMaxListeners(instance: object, max_listeners: number): void;
  }
  /**
   * Attaches on/once/off/emit for `events` to `target`; more than `max_listeners` (default 8)
   * handlers of one event print a console warning (they are still added).
   */
  function $asyncevent(target: object, events: string[], max_listeners?: number): void;
  namespace $asyncevent {
    const EventEmitter: AsyncEventEmitterClass;
  }
  export = $asyncevent;
}

declare module 'futoin-invoker' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { EventEmitter } from 'events';

  /**
   * Options accepted by `ccm.register()` and the `*Face.register()` helpers: futoin-invoker's
   * CCM options (SimpleCCMOptions), each of which may be set per interface, and the
   * per-interface ones. No index signature, so that a misspelt option does not pass.
   */
  interface RegisterOptions {
    /** Ours: the interface version the `*Face.register()` helpers register. */
    version?: string;
    nativeImpl?: unknown;
    specDirs?: string | ReadonlyArray<string | object>;
    sendOnBehalfOf?: boolean;
    limitZone?: string;
    executor?: unknown;
    callTimeoutMS?: number;
    secureChannel?: boolean;
    hmacKey?: string;
    hmacAlgo?: string;
    macKey?: string;
    macAlgo?: string;
    masterAuth?: unknown;
    prodMode?: boolean;
    commConfigCallback?: ((type: string, ...args: any[]) => void) | null;
    messageSniffer?: (info: unknown, msg: unknown, incoming: boolean) => void;
    disconnectSniffer?: (info: unknown) => void;
    targetOrigin?: string | null;
    /** Retries of a call after CommError (attempts: retryCount + 1). */
    retryCount?: number;
    defaultCoder?: string;
    binaryCoder?: string;
    coder?: string;
    commConcurrency?: number;
  }

  /** A registered interface, as `ccm.iface(name)` returns it. */
  class NativeIface {
    call(
      as: AsyncSteps,
      name: string,
      params?: Record<string, unknown>,
      upload_data?: unknown,
      download_stream?: unknown,
      timeout?: number,
    ): void;
    ifaceInfo(): { name(): string; version(): string; funcs(): Record<string, unknown> };
    /**
     * Events ($asyncevent, listeners run asynchronously): 'connect' and 'disconnect' (WebSocket
     * endpoints: the connection opened; it closed or failed — also a refused connection attempt
     * and `ccm.close()`, after the calls awaiting a response failed with CommError; a call still
     * waiting for the connection to open is not failed and runs into its timeout), 'close' (the
     * CCM closed), 'commError' (error_info, request).
     */
    on(event: string, handler: (...args: any[]) => void): void;
    once(event: string, handler: (...args: any[]) => void): void;
    off(event: string, handler: (...args: any[]) => void): void;
    [func: string]: unknown;
  }

  class SimpleCCM extends EventEmitter {
    constructor(options?: RegisterOptions);
    register(
      as: AsyncSteps,
      name: string | null,
      ifacever: string,
      endpoint: unknown,
      credentials?: string | null,
      options?: RegisterOptions,
    ): void;
    iface<T = NativeIface>(name: string): T;
    unRegister(name: string): void;
    assertIface(name: string, ifacever: string): void;
    alias(name: string, alias: string): void;
    limitZone(name: string, options: Record<string, unknown>): void;
    close(): void;
    /** Added by futoin-database's AutoConfig. */
    db?: (name?: string) => unknown;
  }

  class AdvancedCCM extends SimpleCCM {}

  class PingFace extends NativeIface {
    ping(as: AsyncSteps, echo: number): void;
    static register(
      as: AsyncSteps,
      ccm: SimpleCCM,
      name: string,
      endpoint: unknown,
      credentials?: string | null,
      options?: RegisterOptions,
    ): void;
  }

  namespace SpecTools {
    /** Node's crypto name of an FTN3 (MD5, SHA256, ...) or FTN8 (HS256, ...) MAC algorithm;
     * raises InvalidRequest for others. */
    function getRawAlgo(as: AsyncSteps, algo: string): string;
    /** HMAC of a FutoIn message, all fields but `sec`, in FTN3's canonical order. */
    function genHMACRaw(algo: string, key: string | Buffer, msg: Record<string, unknown>): Buffer;
    /** Constant-time comparison of two MACs. */
    function checkHMAC(a: Buffer, b: Buffer): boolean;
    function checkCompiledType(
      as: AsyncSteps | null,
      info: unknown,
      type: string,
      val: unknown,
    ): boolean;
    /**
     * Adds steps that load, validate and parse `iface`:`version` into `info` (filled in place).
     * Each `specdirs` entry is a folder path/URL holding `<iface>-<version>-iface.json`, or a raw
     * spec object; the first match wins. Imports and inherited interfaces are loaded the same way.
     * Fails the steps with InternalError when no valid spec is found.
     */
    function loadIface(
      as: AsyncSteps,
      info: { iface: string; version: string },
      specdirs: ReadonlyArray<string | object>,
      load_cache?: object,
    ): void;
    function secureObjectPrototype(): void;
    const standard_errors: Record<string, string>;
  }

  /** An FTN7 message format (JSON, CBOR, MsgPack). */
  interface MessageFormat {
    contentType(): string;
    encode(msg: unknown): string | Buffer;
    /** Throws on what it cannot decode. */
    decode(raw: Buffer): unknown;
  }

  namespace MessageCoder {
    /** The format of a raw message (JSON when none matches). */
    function detect(raw: Buffer): MessageFormat;
  }

  const Errors: Record<string, string>;
  const FutoInError: Record<string, string>;
  const specDirs: string[];
}

declare module 'futoin-executor' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { SimpleCCM, RegisterOptions, NativeIface } from 'futoin-invoker';
  import type { IncomingMessage, Server, ServerResponse } from 'http';

  class UserInfo {
    localID(): string;
    globalID(): string;
  }

  class SourceAddress {
    readonly type: string | null;
    readonly host: string | null;
    readonly port: number | string | null;
    asString(): string;
  }

  class ChannelContext {
    /** 'HTTP', 'WS', 'INTERNAL' or 'CALLBACK'. */
    type(): string;
    isStateful(): boolean;
    /** Registers an interface of the peer, reachable over this bi-directional channel. */
    register(as: AsyncSteps, ifacever: string, options?: RegisterOptions): void;
    iface<T = NativeIface>(ifacever: string): T;
    /** Calls `callable(user_data)` once the channel closes. */
    onInvokerAbort(callable: (user_data?: unknown) => void, user_data?: unknown): void;
  }

  interface RequestInfoData {
    RAW_REQUEST: Record<string, unknown> & {
      f?: unknown;
      p?: unknown;
      rid?: unknown;
      sec?: unknown;
    };
    RAW_RESPONSE: Record<string, unknown> | null;
    USER_INFO: UserInfo | null;
    CHANNEL_CONTEXT: ChannelContext;
    CLIENT_ADDR: SourceAddress;
    SECURE_CHANNEL: boolean;
    SECURITY_LEVEL: string;
    [key: string]: unknown;
  }

  class RequestInfo {
    static readonly SL_ANONYMOUS: string;
    static readonly SL_INFO: string;
    static readonly SL_SAFE_OPS: string;
    static readonly SL_PRIVILEGED_OPS: string;
    static readonly SL_EXCEPTIONAL_OPS: string;
    static readonly SL_SYSTEM: string;
    readonly info: RequestInfoData;
    params(): Record<string, any>;
    /** Returns the result object; with an argument, replaces it. */
    result(replace?: unknown): any;
    executor(): Executor;
    ccm(): SimpleCCM;
    channel(): ChannelContext;
    cancelAfter(time_ms: number): void;
  }

  interface ExecutorOptions {
    specDirs?: string | string[];
    prodMode?: boolean;
    reqTimeout?: number;
    heavyReqTimeout?: number;
    securityProvider?: SecurityProvider | null;
    messageSniffer?: (source: unknown, msg: unknown, is_incoming: boolean) => void;
  }

  class Executor {
    /** Closing `ccm` does not close the executor (2.3.7 meant to, but its listener is a no-op). */
    constructor(ccm: SimpleCCM, opts?: ExecutorOptions);
    readonly SAFE_PAYLOAD_LIMIT: number;
    /** The largest response the registered specs allow (used in src/futoin only). */
    protected _maxRspSize: number;
    /** The largest request the registered specs allow (used in src/futoin only). */
    protected _maxReqSize: number;
    ccm(): SimpleCCM;
    register(
      as: AsyncSteps,
      ifacever: string,
      impl: object | ((impl: unknown, executor: Executor) => object),
      specdirs?: string | string[],
    ): void;
    /**
     * Emits 'close' (asynchronously) and nothing else: requests in progress keep running until
     * they end or time out, and the CCM given to the constructor stays open.
     */
    close(close_cb?: () => void): void;
    /**
     * Entry point of in-process calls: a CCM that registered this executor as the endpoint
     * calls it. `info` is the CCM's raw interface info; its `options.executor` is the caller's
     * executor, which the request's INTERNAL channel calls back (and whose 'close' ends it).
     */
    onInternalRequest(
      as: AsyncSteps,
      info: object,
      ftnreq: Record<string, unknown>,
      upload_data?: unknown,
      download_stream?: unknown,
    ): void;
    /**
     * Events ($asyncevent, listeners run asynchronously): 'ready', 'request', 'response',
     * 'notExpected' (code, error_info, last_exception, async_stack), 'close', 'clientError',
     * 'error'.
     */
    on(event: string, handler: (...args: any[]) => void): void;
    once(event: string, handler: (...args: any[]) => void): void;
    off(event: string, handler: (...args: any[]) => void): void;
    emit(event: string, ...args: unknown[]): void;
    packPayload(coder: { encode(msg: unknown): string | Buffer }, msg: unknown): Buffer;
  }

  interface NodeExecutorOptions extends ExecutorOptions {
    httpServer?: Server | null;
    httpAddr?: string | null;
    httpPort?: number | null;
    httpPath?: string;
    httpBacklog?: number | null;
    secureChannel?: boolean;
    trustProxy?: boolean;
    enableLimiter?: boolean;
    cleanupConnMS?: number;
    secureObjectPrototype?: boolean;
  }

  class NodeExecutor extends Executor {
    constructor(ccm: SimpleCCM, opts?: NodeExecutorOptions);
    /** Where FutoIn calls are served, ending in '/' (used in src/futoin only). */
    protected _http_path: string;
    handleHTTPRequest(req: IncomingMessage, rsp: ServerResponse): boolean;
    /** `ws` is a WebSocket of the `ws` package futoin-executor depends on. */
    handleWSConnection(upgrade_req: IncomingMessage, ws: unknown): void;
  }

  class SecurityProvider {
    checkAuth(
      as: AsyncSteps,
      reqinfo: RequestInfo,
      reqmsg: Record<string, unknown>,
      sec: string[],
    ): void;
    signAuto(as: AsyncSteps, reqinfo: RequestInfo, rspmsg: Record<string, unknown>): boolean;
    isSigned(reqinfo: RequestInfo): boolean;
    checkAccess(as: AsyncSteps, reqinfo: RequestInfo, acd: unknown): void;
    /** Documented for subclasses (used in src/futoin only). */
    protected _setUser(
      as: AsyncSteps,
      reqinfo: RequestInfo,
      seclvl: string,
      user: { local_id: string; global_id: string; details?: unknown },
    ): void;
  }

  class PingService {
    ping(as: AsyncSteps, reqinfo: RequestInfo): void;
    static register(as: AsyncSteps, executor: Executor): PingService;
  }
}

declare module 'futoin-executor/LegacySecurityProvider' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { SimpleCCM } from 'futoin-invoker';
  import { SecurityProvider } from 'futoin-executor';

  /**
   * FTN3 "user:secret" (and HMAC) authentication against users added with addUser(); it
   * registers its own #basicauth service in `ccm`.
   */
  class LegacySecurityProvider extends SecurityProvider {
    constructor(as: AsyncSteps, ccm: SimpleCCM, secprov?: SecurityProvider | null);
    addUser(user: string, secret: string, details?: object, system_user?: boolean): void;
  }
  export = LegacySecurityProvider;
}

declare module 'futoin-executor/PingService' {
  import { PingService } from 'futoin-executor';
  export = PingService;
}

declare module 'futoin-database' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { NativeIface } from 'futoin-invoker';

  /** An SQL expression, inserted as is (not escaped). */
  interface Expression {
    toQuery(): string;
  }

  interface Helpers {
    now(): Expression;
    escape(value: unknown): string;
    identifier(name: string): string;
    expr(expr: string): Expression;
  }

  class QueryBuilder {
    set(field: string | Record<string, unknown>, value?: unknown): QueryBuilder;
    get(fields: string | string[], value?: unknown): QueryBuilder;
    where(cond: unknown, value?: unknown): QueryBuilder;
    order(field_expr: string, ascending?: boolean): QueryBuilder;
    limit(count: number, offset?: number): QueryBuilder;
    getInsertID(field: string): QueryBuilder;
    newRow(): QueryBuilder;
    helpers(): Helpers;
    execute(as: AsyncSteps, unsafe_dml?: boolean): void;
    /** As execute, with the rows as objects by column name: the step's result. */
    executeAssoc(as: AsyncSteps, unsafe_dml?: boolean): void;
  }

  class XferBuilder {
    insert(
      entity: string,
      query_options?: { affected?: boolean | number; result?: boolean },
    ): QueryBuilder;
    select(entity: string, query_options?: Record<string, unknown>): QueryBuilder;
    update(entity: string, query_options?: Record<string, unknown>): QueryBuilder;
    delete(entity: string, query_options?: Record<string, unknown>): QueryBuilder;
    raw(
      q: string,
      params?: Record<string, unknown> | null,
      query_options?: Record<string, unknown>,
    ): void;
    helpers(): Helpers;
    execute(as: AsyncSteps, unsafe_dml?: boolean): void;
    executeAssoc(as: AsyncSteps, unsafe_dml?: boolean): void;
  }

  class L1Face extends NativeIface {
    query(as: AsyncSteps, q: string): void;
    getFlavour(as: AsyncSteps): void;
    helpers(): Helpers;
    queryBuilder(type?: string | null, entity?: string | null): QueryBuilder;
    insert(entity: string): QueryBuilder;
    select(entity?: string | null): QueryBuilder;
    update(entity: string): QueryBuilder;
    delete(entity: string): QueryBuilder;
    associateResult(res: unknown): Record<string, unknown>[];
  }

  class L2Face extends L1Face {
    newXfer(iso_level?: string): XferBuilder;
    readonly READ_COMMITTED: string;
    readonly SERIALIZABLE: string;
  }
}

declare module 'futoin-database/AutoConfig' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { SimpleCCM } from 'futoin-invoker';

  interface ConnectionOptions {
    type?: string | string[];
    host?: string;
    port?: number | string;
    user?: string;
    password?: string;
    database?: string;
    conn_limit?: number;
    raw?: Record<string, unknown>;
  }

  /**
   * Registers `#db.<name>` for each entry of `config` (`{ evt: {} }`), filling options from the
   * DB_<NAME>_* variables of `env`.
   */
  function AutoConfig(
    as: AsyncSteps,
    ccm: SimpleCCM,
    config?: Record<string, ConnectionOptions> | null,
    env?: Record<string, string | undefined>,
  ): void;
  namespace AutoConfig {
    function register(type: string, factory: unknown): void;
  }
  export = AutoConfig;
}

declare module '@futoin/specs' {
  export const SPEC_DIRS: string[];
}

declare module 'futoin-database/L2Service' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { Executor } from 'futoin-executor';

  /** Options futoin-database's services take (AutoConfig fills them from DB_* variables). */
  interface ServiceOptions {
    host?: string;
    /** The port; for SQLite, the database file. */
    port?: number | string;
    user?: string;
    password?: string;
    database?: string;
    conn_limit?: number;
    raw?: Record<string, unknown>;
  }

  class L2Service {
    constructor(options: ServiceOptions);
    /**
     * Called once its executor closes: closes the connection(s) without waiting for them
     * (overridden in src/futoin only).
     */
    protected _close(): void;
    static register<T extends L2Service>(
      this: new (options: ServiceOptions) => T,
      as: AsyncSteps,
      executor: Executor,
      options: ServiceOptions,
    ): T;
  }
  export = L2Service;
}

declare module 'futoin-database/PostgreSQLService' {
  import L2Service from 'futoin-database/L2Service';
  /** Its pg Pool (`_pool`) has no 'error' listener of its own: see src/futoin/database.ts. */
  class PostgreSQLService extends L2Service {}
  export = PostgreSQLService;
}

declare module 'futoin-database/MySQLService' {
  import L2Service from 'futoin-database/L2Service';
  class MySQLService extends L2Service {}
  export = MySQLService;
}

declare module 'futoin-database/SQLiteService' {
  import L2Service from 'futoin-database/L2Service';
  class SQLiteService extends L2Service {}
  export = SQLiteService;
}

declare module 'futoin-database/L2Face' {
  import type { AsyncSteps } from 'futoin-asyncsteps';
  import type { SimpleCCM, RegisterOptions } from 'futoin-invoker';
  import { L2Face } from 'futoin-database';
  class L2FaceWithRegister extends L2Face {
    static register(
      as: AsyncSteps,
      ccm: SimpleCCM,
      name: string,
      endpoint: unknown,
      credentials?: string | null,
      options?: RegisterOptions,
    ): void;
  }
  export = L2FaceWithRegister;
}
