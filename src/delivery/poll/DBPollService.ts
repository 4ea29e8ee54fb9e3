import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import { ErrorCode, EvtError } from '../../common/errors';
import { cmpIds, maxId, minId, NO_EVENT } from '../../common/ids';
import { resolveStore, type ResolveStoreOptions } from '../../storage/ccm';
import type { EventStore } from '../../storage/store';
import { ChunkReader, toEvents } from '../reader';
import { PollService, type Event, type PollRequest, type PollServiceOptions } from './PollService';

export interface DBPollServiceOptions extends PollServiceOptions, ResolveStoreOptions {
  event_table?: string;
  consumer_table?: string;
}

/**
 * futoin.evt.poll on a database. Reliable consumers: the stored pointer only moves forward, to
 * the acknowledged last_id but never past the gap-safe horizon (so neither a poisoned last_id nor
 * a late commit can make it skip an event); events come after max(last_id, pointer). LIVE reads
 * from last_id and writes nothing.
 */
export class DBPollService extends PollService {
  readonly ready: Promise<EventStore>;
  private reader: ChunkReader | null = null;

  constructor(as: AsyncSteps, executor: Executor, options: DBPollServiceOptions = {}) {
    super(as, executor, options);
    const storeOptions: ResolveStoreOptions = { ...options };
    if (options.event_table) storeOptions.eventTable = options.event_table;
    if (options.consumer_table) storeOptions.consumerTable = options.consumer_table;
    this.ready = resolveStore(executor.ccm(), storeOptions);
    this.ready.catch(() => undefined);
  }

  static override register(
    as: AsyncSteps,
    executor: Executor,
    options: DBPollServiceOptions = {},
  ): DBPollService {
    const impl = super.register(as, executor, options) as DBPollService;
    as.await(impl.ready);
    return impl;
  }

  protected override async _registerConsumer(ident: string): Promise<void> {
    const store = await this.ready;
    await store.registerConsumer(ident);
  }

  protected override async _pollEvents(req: PollRequest): Promise<Event[]> {
    const store = await this.ready;
    const reader = (this.reader ??= new ChunkReader(store));
    if (!req.reliable) {
      const chunk = await reader.next(req.lastId ?? NO_EVENT, req.want, req.limits);
      return toEvents(chunk.events);
    }

    let pointer = await store.consumerPointer(req.ident);
    if (pointer === null)
      throw new EvtError(ErrorCode.NotRegistered, 'Call registerConsumer first');
    const horizon = await store.horizon();
    if (req.lastId !== null && cmpIds(req.lastId, pointer) > 0) {
      const target = minId(req.lastId, horizon);
      if (cmpIds(target, pointer) > 0) {
        await store.advanceConsumer(req.ident, target);
        pointer = target;
      }
    }

    const after = req.lastId === null ? pointer : maxId(req.lastId, pointer);
    const chunk = await reader.next(after, req.want, req.limits, horizon);
    if (chunk.events.length === 0 && req.want !== null && cmpIds(chunk.horizon, after) > 0) {
      // Nothing wanted up to the horizon: count the skipped events as delivered, so the next
      // poll does not scan them again.
      await store.advanceConsumer(req.ident, chunk.horizon);
    }
    return toEvents(chunk.events);
  }
}
