import type { Executor } from 'futoin-executor';
import type { RegisterOptions } from 'futoin-invoker';
import { isEventType } from '../common/event';
import { OptionChecks, refuseOption } from '../common/options';
import type { ReceiverStartOptions } from './LiveReceiver';

/**
 * What every receiver connects with (LiveReceiver, ReliableReceiver and DBEventArchiver, which
 * also polls): endpoints, the start options and their defaults, the backoffs.
 */

/** An in-process endpoint: an Executor (futoin's own mark of one: it takes internal requests). */
export const isExecutor = (endpoint: unknown): endpoint is Executor =>
  typeof endpoint === 'object' && endpoint !== null && 'onInternalRequest' in endpoint;

/** `secure+` marks a loopback channel secure (futoin-invoker). */
const WS_URL_RE = /^(secure\+)?wss?:\/\//;
const SERVICE_URL_RE = /^(secure\+)?(https?|wss?):\/\//;

/** Whether events can be pushed over `endpoint`: a ws(s):// URL or an Executor. */
export const canPush = (endpoint: unknown): boolean =>
  (typeof endpoint === 'string' && WS_URL_RE.test(endpoint)) || isExecutor(endpoint);

/** Whether `endpoint` reaches a service at all: an http(s):// or ws(s):// URL or an Executor. */
export const isServiceEndpoint = (endpoint: unknown): boolean =>
  (typeof endpoint === 'string' && SERVICE_URL_RE.test(endpoint)) || isExecutor(endpoint);

/** Defaults of the start options of every receiver (ReceiverStartOptions). */
export const RECEIVER_DEFAULTS = Object.freeze({
  /** Event types to receive: all. */
  want: null,
  /** How long handling one pushed call may take, in ms. */
  reqTimeout: 30_000,
  /** First reconnection delay ceiling, in ms; it doubles per failure... */
  reconnectMinMS: 100,
  /** ...up to this. */
  reconnectMaxMS: 10_000,
});

/** Failed event handling is retried (answered, or polled again) after a backoff between these. */
export const FAILURE_BACKOFF = Object.freeze({ minMs: 100, maxMs: 5_000 });

/** Registration, readyToReceive and pollEvents answer at once: this bounds a stuck service. */
export const CALL_TIMEOUT_MS = 10_000;

/** ReceiverStartOptions checked, with the defaults in. */
export interface ReceiverSettings {
  /** As given: each receiver checks it (and picks its default) with `_checkComponent`. */
  component: string | null | undefined;
  want: string[] | null;
  reqTimeout: number;
  reconnectMinMS: number;
  reconnectMaxMS: number;
  /** The rest: options of the face registration (futoin-invoker's CCM options). */
  faceOptions: RegisterOptions;
}

/** Checks a receiver's start options (`owner` names it in refusals); throws on what cannot work. */
export function receiverSettings(owner: string, options: ReceiverStartOptions): ReceiverSettings {
  const { component, want, reqTimeout, reconnectMinMS, reconnectMaxMS, ...faceOptions } = options;
  const check = new OptionChecks(owner);
  if (component !== undefined && component !== null && typeof component !== 'string') {
    refuseOption(owner, 'component', 'a consumer component name', component, 'string');
  }
  if (want !== undefined && want !== null && !(Array.isArray(want) && want.every(isEventType))) {
    refuseOption(owner, 'want', 'null or a list of event types', want, 'object');
  }
  const settings: ReceiverSettings = {
    component,
    want: want ?? RECEIVER_DEFAULTS.want,
    reqTimeout: check.ms('reqTimeout', reqTimeout, RECEIVER_DEFAULTS.reqTimeout),
    reconnectMinMS: check.ms('reconnectMinMS', reconnectMinMS, RECEIVER_DEFAULTS.reconnectMinMS),
    reconnectMaxMS: check.ms('reconnectMaxMS', reconnectMaxMS, RECEIVER_DEFAULTS.reconnectMaxMS),
    faceOptions,
  };
  check.delays(
    'reconnectMinMS',
    'reconnectMaxMS',
    settings.reconnectMinMS,
    settings.reconnectMaxMS,
  );
  return settings;
}
