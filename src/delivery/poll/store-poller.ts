import { ErrorCode, EvtError } from '../../common/errors';
import { cmpIds, maxId, minId, NO_EVENT, type EventId } from '../../common/ids';
import type { AckedEvent } from '../../storage/latency';
import type { EventStore, StoredEvent } from '../../storage/store';
import { Backlog, type WarehouseOpener } from '../backlog';
import { ChunkReader, toEvents } from '../reader';
import type { Event } from '../../common/event';
import type { PollRequest } from './PollService';

/** Readers of reliable consumers kept at most. */
const MAX_READERS = 10_000;

/**
 * FTN18 polling on the event store, shared by DBPollService and DBPushService. Reliable
 * consumers: the stored pointer only moves forward, to the acknowledged last_id but never past
 * the gap-safe horizon (so neither a poisoned last_id nor a late commit can make it skip an
 * event); events come after max(last_id, pointer), from the warehouse first when the discarder
 * deleted them (see Backlog). LIVE reads from last_id and writes nothing.
 */
export class StorePoller {
  /** LIVE reads: the active table only. */
  private readonly reader: ChunkReader;
  /**
   * While delivery latency is measured: per consumer, the events of its last answer here, whose
   * acknowledgement (a later last_id) is then observed.
   */
  private readonly answered = new Map<string, AckedEvent[]>();
  private readonly backlog: Backlog;
  /** Reliable consumers' readers, each learning its events' sizes (their `want` differ). */
  private readonly readers = new Map<string, ChunkReader>();

  constructor(
    private readonly store: EventStore,
    warehouse: WarehouseOpener | null = null,
  ) {
    this.reader = new ChunkReader(store);
    this.backlog = new Backlog(store, warehouse, store.log, store.counters);
  }

  private readerOf(ident: string): ChunkReader {
    let reader = this.readers.get(ident);
    if (!reader) {
      // Bounded: past this many consumers, start over (a reader only holds a size estimate).
      if (this.readers.size >= MAX_READERS) this.readers.clear();
      reader = new ChunkReader(this.backlog.forConsumer(ident));
      this.readers.set(ident, reader);
    }
    return reader;
  }

  async register(ident: string): Promise<void> {
    await this.store.registerConsumer(ident);
  }

  async poll(req: PollRequest): Promise<Event[]> {
    const store = this.store;
    if (!req.reliable) {
      const chunk = await this.reader.next(req.lastId ?? NO_EVENT, req.want, req.limits);
      store.counters.polled(req.ident, chunk.events.length);
      return toEvents(chunk.events);
    }

    const position = await store.consumerPosition(req.ident);
    if (position === null)
      throw new EvtError(ErrorCode.NotRegistered, 'Call registerConsumer first');
    let { pointer } = position;
    // An administrator moved the pointer since the last read: read from there this once,
    // whatever last_id says (it is from before the move).
    const lastId = position.move === null ? req.lastId : null;
    const after = lastId === null ? pointer : maxId(lastId, pointer);
    const horizon = await store.horizonAbove(after, req.limits.maxEvents);
    // Pointer writes are conditional on the pointer read above, so that a move made meanwhile
    // is never undone.
    if (lastId !== null && cmpIds(lastId, pointer) > 0) {
      const target = minId(lastId, horizon);
      if (
        cmpIds(target, pointer) > 0 &&
        (await store.advanceConsumer(req.ident, target, pointer))
      ) {
        this.acknowledged(req.ident, pointer, target);
        pointer = target;
      }
    }

    const chunk = await this.readerOf(req.ident).next(after, req.want, req.limits, horizon);
    if (chunk.events.length === 0 && req.want !== null && cmpIds(chunk.horizon, after) > 0) {
      // Nothing wanted up to the horizon: count the skipped events as delivered, so the next
      // poll does not scan them again.
      await store.advanceConsumer(req.ident, chunk.horizon, pointer);
    }
    // Only once the read from the moved pointer has succeeded (a failed poll leaves the move
    // pending; an answer lost on the way is not seen here).
    if (position.move !== null) await store.consumerMovesApplied(req.ident, position.move);
    store.counters.polled(req.ident, chunk.events.length);
    this.remember(req.ident, chunk.events);
    return toEvents(chunk.events);
  }

  /** The consumer's pointer moved from `from` to `to`: what the last answer had there arrived. */
  private acknowledged(ident: string, from: EventId, to: EventId): void {
    const latency = this.store.counters.latency;
    const answer = this.answered.get(ident);
    if (!latency || !answer) return;
    const acked = answer.filter((e) => cmpIds(e.id, from) > 0 && cmpIds(e.id, to) <= 0);
    latency.acknowledged(ident, this.store.eventTable, acked);
  }

  private remember(ident: string, events: readonly StoredEvent[]): void {
    if (!this.store.counters.latency) return;
    if (events.length === 0) this.answered.delete(ident);
    else
      this.answered.set(
        ident,
        events.map((e) => ({ id: e.id, ts: e.ts })),
      );
  }
}
