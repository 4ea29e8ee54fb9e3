import type { AsyncSteps } from 'futoin-asyncsteps';
import type { ChannelContext, Executor, RequestInfo } from 'futoin-executor';
import PingService from 'futoin-executor/PingService';
import {
  DEFAULT_MESSAGE_LIMIT,
  FTN18_VERSION,
  IFACE,
  LIVE_COMPONENT,
  MAX_EVENTS_PER_LIST,
  SPEC_DIRS_ALL,
  TABLES,
} from '../../common/constants';
import { awaitSteps, ErrorCode, EvtError, isEvtError } from '../../common/errors';
import type { Event } from '../../common/event';
import { NO_EVENT, type EventId } from '../../common/ids';
import { callerId, consumerIdent } from '../../common/identity';
import { ATTR, OPERATIONS, setBatch, traced } from '../../common/tracing';
import { chunkLimits, type ChunkLimits } from '../limits';
import { pollSettings } from './options';

export type { Event } from '../../common/event';

/** Options of the poll service; POLL_DEFAULTS (delivery/poll/options) has the defaults. */
export interface PollServiceOptions {
  /** Registered (reliable) consumers may use the service. */
  allow_reliable?: boolean;
  /** pollEvents may be called; false leaves push only. */
  allow_polling?: boolean;
  /** Events per network response at most (1000, the FTN18 maximum); bytes also limit. */
  max_chunk_events?: number;
}

export interface PollRequest {
  /** `user:component` of the caller. */
  ident: string;
  /** null: no last_id given. */
  lastId: EventId | null;
  want: readonly string[] | null;
  reliable: boolean;
  limits: ChunkLimits;
}

/**
 * What futoin-eventstream's `_pollEvents(as, {...})` hook gets, with the same names and
 * meaning; `limits` is ours (bytes too), absent when a subclass makes its own object.
 */
export interface PollHookRequest {
  executor: Executor;
  ident: string;
  /** '0' when the caller gave none. */
  last_id: EventId;
  want: readonly string[] | null;
  is_reliable: boolean;
  /** Events per response at most (`_maxChunkEvents(channel)`). */
  chunk_size: number;
  limits?: ChunkLimits;
}

/**
 * futoin-eventstream's push engine hooks: our push services deliver differently (see
 * PushHub), so a subclass that overrides one would not be called as it expects.
 */
const PUSH_ENGINE_HOOKS = [
  '_pokeWorker',
  '_recordLastId',
  '_onEvents',
  '_pushLive',
  '_reliableWorker',
  '_cleanupChannel',
  '_onPushError',
  '_trimChunk',
  '_mergeQueue',
  '_res2events',
];

/** What applications can match: a hook of futoin-eventstream's that ours does not call. */
export class UnsupportedHookError extends Error {
  constructor(
    readonly className: string,
    readonly hook: string,
    why: string,
  ) {
    super(`${className} overrides ${hook}, futoin-eventstream's hook, which ${why}`);
    this.name = 'UnsupportedHookError';
  }
}

/**
 * futoin.evt.poll service base: identity, options and limits; storage in a subclass.
 *
 * A subclass gives the storage either with futoin-eventstream's hooks (the same signatures:
 * `_registerConsumer(as, executor, ident)`, `_pollEvents(as, { executor, ident, last_id, want,
 * is_reliable, chunk_size })` ending with the events as the step's result,
 * `_maxChunkEvents(channel)`), so its subclasses work here unchanged, or with promise hooks
 * (`_registerConsumerAsync(ident)`, `_pollEventsAsync(req)`), which the default AsyncSteps
 * hooks call: DBPollService does. Registering a class that overrides one of the reference's
 * push engine hooks fails at once (UnsupportedHookError): see `_unsupportedHooks()`.
 */
export class PollService extends PingService {
  protected readonly allowReliable: boolean;
  protected readonly allowPolling: boolean;
  protected readonly maxChunkEvents: number;
  /** The event table, as spans name it (`messaging.destination.name`). */
  protected destination: string = TABLES.events;

  get MAX_EVENTS(): number {
    return MAX_EVENTS_PER_LIST;
  }

  constructor(_as: AsyncSteps, _executor: Executor, options: PollServiceOptions = {}) {
    super();
    const settings = pollSettings(options);
    this.allowReliable = settings.allowReliable;
    this.allowPolling = settings.allowPolling;
    this.maxChunkEvents = settings.maxChunkEvents;
  }

  /** The interface version this service registers (PushService registers push). */
  static get IFACEVER(): string {
    return `${IFACE.poll}:${FTN18_VERSION}`;
  }

  static override register(
    as: AsyncSteps,
    executor: Executor,
    options: PollServiceOptions = {},
  ): PollService {
    refuseUnsupportedHooks(this);
    const impl = new this(as, executor, options);
    executor.register(as, this.IFACEVER, impl, SPEC_DIRS_ALL);
    executor.once('close', () => impl._close());
    return impl;
  }

  /**
   * futoin-eventstream hooks this class cannot honour, each with why; registering a subclass
   * that overrides (or adds) one of them throws. Push services add to it.
   */
  static _unsupportedHooks(): Record<string, string> {
    const why = 'our push services do not call: they deliver with their own engine';
    return Object.fromEntries(PUSH_ENGINE_HOOKS.map((h) => [h, why]));
  }

  registerConsumer(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { component } = reqinfo.params() as { component: string };
    if (component === LIVE_COMPONENT) {
      as.error(ErrorCode.LiveNotAllowed, 'The LIVE component does not register');
    }
    if (!this.allowReliable) as.error(ErrorCode.SecurityError, 'Registration is not allowed');
    const ident = callerIdent(as, reqinfo, component);
    this._registerConsumer(as, reqinfo.executor(), ident);
    as.add((_as) => {
      reqinfo.result(true);
    });
  }

  pollEvents(as: AsyncSteps, reqinfo: RequestInfo): void {
    const params = reqinfo.params() as {
      component: string;
      last_id?: string | null;
      want?: string[] | null;
    };
    if (!this.allowPolling) as.error(ErrorCode.SecurityError, 'Only event push is allowed');
    const reliable = params.component !== LIVE_COMPONENT;
    if (reliable && !this.allowReliable) {
      as.error(ErrorCode.SecurityError, 'Reliable delivery is disabled');
    }
    const limits = chunkLimits(reqinfo, this.maxChunkEvents);
    this._pollEvents(as, {
      executor: reqinfo.executor(),
      ident: callerIdent(as, reqinfo, params.component),
      last_id: params.last_id ?? NO_EVENT,
      want: params.want ?? null,
      is_reliable: reliable,
      chunk_size: this._maxChunkEvents(reqinfo.channel(), limits),
      limits,
    });
    as.add((_as, events: Event[]) => {
      reqinfo.result(events);
    });
  }

  /**
   * Events per response on `channel` (futoin-eventstream's hook): 1000 in process, else the
   * `max_chunk_events` option. Bytes limit a response too (`limits`).
   */
  protected _maxChunkEvents(_channel: ChannelContext, limits?: ChunkLimits): number {
    return limits?.maxEvents ?? this.maxChunkEvents;
  }

  /** futoin-eventstream's hook: registers `ident`; by default `_registerConsumerAsync`. */
  protected _registerConsumer(as: AsyncSteps, _executor: Executor, ident: string): void {
    awaitSteps(as, () => this._registerConsumerAsync(ident));
  }

  /**
   * futoin-eventstream's hook: adds steps ending with the events as the result; by default
   * `_pollEventsAsync`.
   */
  protected _pollEvents(as: AsyncSteps, req: PollHookRequest): void {
    const limits = req.limits ?? chunkLimitsOf(req.chunk_size);
    const lastId = req.last_id === NO_EVENT ? null : req.last_id;
    awaitSteps(as, () =>
      traced(OPERATIONS.pollEvents, this.destination, async (span) => {
        if (span.isRecording()) {
          span.setAttribute(ATTR.consumer, req.ident);
          if (lastId !== null) span.setAttribute(ATTR.ackedId, lastId);
          if (req.want !== null) span.setAttribute(ATTR.want, [...req.want]);
        }
        const events = await this._pollEventsAsync({
          ident: req.ident,
          lastId,
          want: req.want,
          reliable: req.is_reliable,
          limits: { ...limits, maxEvents: Math.min(limits.maxEvents, req.chunk_size) },
        });
        setBatch(span, events);
        return events;
      }),
    );
  }

  protected _registerConsumerAsync(_ident: string): Promise<void> {
    return Promise.reject(
      new EvtError(ErrorCode.NotImplemented, 'Override PollService#_registerConsumer'),
    );
  }

  protected _pollEventsAsync(_req: PollRequest): Promise<Event[]> {
    return Promise.reject(
      new EvtError(ErrorCode.NotImplemented, 'Override PollService#_pollEvents'),
    );
  }

  _close(): void {}
}

/** The caller's consumer ident; an anonymous caller fails the step (SecurityError, with why). */
function callerIdent(as: AsyncSteps, reqinfo: RequestInfo, component: string): string {
  try {
    return consumerIdent(callerId(reqinfo), component);
  } catch (err) {
    if (isEvtError(err)) as.error(err.code, err.info);
    throw err;
  }
}

/** Limits for a request a subclass made itself: `chunk_size` events in FTN3's 64 KiB. */
const chunkLimitsOf = (chunkSize: number): ChunkLimits => ({
  maxEvents: Math.min(chunkSize, MAX_EVENTS_PER_LIST),
  maxBytes: DEFAULT_MESSAGE_LIMIT - 1024,
  version: '1.0',
});

/**
 * Throws UnsupportedHookError if `cls`, or a class between it and ours, defines a hook that
 * `cls._unsupportedHooks()` names: a subclass written for futoin-eventstream would otherwise
 * register fine and then silently not be called.
 */
function refuseUnsupportedHooks(cls: typeof PollService): void {
  const unsupported = cls._unsupportedHooks();
  for (let c: unknown = cls; typeof c === 'function' && !OUR_CLASSES.has(c);) {
    const fn = c as { name: string; prototype: object };
    for (const hook of Object.keys(unsupported)) {
      if (Object.hasOwn(fn.prototype, hook) || Object.hasOwn(fn, hook)) {
        throw new UnsupportedHookError(fn.name || cls.name, hook, unsupported[hook]!);
      }
    }
    c = Object.getPrototypeOf(c);
  }
}

/** Our classes of this family: their own members are not a subclass's overrides. */
const OUR_CLASSES = new Set<unknown>();

/** Marks one of our service classes (PollService, DBPollService, PushService, DBPushService). */
export function ourServiceClass(cls: unknown): void {
  OUR_CLASSES.add(cls);
}
ourServiceClass(PollService);
