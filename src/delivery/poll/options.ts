import { MAX_EVENTS_PER_LIST, TABLES } from '../../common/constants';
import { OptionChecks, refuseOption, TABLE_NAME } from '../../common/options';
import type { ResolveStoreOptions } from '../../storage/ccm';
import { assertIdentifier, EventStore } from '../../storage/store';
import type { WarehouseOpener } from '../backlog';
import type { DBPollServiceOptions } from './DBPollService';
import type { PollServiceOptions } from './PollService';

/** Defaults of the poll service's options (PollServiceOptions; push takes them too). */
export const POLL_DEFAULTS = Object.freeze({
  /** Registered (reliable) consumers may use the service. */
  allow_reliable: true,
  /** pollEvents may be called; false leaves push only. */
  allow_polling: true,
  /** Events per network response at most (the FTN18 maximum); bytes also limit. */
  max_chunk_events: MAX_EVENTS_PER_LIST,
});

export interface PollSettings {
  allowReliable: boolean;
  allowPolling: boolean;
  maxChunkEvents: number;
}

/** Checks the poll options (of a push service too: push extends poll). */
export function pollSettings(options: PollServiceOptions): PollSettings {
  const check = new OptionChecks('poll');
  return {
    allowReliable: check.bool(
      'allow_reliable',
      options.allow_reliable,
      POLL_DEFAULTS.allow_reliable,
    ),
    allowPolling: check.bool('allow_polling', options.allow_polling, POLL_DEFAULTS.allow_polling),
    maxChunkEvents: check.int(
      'max_chunk_events',
      options.max_chunk_events,
      POLL_DEFAULTS.max_chunk_events,
      { min: 1, max: MAX_EVENTS_PER_LIST },
    ),
  };
}

/** The store options of a DB*Service's options (reference-style table names → ours), checked. */
export function storeOptionsOf(owner: string, options: DBPollServiceOptions): ResolveStoreOptions {
  const check = new OptionChecks(owner);
  const eventTable = check.string('event_table', options.event_table, TABLE_NAME, assertIdentifier);
  const consumerTable = check.string(
    'consumer_table',
    options.consumer_table,
    TABLE_NAME,
    assertIdentifier,
  );
  const out: ResolveStoreOptions = { ...options };
  if (eventTable) out.eventTable = eventTable;
  if (consumerTable) out.consumerTable = consumerTable;
  return out;
}

/**
 * The warehouse a DB*Service replays discarded events from (options `warehouse` and
 * `history_table`), checked; null when there is none.
 */
export function warehouseOf(owner: string, options: DBPollServiceOptions): WarehouseOpener | null {
  const check = new OptionChecks(owner);
  const table =
    check.string('history_table', options.history_table, TABLE_NAME, assertIdentifier) ??
    TABLES.history;
  const w = options.warehouse;
  if (w === undefined || w === null) return null;
  if (w instanceof EventStore) return () => Promise.resolve({ store: w, table });
  if (typeof w !== 'function') {
    refuseOption(owner, 'warehouse', 'an EventStore or a function opening one', w, 'function');
  }
  return async () => {
    const store = await w();
    return store ? { store, table } : null;
  };
}
