import type { EventId } from '../common/ids';
import { DeliveryLatency } from './latency';

/** What one consumer received through this process. */
export interface ConsumerCounts {
  /** Events delivered: returned by pollEvents, or pushed and acknowledged. */
  delivered: number;
  /** pollEvents calls answered. */
  polls: number;
  /** When it last polled (ms since the epoch), 0 if never. */
  lastPollMs: number;
  /** Events of its backlog read from the warehouse (the discarder had deleted them). */
  fromWarehouse: number;
  /** Reads that began below the oldest event of the active table, with no warehouse to replay. */
  behindRetention: number;
  /** Events parked for it (its receiver kept failing on them), and parked events replayed. */
  parked: number;
  replayed: number;
}

/**
 * Plain counters the event path bumps (a few additions per batch, nothing else), read only when
 * someone looks: the admin interface and /metrics. One set per store connection (`store.counters`,
 * shared by its withTables views), so by the gen, poll and push services on it.
 */
export class StreamCounters {
  /** Events stored by addEvents (addEvent and group commit) in this process. */
  eventsAdded = 0;
  /**
   * onEvents calls that succeeded, and those that failed or timed out (plus attempts at an event
   * larger than one message of the receiver carries, which no call can send).
   */
  pushCalls = 0;
  pushFailures = 0;
  /** Events dropped for LIVE consumers: they fell too far behind, or the event was too large. */
  liveDropped = 0;
  /** Events re-read from the store after a reliable session's queue overflowed. */
  queueOverflows = 0;
  /**
   * Commits that stored consumer pointers (polls' acknowledgements one by one; push sessions'
   * grouped), and the pointer moves they stored: their ratio is how well writes were grouped.
   */
  pointerCommits = 0;
  pointerMoves = 0;
  readonly consumers = new Map<string, ConsumerCounts>();
  /** Delivery latency, once trackLatency() was called (by the first /metrics scrape). */
  latency: DeliveryLatency | null = null;

  /**
   * Starts measuring delivery latency (see DeliveryLatency): from then on, each commit and each
   * acknowledgement costs a few steps more. Until someone asks, nothing is measured.
   */
  trackLatency(): DeliveryLatency {
    return (this.latency ??= new DeliveryLatency());
  }

  consumer(ident: string): ConsumerCounts {
    let c = this.consumers.get(ident);
    if (!c) {
      c = {
        delivered: 0,
        polls: 0,
        lastPollMs: 0,
        fromWarehouse: 0,
        behindRetention: 0,
        parked: 0,
        replayed: 0,
      };
      this.consumers.set(ident, c);
    }
    return c;
  }

  polled(ident: string, events: number): void {
    const c = this.consumer(ident);
    c.polls++;
    c.delivered += events;
    c.lastPollMs = Date.now();
  }

  pushed(ident: string, events: number): void {
    this.pushCalls++;
    this.consumer(ident).delivered += events;
  }
}

/** What a DBEventArchiver did since it was created (read by /metrics). */
export class ArchiverCounters {
  /** Events in batches committed to the warehouse (a batch delivered again counts again). */
  events = 0;
  batches = 0;
  /** The highest event ID archived, null before the first batch. */
  lastId: EventId | null = null;
  /** When the last batch was committed (ms since the epoch), 0 before the first. */
  lastSuccessMs = 0;
  /** Batches whose warehouse transaction failed (they come again). */
  writeFailures = 0;
  /** Connecting, the service, the warehouse at start: the errors the archiver retries. */
  workerErrors = 0;
  /** Between start() and stop() (also stopping by itself on a missing history table). */
  running = false;
}

/** What a DBEventDiscarder did since it was created (read by /metrics). */
export class DiscarderCounters {
  /** Events deleted. */
  events = 0;
  /** Passes that ended without an error (deleting something or not). */
  passes = 0;
  /** The highest event ID deleted, null before the first. */
  lastId: EventId | null = null;
  /** When the last pass ended without an error (ms since the epoch), 0 before the first. */
  lastSuccessMs = 0;
  /** Passes that failed (the next period tries again). */
  failures = 0;
  /** Consumers the last pass ignored as stale. */
  staleConsumers = 0;
}
