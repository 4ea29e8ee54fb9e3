import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor, RequestInfo } from 'futoin-executor';
import PingService from 'futoin-executor/PingService';
import {
  FTN18_VERSION,
  IFACE,
  LIVE_COMPONENT,
  MAX_EVENTS_PER_LIST,
  SPEC_DIRS_ALL,
  TABLES,
} from '../../common/constants';
import { awaitSteps, ErrorCode, EvtError } from '../../common/errors';
import type { Event } from '../../common/event';
import type { EventId } from '../../common/ids';
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

/** futoin.evt.poll service base: identity, options and limits; storage in a subclass. */
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
    const impl = new this(as, executor, options);
    executor.register(as, this.IFACEVER, impl, SPEC_DIRS_ALL);
    executor.once('close', () => impl._close());
    return impl;
  }

  registerConsumer(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { component } = reqinfo.params() as { component: string };
    awaitSteps(as, async () => {
      if (component === LIVE_COMPONENT) {
        throw new EvtError(ErrorCode.LiveNotAllowed, 'The LIVE component does not register');
      }
      if (!this.allowReliable)
        throw new EvtError(ErrorCode.SecurityError, 'Registration is not allowed');
      await this._registerConsumer(consumerIdent(callerId(reqinfo), component));
      reqinfo.result(true);
    });
  }

  pollEvents(as: AsyncSteps, reqinfo: RequestInfo): void {
    const params = reqinfo.params() as {
      component: string;
      last_id?: string | null;
      want?: string[] | null;
    };
    awaitSteps(as, () =>
      traced(OPERATIONS.pollEvents, this.destination, async (span) => {
        if (!this.allowPolling)
          throw new EvtError(ErrorCode.SecurityError, 'Only event push is allowed');
        const reliable = params.component !== LIVE_COMPONENT;
        if (reliable && !this.allowReliable)
          throw new EvtError(ErrorCode.SecurityError, 'Reliable delivery is disabled');
        const ident = consumerIdent(callerId(reqinfo), params.component);
        const lastId = params.last_id ?? null;
        const want = params.want ?? null;
        if (span.isRecording()) {
          span.setAttribute(ATTR.consumer, ident);
          if (lastId !== null) span.setAttribute(ATTR.ackedId, lastId);
          if (want !== null) span.setAttribute(ATTR.want, want);
        }
        const events = await this._pollEvents({
          ident,
          lastId,
          want,
          reliable,
          limits: chunkLimits(reqinfo, this.maxChunkEvents),
        });
        setBatch(span, events);
        reqinfo.result(events);
      }),
    );
  }

  protected _registerConsumer(_ident: string): Promise<void> {
    return Promise.reject(
      new EvtError(ErrorCode.NotImplemented, 'Override PollService#_registerConsumer'),
    );
  }

  protected _pollEvents(_req: PollRequest): Promise<Event[]> {
    return Promise.reject(
      new EvtError(ErrorCode.NotImplemented, 'Override PollService#_pollEvents'),
    );
  }

  _close(): void {}
}
