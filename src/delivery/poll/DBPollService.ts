import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import { resolveStore, type ResolveStoreOptions } from '../../storage/ccm';
import type { EventStore } from '../../storage/store';
import type { Event } from '../../common/event';
import {
  ourServiceClass,
  PollService,
  type PollRequest,
  type PollServiceOptions,
} from './PollService';
import { storeOptionsOf, warehouseOf } from './options';
import { StorePoller } from './store-poller';

export interface DBPollServiceOptions extends PollServiceOptions, ResolveStoreOptions {
  /** Event table (default: the store's, evt_queue). */
  event_table?: string;
  /** Consumer table (default: the store's, evt_consumers). */
  consumer_table?: string;
  /**
   * The warehouse the archiver fills. A reliable consumer behind the active table (moved back,
   * or registered after the discarder deleted events) first gets what was deleted from there,
   * then goes on in the active table (see Backlog). A store on the warehouse, or a function
   * opening one when first needed; none by default.
   */
  warehouse?: EventStore | (() => Promise<EventStore | null>) | null;
  /** The warehouse's table (default evt_history, as the archiver's). */
  history_table?: string;
}

/** futoin.evt.poll on a database: see StorePoller for the delivery rules. */
export class DBPollService extends PollService {
  readonly ready: Promise<EventStore>;
  private readonly poller: Promise<StorePoller>;

  constructor(as: AsyncSteps, executor: Executor, options: DBPollServiceOptions = {}) {
    super(as, executor, options);
    this.ready = resolveStore(executor.ccm(), storeOptionsOf('poll', options));
    // Errors surface through register() and each call; never as an unhandled rejection.
    this.ready.then((store) => (this.destination = store.eventTable)).catch(() => undefined);
    const warehouse = warehouseOf('poll', options);
    this.poller = this.ready.then((store) => new StorePoller(store, warehouse));
    this.poller.catch(() => undefined);
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

  protected override async _registerConsumerAsync(ident: string): Promise<void> {
    await (await this.poller).register(ident);
  }

  protected override async _pollEventsAsync(req: PollRequest): Promise<Event[]> {
    return (await this.poller).poll(req);
  }
}
ourServiceClass(DBPollService);
