import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import $asyncevent from 'futoin-asyncevent';
import { Executor } from 'futoin-executor';
import { AdvancedCCM, type RegisterOptions } from 'futoin-invoker';
import { sleepStep } from '../common/async';
import { Backoff } from '../common/backoff';
import { LIVE_COMPONENT, SPEC_DIRS_ALL } from '../common/constants';
import { ErrorCode } from '../common/errors';
import type { Event } from '../common/event';
import { PushFace } from '../common/faces/PushFace';
import { CALL_TIMEOUT_MS, canPush, FAILURE_BACKOFF, isExecutor, receiverSettings } from './connect';
import { ReceiverService } from './ReceiverService';

/**
 * Options of `start()` (defaults: RECEIVER_DEFAULTS); the rest go to `PushFace.register()`
 * (futoin-invoker's CCM options).
 */
export interface ReceiverStartOptions extends RegisterOptions {
  /** Consumer component: LIVE (LiveReceiver's default) or a registered one (reliable). */
  component?: string;
  /** Event types to receive; null for all. */
  want?: string[] | null;
  /** How long handling one pushed call may take, in ms. */
  reqTimeout?: number;
  /** First reconnection delay ceiling, in ms; it doubles per failure... */
  reconnectMinMS?: number;
  /** ...up to this. */
  reconnectMaxMS?: number;
}

/** Events a receiver emits (futoin-asyncevent: listeners run asynchronously). */
export interface ReceiverEvents {
  /** The service accepted readyToReceive: pushes are coming over this connection. */
  ready: () => void;
  /** New events, when `_onEvents` is not overridden. */
  newEvents: (events: Event[]) => void;
  /**
   * `_onEvents` succeeded for `count` events, `events` (the archiver: once per warehouse
   * insert). futoin-eventstream's listeners take the count alone.
   */
  processedEvents: (count: number, events: Event[]) => void;
  /** Handling a pushed call failed: `_onEvents` raised, or the executor hit something unexpected. */
  receiverError: (code: string, info?: string, exception?: Error) => void;
  /**
   * Registering or readyToReceive failed, or the connection failed to open or was lost
   * ('Disconnect', as futoin-eventstream's receivers say).
   */
  workerError: (code: string, info?: string, exception?: Error) => void;
}

type Listen = <K extends keyof ReceiverEvents>(event: K, handler: ReceiverEvents[K]) => void;

const RECEIVER_EVENTS: readonly (keyof ReceiverEvents)[] = [
  'ready',
  'newEvents',
  'processedEvents',
  'receiverError',
  'workerError',
];

const PUSHER = 'pusher';
/** What start() throws when started already: futoin-eventstream's words, which callers may match. */
export const ALREADY_STARTED = 'Already started!';
/** workerError's info for 'Disconnect', as futoin-eventstream's receivers say it. */
const LOST = 'Lost connection';
/** Only a session that stayed up this long resets the backoff: a flapping service is not hammered. */
const STABLE_SESSION_MS = 1_000;

/** What one session needs, fixed by start(). */
interface SessionSettings {
  endpoint: unknown;
  credentials: string | null;
  component: string;
  want: string[] | null;
  reqTimeout: number;
  faceOptions: RegisterOptions;
  startOptions: ReceiverStartOptions;
}

/**
 * Receives pushed events: connects to a futoin.evt.push service, asks for events, and keeps
 * doing so — reconnecting with exponential backoff and jitter after any failure or lost
 * connection — until `stop()` or until the executor CCM given to the constructor closes.
 * LiveReceiver consumes the LIVE stream: events arriving while disconnected are missed, and
 * groups are handled as they arrive. Override `_onEvents` or listen to 'newEvents'.
 */
export class LiveReceiver {
  /** The component used when `start()` is given none. */
  static get COMPONENT(): string | null {
    return LIVE_COMPONENT;
  }

  declare readonly on: Listen;
  declare readonly once: Listen;
  declare readonly off: Listen;
  declare readonly emit: <K extends keyof ReceiverEvents>(
    event: K,
    ...args: Parameters<ReceiverEvents[K]>
  ) => void;

  private readonly executorCcm: AdvancedCCM;
  private worker: AsyncSteps | null = null;

  /**
   * @param executor_ccm the CCM of the executors that receive the calls (a new one if
   *   omitted); closing it stops the receiver.
   */
  constructor(executor_ccm: AdvancedCCM = new AdvancedCCM()) {
    $asyncevent(this, [...RECEIVER_EVENTS]);
    this.executorCcm = executor_ccm;
    executor_ccm.once('close', () => this.stop());
  }

  /**
   * Starts receiving from `endpoint`: a `ws://` or `wss://` URL (`secure+ws://` marks a
   * loopback channel secure) or an in-process Executor. Throws when already started ('Already
   * started!', as futoin-eventstream's) or when the endpoint or component cannot work;
   * everything else is retried (see 'workerError').
   */
  start(
    endpoint: unknown,
    credentials: string | null = null,
    options: ReceiverStartOptions = {},
  ): void {
    if (this.worker) throw new Error(ALREADY_STARTED);
    if (!canPush(endpoint)) {
      throw new TypeError('Push needs a bi-directional channel: a ws(s):// URL or an Executor');
    }
    const checked = receiverSettings('receiver', options);
    const component = this._checkComponent(
      checked.component ?? (this.constructor as typeof LiveReceiver).COMPONENT,
    );
    const settings: SessionSettings = {
      endpoint,
      credentials,
      component,
      want: checked.want,
      reqTimeout: checked.reqTimeout,
      faceOptions: checked.faceOptions,
      // The receiving service sees the component in effect (ReliableReceiverService: LIVE).
      startOptions: { ...options, component },
    };
    const reconnect = new Backoff(checked.reconnectMinMS, checked.reconnectMaxMS);

    const worker = $as();
    this.worker = worker;
    let handedOver = false;
    worker.loop((as) => {
      as.add(
        (as) => this.runSession(as, settings, reconnect),
        (as, err) => {
          const info = as.state.error_info;
          this.emit('workerError', err, info, as.state.last_exception);
          handedOver = this._sessionFailed(err, info);
          as.success();
        },
      );
      as.add((as) => {
        if (handedOver) {
          if (this.worker === worker) this.worker = null;
          as.break();
        }
        sleepStep(as, reconnect.next());
      });
    });
    worker.execute();
  }

  /** Stops receiving: closes the connection and executor, cancels timers; start() may follow. */
  stop(): void {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    worker.cancel();
  }

  /**
   * A session could not start (connecting, registering or readyToReceive failed; 'workerError'
   * is emitted already). True hands receiving over to something else: this receiver stops
   * reconnecting (as after stop(), so start() may follow). False (the default) reconnects after
   * the backoff.
   */
  protected _sessionFailed(_code: string, _info?: string): boolean {
    return false;
  }

  /** Validates the component to use; returns it. */
  protected _checkComponent(component: string | null): string {
    if (!component) throw new TypeError('options.component is required');
    return component;
  }

  /**
   * Registers the futoin.evt.receiver service on a session's executor. Override to use another
   * ReceiverService; `_serviceClass(Base)` binds one to this receiver's `_onEvents`.
   */
  protected _registerReceiver(
    as: AsyncSteps,
    executor: Executor,
    options: ReceiverStartOptions,
  ): ReceiverService {
    return this._serviceClass(ReceiverService).register(as, executor, options);
  }

  /**
   * Override to handle events (the default emits 'newEvents'): add steps that complete once the
   * events are safely processed or scheduled; raising an error makes the service retry them
   * (reliable consumers) — after a growing delay, so a failing handler is not hammered.
   */
  protected _onEvents(_as: AsyncSteps, events: Event[]): void {
    this.emit('newEvents', events);
  }

  /**
   * `_onEvents` succeeded for `events`: emits 'processedEvents'. The archiver overrides it: it
   * emits once per warehouse insert instead.
   */
  protected _processed(events: Event[]): void {
    this.emit('processedEvents', events.length, events);
  }

  /** `Base` with its `_onEvents` delivering to this receiver (one per session). */
  protected _serviceClass(Base: typeof ReceiverService): typeof ReceiverService {
    const failures = new Backoff(FAILURE_BACKOFF.minMs, FAILURE_BACKOFF.maxMs);
    const deliver = (as: AsyncSteps, events: Event[]): void => {
      as.add(
        (as) => {
          // A step of its own: `_onEvents` may end it with as.success().
          as.add((as) => this._onEvents(as, events));
          as.add((_as) => {
            failures.reset();
            this._processed(events);
          });
        },
        (as, err) => {
          this.emit('receiverError', err, as.state.error_info, as.state.last_exception);
          sleepStep(as, failures.next());
          // Reported above already: a standard error keeps the executor from reporting it again.
          as.add((as) => as.error(ErrorCode.InternalError, 'Event processing failed'));
        },
      );
    };
    return class extends Base {
      protected override _onEvents(as: AsyncSteps, _reqinfo: unknown, events: Event[]): void {
        deliver(as, events);
      }
    };
  }

  /**
   * One connection: a fresh executor and CCM, registration, readyToReceive, then waiting until
   * the connection is lost. Cancelling (stop) or failing closes both.
   */
  private runSession(as: AsyncSteps, s: SessionSettings, reconnect: Backoff): void {
    const executor = new Executor(this.executorCcm, {
      specDirs: SPEC_DIRS_ALL,
      reqTimeout: s.reqTimeout,
    });
    const ccm = new AdvancedCCM();
    // In-process services have no connection to lose, only their executor to close.
    const target = isExecutor(s.endpoint) ? s.endpoint : null;
    let closed = false;
    let lost = false;
    /** What the step in progress does when the connection goes. */
    let onLoss: (() => void) | null = null;
    const lose = (): void => {
      lost = true;
      const react = onLoss;
      onLoss = null;
      react?.();
    };
    const close = (): void => {
      if (closed) return;
      closed = true;
      onLoss = null;
      target?.off('close', lose);
      ccm.close();
      executor.close();
    };
    as.setCancel(close);

    executor.on('notExpected', (code: string, info?: string, exception?: Error) =>
      this.emit('receiverError', code, info, exception),
    );
    this._registerReceiver(as, executor, s.startOptions);
    as.add((as) => {
      PushFace.register(as, ccm, PUSHER, s.endpoint, s.credentials, {
        limitZone: 'unlimited',
        callTimeoutMS: CALL_TIMEOUT_MS,
        // A retry would silently open a second connection; reconnecting is this loop's job.
        retryCount: 0,
        ...s.faceOptions,
        executor,
      });
    });
    as.add((as) => {
      const pusher = ccm.iface<PushFace>(PUSHER);
      if (target) target.once('close', lose);
      else pusher.on('disconnect', lose);
      // In process, a service that ends the session (its pointer was moved) closes this
      // session's executor: the same as a lost connection.
      executor.once('close', lose);
      if (lost) as.error(ErrorCode.Disconnect, LOST);
      // futoin-invoker leaves a call waiting for a connection that failed to open until the call
      // times out: the loss of the connection ends the calls at once instead.
      const calls = $as();
      calls.add(
        (cas) => {
          if (s.component !== LIVE_COMPONENT) pusher.registerConsumer(cas, s.component);
          pusher.readyToReceive(cas, s.component, s.want);
          cas.add((_cas) => {
            onLoss = null;
            as.success();
          });
        },
        (cas, err) => {
          onLoss = null;
          raise(as, err, cas.state.error_info);
        },
      );
      onLoss = () => {
        calls.cancel();
        raise(as, ErrorCode.Disconnect, LOST);
      };
      as.setCancel(() => {
        onLoss = null;
        calls.cancel();
      });
      calls.execute();
    });
    as.add((as) => {
      const readyAt = Date.now();
      this.emit('ready');
      as.add((as) => {
        if (lost) return;
        onLoss = () => as.success();
        as.setCancel(() => {
          onLoss = null;
        });
      });
      as.add((_as) => {
        close();
        if (Date.now() - readyAt >= STABLE_SESSION_MS) reconnect.reset();
        this.emit('workerError', ErrorCode.Disconnect, LOST);
      });
    });
  }
}

/** Fails a waiting step from outside its execution (AsyncSteps#error throws after handling). */
function raise(as: AsyncSteps, code: string, info?: string): void {
  try {
    as.error(code, info);
  } catch {
    // Expected: the error is handled already.
  }
}
