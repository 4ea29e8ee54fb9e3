import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import $asyncevent from 'futoin-asyncevent';
import type { ChannelContext, Executor, RequestInfo } from 'futoin-executor';
import type { NativeIface } from 'futoin-invoker';
import {
  DEFAULT_MESSAGE_LIMIT,
  FTN18_1_1_MESSAGE_LIMIT,
  FTN18_VERSION,
  IFACE,
  LIVE_COMPONENT,
  MAX_EVENTS_PER_LIST,
  SPEC_DIRS_ALL,
} from '../../common/constants';
import { awaitSteps, ErrorCode, EvtError } from '../../common/errors';
import { callerId, consumerIdent } from '../../common/identity';
import { callerExecutorOf, wsConnectionOf } from '../../futoin/channel';
import { CallFailed, wsCaller } from '../../futoin/ws-call';
import { raiseInheritedMinor, type WsConnection } from '../../futoin/executor';
import { INTERNAL_CHUNK_BYTES, requestedIface, type ChunkLimits } from '../limits';
import type { Event } from '../../common/event';
import { ourServiceClass, PollService, type PollServiceOptions } from '../poll/PollService';
import { pushSettings, type PushSettings } from './options';
import { eventsJson, type Delivery } from './queue';
import type { PushTarget } from './session';
import { SHUTTING_DOWN } from './hub';

/** Options of the push service; PUSH_DEFAULTS (delivery/push/options) has the defaults. */
export interface PushServiceOptions extends PollServiceOptions {
  /** onEvents calls in flight per consumer at most. */
  request_max?: number;
  /** Events queued in memory per consumer at most; bytes too. */
  queue_max?: number;
  queue_max_bytes?: number;
  /** How long an onEvents call may take before it counts as failed. */
  call_timeout_ms?: number;
  /** Retry delays after a failed push: first and longest. */
  retry_min_ms?: number;
  retry_max_ms?: number;
  /**
   * How often at most a reliable consumer's pointer is stored when it moved past events its
   * `want` filters out only (0: at each move). A pointer write for an acknowledged batch stores
   * everything before it at once; storing such a move late only makes a new session filter
   * those events out again.
   */
  skip_store_ms?: number;
  /**
   * Parks in a row, with no event delivered in between, after which a consumer with max_attempts
   * parks no more: delivery waits on the failing event as without max_attempts until an event
   * goes through again (or max_attempts is set again). Bounds what a receiver failing on every
   * event drains into the parked table.
   */
  park_max_streak?: number;
  /**
   * onEvents calls per second that the LIVE sessions of this service share at most, in equal
   * shares (0: no limit): with N LIVE sessions, each starts a call at most every
   * N / live_calls_per_s seconds unless a whole batch waits, and the events that come meanwhile
   * go in its next call. What LIVE watchers cost the service is bounded so; at the default, up
   * to 100 sessions wait 10 ms at most.
   */
  live_calls_per_s?: number;
  /**
   * onEvents calls per second that the reliable sessions of this service share at most for new
   * events that do not fill a batch, in equal shares (0: no limit): with N reliable sessions,
   * each starts such a call at most every N / reliable_calls_per_s seconds, and the events that
   * come meanwhile go in its next call. A backlog being caught up and a whole batch go at once.
   * It keeps many consumers at a steady rate from costing a call per event each; at the default,
   * up to 100 sessions wait 10 ms at most. LIVE sessions have their own budget
   * (live_calls_per_s): watchers do not slow reliable consumers.
   */
  reliable_calls_per_s?: number;
  /** Backstop polling for new events: fastest and slowest pace. */
  poll_min_ms?: number;
  poll_max_ms?: number;
  /**
   * futoin-eventstream's DBPushService names: the pause between reads for new events while
   * there are none, from sleep_min growing to sleep_max (by sleep_step each time: here it
   * doubles, so sleep_step is accepted and has no effect). poll_min_ms and poll_max_ms win.
   */
  sleep_min?: number;
  sleep_max?: number;
  sleep_step?: number;
  /** Listen for PostgreSQL notifications from other processes. */
  listen?: boolean;
}

export interface PushRequest {
  /** `user:component`, or null for LIVE. */
  ident: string | null;
  want: readonly string[] | null;
  target: PushTarget;
  limits: ChunkLimits;
}

/** Bytes of an onEvents request around its event list (rid, f, seq, JSON punctuation). */
const REQUEST_ENVELOPE_BYTES = 1024;

/**
 * futoin.evt.push service base: futoin.evt.poll plus readyToReceive, which registers the
 * caller's futoin.evt.receiver on the same bi-directional channel (WebSocket or in-process) and
 * starts pushing onEvents(seq, events) to it. Emits 'pushError' (code, info, exception,
 * consumer) and 'queueOverflow' (consumer, dropped events): the reference's arguments, ours
 * after them; and 'eventParked' (consumer, ParkReport) when a consumer's receiver kept failing
 * on an event (DBPushService).
 */
export class PushService extends PollService {
  protected readonly options: PushServiceOptions;
  /** The options checked, with the defaults in. */
  protected readonly settings: PushSettings;
  private isDraining = false;

  constructor(as: AsyncSteps, executor: Executor, options: PushServiceOptions = {}) {
    super(as, executor, options);
    this.options = options;
    this.settings = pushSettings(options);
    $asyncevent(this, ['pushError', 'queueOverflow', 'eventParked']);
  }

  static override get IFACEVER(): string {
    return `${IFACE.push}:${FTN18_VERSION}`;
  }

  static override register(
    as: AsyncSteps,
    executor: Executor,
    options: PushServiceOptions = {},
  ): PushService {
    const impl = super.register(as, executor, options) as PushService;
    as.add((_as) => acceptPollMinor(executor));
    return impl;
  }

  readyToReceive(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { component, want } = reqinfo.params() as { component: string; want?: string[] | null };
    if (this.isDraining) as.error(ErrorCode.DefenseRejected, SHUTTING_DOWN);
    const reliable = component !== LIVE_COMPONENT;
    if (reliable && !this.allowReliable)
      as.error(ErrorCode.SecurityError, 'Reliable delivery is disabled');
    const channel = reqinfo.channel();
    // The receiver speaks the minor version the consumer called push with.
    const receiver = `${IFACE.receiver}:${requestedIface(reqinfo).version === '1.0' ? '1.0' : '1.1'}`;
    channel.register(as, receiver, { specDirs: SPEC_DIRS_ALL, sendOnBehalfOf: false });
    as.add((as) => {
      const target = pushTarget(
        channel.iface<NativeIface>(receiver),
        receiver,
        channel,
        this.settings.callTimeoutMs,
      );
      awaitSteps(as, async () => {
        const ident = reliable ? consumerIdent(callerId(reqinfo), component) : null;
        await this._startPush({
          ident,
          want: want ?? null,
          target,
          limits: onEventsLimits(channel, receiver),
        });
        reqinfo.result(true);
      });
    });
  }

  /** Whether drain() was called. */
  get draining(): boolean {
    return this.isDraining;
  }

  /**
   * For a shutdown: new push sessions are refused from now on (DefenseRejected, which receivers
   * take as a reason to connect again, elsewhere); the onEvents calls in flight may finish and
   * their pointers be stored, for up to `timeoutMs`; then every session ends (WebSocket
   * channels closed as going away, 1001). Resolves true if all in flight settled in time.
   * Polling and the other calls are served as before.
   */
  drain(timeoutMs: number): Promise<boolean> {
    this.isDraining = true;
    return this._drain(timeoutMs);
  }

  /** Drains the sessions (see drain). */
  protected _drain(_timeoutMs: number): Promise<boolean> {
    return Promise.resolve(true);
  }

  /** Starts a push session; rejects with NotRegistered for an unknown reliable consumer. */
  protected _startPush(_req: PushRequest): Promise<void> {
    return Promise.reject(
      new EvtError(ErrorCode.NotImplemented, 'Override PushService#_startPush'),
    );
  }

  /** Declared by $asyncevent. */
  declare emit: (event: string, ...args: unknown[]) => void;
  declare on: (event: string, handler: (...args: never[]) => void) => void;
  declare once: (event: string, handler: (...args: never[]) => void) => void;
  declare off: (event: string, handler: (...args: never[]) => void) => void;
}

ourServiceClass(PushService);

/**
 * futoin.evt.push inherits futoin.evt.poll 1.0 (in FTN18 1.1 too), so futoin-executor records
 * poll as version 1.0 under push and answers NotSupportedVersion to poll 1.1 clients; a push
 * service cannot share an executor with a poll one either. Record it as 1.1: the push service
 * serves poll 1.1 calls (with the 64 KiB responses push's own pollEvents allows, see limits.ts).
 */
function acceptPollMinor(executor: Executor): void {
  const [major = '1', minor = '1'] = FTN18_VERSION.split('.');
  raiseInheritedMinor(executor, IFACE.poll, major, minor);
}

/** Events per onEvents call on this channel, and bytes (FTN18 1.1 receivers take 8 MiB). */
function onEventsLimits(channel: ChannelContext, receiver: string): ChunkLimits {
  const version = receiver.endsWith(':1.0') ? '1.0' : '1.1';
  const type = channel.type();
  if (type === 'INTERNAL' || type === 'CALLBACK') {
    return { maxEvents: MAX_EVENTS_PER_LIST, maxBytes: INTERNAL_CHUNK_BYTES, version };
  }
  const limit = version === '1.0' ? DEFAULT_MESSAGE_LIMIT : FTN18_1_1_MESSAGE_LIMIT;
  return { maxEvents: MAX_EVENTS_PER_LIST, maxBytes: limit - REQUEST_ENVELOPE_BYTES, version };
}

/**
 * onEvents calls over the channel, with a timeout. Over WebSocket, the message is built from the
 * events as each was encoded once (eventsJson) and sent as futoin-executor sends a call
 * (wsCaller): pushing one event to hundreds of sessions encodes it once, not once per session.
 * Other channels call the receiver's NativeIface, each call in its own AsyncSteps.
 */
function pushTarget(
  iface: NativeIface,
  receiver: string,
  channel: ChannelContext,
  timeoutMs: number,
): PushTarget {
  const ws = wsCaller(channel);
  const f = `${receiver}:onEvents`;
  const send: PushTarget['send'] = ws
    ? async (seq, items) => {
        let ok: unknown;
        try {
          ok = await ws.call(f, `{"seq":${seq},"events":${eventsJson(items)}}`, timeoutMs);
        } catch (err) {
          if (err instanceof CallFailed) throw new EvtError(err.code as ErrorCode, err.info);
          throw err;
        }
        if (ok !== true)
          throw new EvtError(ErrorCode.InternalError, `onEvents answered ${String(ok)}`);
      }
    : (seq, items) => invokerSend(iface, timeoutMs, seq, items);
  return {
    send,
    onClose: (cb) => channel.onInvokerAbort(() => cb()),
    ...disconnectOf(channel),
  };
}

/** onEvents through the receiver's NativeIface, in its own AsyncSteps. */
function invokerSend(
  iface: NativeIface,
  timeoutMs: number,
  seq: number,
  items: readonly Delivery[],
): Promise<void> {
  const events: Event[] = items.map((d) => d.event);
  return new Promise<void>((resolve, reject) => {
    $as()
      .add(
        (as) => {
          as.setTimeout(timeoutMs);
          iface.call(as, 'onEvents', { seq, events });
          as.add((_as, ok: unknown) => {
            if (ok === true) resolve();
            else reject(new EvtError(ErrorCode.InternalError, `onEvents answered ${String(ok)}`));
          });
        },
        (as, err) => {
          reject(new EvtError(err as ErrorCode, String(as.state.error_info ?? err)));
        },
      )
      .execute();
  });
}

/**
 * How to make the consumer of a channel start over: close its WebSocket; in process, close the
 * receiver's executor behind the channel (what a lost connection is there: LiveReceiver then
 * reconnects, as the channel's onInvokerAbort ends the session here).
 */
function disconnectOf(
  channel: ChannelContext,
): Pick<PushTarget, 'disconnect' | 'goingAway' | 'probe'> {
  const ws = wsConnectionOf(channel);
  if (ws) {
    return {
      disconnect: (reason: string) => closeWs(ws, WS_CLOSE_RESTART, reason),
      goingAway: (reason: string) => closeWs(ws, WS_CLOSE_GOING_AWAY, reason),
      probe: pingOf(ws),
    };
  }
  const caller = callerExecutorOf(channel);
  if (caller) return { disconnect: () => caller.close() };
  return {};
}

/**
 * Whether the peer of a WebSocket answers a ping within the time given. One that does not is
 * taken as gone (a half-open connection: the peer vanished without closing) and its connection
 * is dropped at once, which ends its session.
 */
function pingOf(ws: WsConnection): PushTarget['probe'] {
  if (!ws.ping || !ws.off) return undefined;
  return (timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      const settle = (alive: boolean): void => {
        clearTimeout(timer);
        ws.off?.('pong', onPong);
        if (!alive) ws.terminate?.();
        resolve(alive);
      };
      const onPong = (): void => settle(true);
      const timer = setTimeout(() => settle(false), timeoutMs);
      ws.on('pong', onPong);
      try {
        ws.ping?.();
      } catch {
        settle(false);
      }
    });
}

/** WebSocket close code for "start a new session" (4000-4999 are the application's). */
const WS_CLOSE_RESTART = 4001;
/** WebSocket close code of a server going down (RFC 6455). */
const WS_CLOSE_GOING_AWAY = 1001;

function closeWs(ws: WsConnection, code: number, reason: string): void {
  // A close reason is at most 123 bytes.
  ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
}
