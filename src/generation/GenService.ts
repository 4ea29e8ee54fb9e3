import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor, RequestInfo } from 'futoin-executor';
import PingService from 'futoin-executor/PingService';
import { FTN18_VERSION, IFACE, SPEC_DIRS_ALL, TABLES } from '../common/constants';
import { awaitSteps, ErrorCode, EvtError } from '../common/errors';
import type { EventId } from '../common/ids';
import { ATTR, OPERATIONS, traced } from '../common/tracing';
import type { NewEvent } from '../storage/dialects';
import { assertEventType, encodeEventData } from './encode';
import { genMaxEventBytes } from './options';

/** Options of the gen services; GEN_DEFAULTS (generation/options) has the defaults. */
export interface GenServiceOptions {
  /** Largest event data accepted, in bytes of JSON (FTN18 1.1 messages carry 8 MiB). */
  max_event_bytes?: number;
}

/**
 * futoin.evt.gen service base: validates and encodes events, then hands them to `_storeEvent`.
 * `GenService.register(as, executor, options)` creates and registers it.
 */
export class GenService extends PingService {
  protected readonly maxEventBytes: number;
  /** The event table, as spans name it (`messaging.destination.name`). */
  protected destination: string = TABLES.events;

  constructor(_as: AsyncSteps, _executor: Executor, options: GenServiceOptions = {}) {
    super();
    this.maxEventBytes = genMaxEventBytes(options);
  }

  static override register(
    as: AsyncSteps,
    executor: Executor,
    options: GenServiceOptions = {},
  ): GenService {
    const impl = new this(as, executor, options);
    executor.register(as, `${IFACE.gen}:${FTN18_VERSION}`, impl, SPEC_DIRS_ALL);
    executor.once('close', () => impl._close());
    return impl;
  }

  addEvent(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { type, data } = reqinfo.params() as { type: unknown; data: unknown };
    awaitSteps(as, async () => {
      reqinfo.result(await this.addEventAsync(type, data));
    });
  }

  /** Validates, encodes and stores one event; resolves with its ID once it is committed. */
  addEventAsync(type: unknown, data: unknown): Promise<EventId> {
    return traced(OPERATIONS.addEvent, this.destination, async (span) => {
      assertEventType(type);
      const { json, bytes } = encodeEventData(data, this.maxEventBytes);
      if (span.isRecording()) {
        span.setAttribute(ATTR.eventType, type);
        span.setAttribute(ATTR.bodySize, bytes);
      }
      const id = await this._storeEvent({ type, data: json }, bytes);
      if (span.isRecording()) span.setAttribute(ATTR.messageId, id);
      return id;
    });
  }

  protected _storeEvent(_event: NewEvent, _bytes: number): Promise<EventId> {
    return Promise.reject(
      new EvtError(ErrorCode.NotImplemented, 'Override GenService#_storeEvent'),
    );
  }

  _close(): void {}
}
