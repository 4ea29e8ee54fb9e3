import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import type { EventId } from '../common/ids';
import { resolveStore, type ResolveStoreOptions } from '../storage/ccm';
import type { NewEvent } from '../storage/dialects';
import type { EventStore } from '../storage/store';
import { GenService, type GenServiceOptions } from './GenService';
import { GroupCommit } from './GroupCommit';
import { dbGenSettings } from './options';

export interface DBGenServiceOptions extends GenServiceOptions, ResolveStoreOptions {
  /** Event table (default evt_queue). */
  event_table?: string;
  /** Events per group-commit transaction at most. */
  batch_max_events?: number;
  /** JSON bytes per group-commit transaction at most. */
  batch_max_bytes?: number;
}

/** futoin.evt.gen on a database: each event is committed (group commit) before its ID returns. */
export class DBGenService extends GenService {
  readonly ready: Promise<EventStore>;
  private readonly writer: GroupCommit;

  constructor(as: AsyncSteps, executor: Executor, options: DBGenServiceOptions = {}) {
    super(as, executor, options);
    const { limits, eventTable } = dbGenSettings(options);
    const storeOptions: ResolveStoreOptions = { ...options };
    if (eventTable) storeOptions.eventTable = eventTable;
    this.ready = resolveStore(executor.ccm(), storeOptions);
    // Errors surface through register() and each call; never as an unhandled rejection.
    this.ready
      .then((store) => (this.destination = eventTable ?? store.eventTable))
      .catch(() => undefined);
    this.writer = new GroupCommit(() => this.ready, limits, eventTable);
  }

  static override register(
    as: AsyncSteps,
    executor: Executor,
    options: DBGenServiceOptions = {},
  ): DBGenService {
    const impl = super.register(as, executor, options) as DBGenService;
    as.await(impl.ready);
    return impl;
  }

  protected override _storeEvent(event: NewEvent, bytes: number): Promise<EventId> {
    return this.writer.add(event, bytes);
  }
}
