/** What one consumer received through this process. */
export interface ConsumerCounts {
  /** Events delivered: returned by pollEvents, or pushed and acknowledged. */
  delivered: number;
  /** pollEvents calls answered. */
  polls: number;
  /** When it last polled (ms since the epoch), 0 if never. */
  lastPollMs: number;
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

  consumer(ident: string): ConsumerCounts {
    let c = this.consumers.get(ident);
    if (!c) {
      c = { delivered: 0, polls: 0, lastPollMs: 0 };
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
