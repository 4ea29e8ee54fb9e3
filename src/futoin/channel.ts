/**
 * futoin-executor channel internals, in one place. Each use names the version it was read from:
 * 2.3.7, which package.json pins.
 */
import type { ChannelContext } from 'futoin-executor';
import type { WsConnection } from './executor';

/** The `ws` WebSocket behind a WebSocket channel (2.3.7: `_ws_conn`); null for other kinds. */
export function wsConnectionOf(channel: ChannelContext): WsConnection | null {
  if (channel.type() !== 'WS') return null;
  const conn = (channel as { _ws_conn?: unknown })._ws_conn;
  return typeof conn === 'object' &&
    conn !== null &&
    typeof (conn as { close?: unknown }).close === 'function'
    ? (conn as WsConnection)
    : null;
}

/**
 * The caller's executor behind an in-process (INTERNAL) channel (2.3.7: `_invoker_executor`):
 * closing it is what a lost connection is in process. Null for other kinds.
 */
export function callerExecutorOf(channel: ChannelContext): { close(): void } | null {
  if (channel.type() !== 'INTERNAL') return null;
  const executor = (channel as { _invoker_executor?: { close?: unknown } | null })
    ._invoker_executor;
  return executor && typeof executor.close === 'function' ? (executor as { close(): void }) : null;
}
