import type { Executor, RequestInfo } from 'futoin-executor';
import {
  DEFAULT_MESSAGE_LIMIT,
  FTN18_1_1_MESSAGE_LIMIT,
  IFACE,
  MAX_EVENTS_PER_LIST,
} from '../common/constants';

/** Response envelope (rid, r, a signature) and JSON punctuation around the event list. */
const ENVELOPE_BYTES = 1024;
/** The largest event (bytes of JSON in a list) an FTN18 1.1 message carries. */
export const FTN18_1_1_EVENT_ROOM = FTN18_1_1_MESSAGE_LIMIT - ENVELOPE_BYTES;
/** In-process calls are not serialised; bound them anyway, to bound memory per call. */
export const INTERNAL_CHUNK_BYTES = 16 * 1024 * 1024;

export interface ChunkLimits {
  maxEvents: number;
  /** Bytes of JSON the event list may take. */
  maxBytes: number;
  /** The FTN18 version the caller speaks (from its request), e.g. '1.0'. */
  version: string;
}

/** The interface and version the caller asked for: `futoin.evt.poll:1.0:pollEvents`. */
export function requestedIface(reqinfo: RequestInfo): { iface: string; version: string } {
  const f = reqinfo.info.RAW_REQUEST.f;
  const [iface = '', version = '1.0'] = typeof f === 'string' ? f.split(':') : [];
  return { iface, version };
}

const atLeast11 = (v: string): boolean => {
  const [maj = 0, min = 0] = v.split('.').map(Number);
  return maj > 1 || (maj === 1 && min >= 1);
};

/** The largest response an executor will send. Ours says so; futoin-executor's NodeExecutor
 * refuses anything over its 64 KiB SAFE_PAYLOAD_LIMIT whatever the spec allows. */
export function executorResponseLimit(executor: Executor): number {
  const own = (executor as { maxResponseBytes?: unknown }).maxResponseBytes;
  return typeof own === 'number' ? own : executor.SAFE_PAYLOAD_LIMIT;
}

/**
 * How many events, and how many bytes of them, one pollEvents response may carry on this
 * request's channel: in-process channels carry up to 1000 events; network ones also stop at the
 * message limit of the interface the caller speaks and of the executor sending it. Only
 * futoin.evt.poll 1.1 raises pollEvents to 8 MiB: futoin.evt.push 1.1 inherits poll 1.0, so
 * pollEvents called through push keeps FTN3's 64 KiB (the caller's invoker enforces it).
 */
export function chunkLimits(reqinfo: RequestInfo, maxChunkEvents: number): ChunkLimits {
  const { iface, version } = requestedIface(reqinfo);
  const channel = reqinfo.channel().type();
  if (channel === 'INTERNAL' || channel === 'CALLBACK') {
    return { maxEvents: MAX_EVENTS_PER_LIST, maxBytes: INTERNAL_CHUNK_BYTES, version };
  }
  const big = iface === IFACE.poll && atLeast11(version);
  const protocolLimit = big ? FTN18_1_1_MESSAGE_LIMIT : DEFAULT_MESSAGE_LIMIT;
  const limit = Math.min(protocolLimit, executorResponseLimit(reqinfo.executor()));
  return {
    maxEvents: Math.min(maxChunkEvents, MAX_EVENTS_PER_LIST),
    maxBytes: limit - ENVELOPE_BYTES,
    version,
  };
}

/**
 * JSON bytes an event takes in a list: `{"id":"","type":"","data":,"ts":""},` is 36 bytes around
 * the id, type and data, and ts is always 20. The data is counted as stored: it was written by
 * JSON.stringify, which writes it back the same (other writers' escapes or spaces only make the
 * estimate larger, never smaller).
 */
export const eventBytes = (e: { id: string; type: string; data: string }): number =>
  Buffer.byteLength(e.data) + e.id.length + e.type.length + 56;
