/**
 * Server-initiated calls over a WebSocket channel with a message the caller already encoded.
 * futoin-executor 2.3.7 (which package.json pins) sends a NativeIface call over a channel in
 * WSChannelContext#_getPerformRequest: it takes a request ID `S<n>` from `_srid`, files the
 * call's AsyncSteps under it in `_srv_req_list` (NodeExecutor's 'message' listener answers it
 * with `success(response)`; `_cleanup` fails it with `error('CommError')` when the connection
 * closes), and sends the JSON text as a binary frame. This does the same without AsyncSteps,
 * NativeIface and a JSON encoding of the parameters per call: a push encodes each event once for
 * all its sessions, and a session's call costs a string concatenation and a frame.
 */
import type { ChannelContext } from 'futoin-executor';
import { ErrorCode } from '../common/errors';

/** A FutoIn response message: a result, or an error code with its description. */
export interface FtnResponse {
  r?: unknown;
  e?: unknown;
  edesc?: unknown;
}

/** What a call failed with: a FutoIn error code and its description. */
export class CallFailed extends Error {
  constructor(
    /** An ErrorCode, or whatever code the peer answered with. */
    readonly code: string,
    readonly info: string,
  ) {
    super(code);
    this.name = 'CallFailed';
  }
}

/** A call filed in `_srv_req_list`, answered the way NodeExecutor answers an AsyncSteps. */
interface PendingCall {
  /** NodeExecutor's `_cleanup` fails only calls whose `state` is set. */
  state: object;
  success(response: unknown): void;
  error(code: string, info?: string): void;
}

interface WsChannelInternals {
  _ws_conn: {
    send(data: string, options: object, cb: (err?: Error) => void): void;
    terminate(): void;
    bufferedAmount: number;
    _source_addr?: unknown;
    _sniffer?: (source: unknown, msg: unknown, incoming: boolean) => void;
  };
  _srid: number;
  _srv_req_list: Record<string, PendingCall | undefined>;
  _updateActivity(): void;
}

/** A field of a peer's message as text (a code or description is a string, unless it is not). */
const textOf = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** As futoin-invoker and futoin-executor send FutoIn messages over WebSocket. */
const WS_SEND_OPTS = Object.freeze({ binary: true, fin: true });

/**
 * The most a channel may hold unsent (futoin-invoker 2.4.9 allows commConcurrency 16 times the
 * request limit); a call beyond it fails at once, as theirs does.
 */
const MAX_BUFFERED_BYTES = 16 * 8 * 1024 * 1024;

/** Calls over one WebSocket channel; see wsCaller. */
export interface WsCaller {
  /**
   * Sends `{"f":f,"p":params,"rid":...}` with `paramsJson` as it is, and resolves with the
   * response's result; rejects with CallFailed: the peer's error, Timeout after `timeoutMs`,
   * CommError when the connection fails or closes, or the send buffer is full.
   */
  call(f: string, paramsJson: string, timeoutMs: number): Promise<unknown>;
}

/** The caller of a WebSocket channel of futoin-executor 2.3.7; null for other channels. */
export function wsCaller(channel: ChannelContext): WsCaller | null {
  if (channel.type() !== 'WS') return null;
  const ctx = channel as unknown as Partial<WsChannelInternals>;
  const conn = ctx._ws_conn;
  if (
    !conn ||
    typeof conn.send !== 'function' ||
    typeof ctx._srid !== 'number' ||
    typeof ctx._srv_req_list !== 'object' ||
    typeof ctx._updateActivity !== 'function'
  )
    return null;
  const ws = ctx as WsChannelInternals;
  return {
    call: (f, paramsJson, timeoutMs) =>
      new Promise<unknown>((resolve, reject) => {
        const rid = `S${ws._srid++}`;
        const calls = ws._srv_req_list;
        let timer: NodeJS.Timeout | undefined;
        const settle = (fn: () => void): void => {
          if (timer === undefined) return;
          clearTimeout(timer);
          timer = undefined;
          delete calls[rid];
          fn();
        };
        const fail = (code: string, info: string): void =>
          settle(() => reject(new CallFailed(code, info)));
        timer = setTimeout(
          () => fail(ErrorCode.Timeout, `no answer within ${timeoutMs} ms`),
          timeoutMs,
        );
        calls[rid] = {
          state: {},
          success: (response) =>
            settle(() => {
              const rsp = (response ?? {}) as FtnResponse;
              if (rsp.e !== undefined)
                reject(new CallFailed(textOf(rsp.e), textOf(rsp.edesc ?? '')));
              else resolve(rsp.r);
            }),
          error: (code, info) => fail(code, info ?? code),
        };
        const raw = `{"f":${JSON.stringify(f)},"p":${paramsJson},"rid":"${rid}"}`;
        if (ws._ws_conn.bufferedAmount + raw.length > MAX_BUFFERED_BYTES) {
          fail(ErrorCode.CommError, `Send buffer overflow: ${ws._ws_conn.bufferedAmount}`);
          return;
        }
        ws._ws_conn._sniffer?.(ws._ws_conn._source_addr, raw, false);
        ws._ws_conn.send(raw, WS_SEND_OPTS, (err) => {
          if (err) {
            ws._ws_conn.terminate();
            fail(ErrorCode.CommError, err.message);
          } else ws._updateActivity();
        });
      }),
  };
}
