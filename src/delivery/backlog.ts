import { cmpIds, maxId, minId, NO_EVENT, type EventId } from '../common/ids';
import type { Logger } from '../common/log';
import type { StreamCounters } from '../storage/counters';
import type { ReadQuery, StoredEvent } from '../storage/store';
import type { EventSource } from './reader';

/** Where events the discarder deleted from the active table are kept: the archiver's target. */
export interface Warehouse {
  /** A store on the warehouse (only its reads are used). */
  readonly store: { readEvents(q: ReadQuery): Promise<StoredEvent[]> };
  /** Its history table (evt_history unless the archiver was told another). */
  readonly table: string;
}

/** The warehouse when first needed; null when there is none. A rejection is tried again later. */
export type WarehouseOpener = () => Promise<Warehouse | null>;

/** What a backlog reads from the active store. */
export interface ActiveSource extends EventSource {
  readonly eventTable: string;
  /** The lowest ID in the active table, '0' when it is empty. */
  oldestEventId(): Promise<EventId>;
}

const nextId = (id: EventId): EventId => (BigInt(id) + 1n).toString();
const prevId = (id: EventId): EventId => (BigInt(id) - 1n).toString();

/**
 * The backlog of reliable consumers on one event table, as ChunkReader reads it: the active
 * table, and below its oldest event the warehouse, with the same `want` filter and limits,
 * in ID order, without a gap or a duplicate at the seam.
 *
 * What "below the oldest event" means here. The discarder deletes the lowest IDs first, so at
 * any moment every ID below the oldest one in the active table was either deleted or never used
 * (sequences skip IDs on rollbacks and caching), and that oldest ID only grows. The archiver is a
 * consumer, so nothing is deleted before the warehouse holds it: the warehouse answers which of
 * those IDs were events. A reader after `from` therefore takes the warehouse's events from
 * `from` up to the oldest active ID, then the active table from there. Whether it is behind is
 * decided after reading the active table: if the read starts at `from + 1` or the oldest ID is
 * still at most `from + 1` once it is done, nothing after `from` had been deleted when it ran
 * (deletions only grow the deleted prefix), so the read is complete; otherwise the warehouse
 * fills the range in. That also holds when the discarder deletes past a consumer's pointer while
 * it reads (a consumer it ignores as stale). The oldest ID seen is remembered: a reader below it
 * goes to the warehouse without asking the active table first.
 *
 * Without a warehouse, a reader behind the active table gets what the active table holds, and
 * the jump is reported instead of passing silently: a warning naming the consumer and the IDs,
 * and `evtstream_consumer_behind_retention_total`. The IDs skipped may all have been unused, as
 * only a warehouse can tell; a consumer reading on from where it acknowledged is never behind,
 * as the discarder deletes nothing above a registered consumer's pointer.
 */
export class Backlog {
  /** The lowest ID seen in the active table: it only grows, and nothing below it is there. */
  private oldestSeen: EventId = NO_EVENT;
  private warehouse: Warehouse | null | undefined;

  constructor(
    readonly active: ActiveSource,
    private readonly openWarehouse: WarehouseOpener | null,
    private readonly log: Logger,
    private readonly counters: StreamCounters,
  ) {}

  /** The backlog as one consumer reads it: reports name it, once per view (a push session). */
  forConsumer(consumer: string): EventSource {
    return new ConsumerBacklog(this, consumer);
  }

  /** Events after `q.after` up to `q.upTo`, from the warehouse and the active table: see the class. */
  async read(view: ConsumerBacklog, q: ReadQuery): Promise<StoredEvent[]> {
    if (q.limit <= 0 || cmpIds(q.upTo, q.after) <= 0 || (q.want && q.want.length === 0)) return [];
    const out: StoredEvent[] = [];
    let from = q.after;
    for (;;) {
      const need = q.limit - out.length;
      if (need <= 0 || cmpIds(from, q.upTo) >= 0) return out;
      if (cmpIds(nextId(from), this.oldestSeen) < 0) {
        const warehouse = await this.opened();
        if (warehouse) {
          // Deleted or never used: the warehouse has those that were events.
          const seam = minId(prevId(this.oldestSeen), q.upTo);
          const rows = await warehouse.store.readEvents({
            after: from,
            upTo: seam,
            limit: need,
            want: q.want,
            table: warehouse.table,
          });
          this.counters.consumer(view.consumer).fromWarehouse += rows.length;
          out.push(...rows);
          if (rows.length === need) return out;
          from = seam;
          continue;
        }
      }
      const rows = await this.active.readEvents({ ...q, after: from, limit: need });
      const first = rows[0];
      // One statement reads one state of the table: holding from + 1, it lacks nothing above.
      if (first && cmpIds(first.id, nextId(from)) === 0) return [...out, ...rows];
      const oldest = await this.active.oldestEventId();
      this.oldestSeen = maxId(this.oldestSeen, oldest);
      if (oldest === NO_EVENT || cmpIds(oldest, nextId(from)) <= 0) return [...out, ...rows];
      const warehouse = await this.opened();
      view.behind(from, oldest, warehouse);
      if (!warehouse) return [...out, ...rows];
      // Round again: below oldestSeen now, so the warehouse first.
    }
  }

  private async opened(): Promise<Warehouse | null> {
    if (this.warehouse === undefined) {
      this.warehouse = this.openWarehouse ? await this.openWarehouse() : null;
    }
    return this.warehouse;
  }

  /** `consumer` read after `from`, below `oldest`, the oldest event of the active table. */
  reportBehind(
    consumer: string,
    from: EventId,
    oldest: EventId,
    warehouse: Warehouse | null,
  ): void {
    const table = this.active.eventTable;
    if (warehouse) {
      this.log.info(
        `${consumer}: reads after event ${from}, below the oldest event of ${table} (${oldest}):` +
          ` replaying what the discarder deleted from the warehouse's ${warehouse.table}`,
      );
      return;
    }
    this.counters.consumer(consumer).behindRetention++;
    this.log.warn(
      `${consumer}: reads after event ${from}, but ${table} starts at event ${oldest}:` +
        ` events ${nextId(from)} to ${prevId(oldest)} were deleted by the discarder (or never` +
        ` used) and cannot be delivered, and delivery goes on at ${oldest}` +
        ` (evtstream_consumer_behind_retention_total). With a warehouse that the archiver fills,` +
        ` the service replays them from there.`,
    );
  }
}

/** One consumer's view of a Backlog (see Backlog.forConsumer). */
class ConsumerBacklog implements EventSource {
  /** `from:oldest` of the last report: each jump is reported once. */
  private reported = '';

  constructor(
    private readonly backlog: Backlog,
    readonly consumer: string,
  ) {}

  horizonAbove(after: EventId, slack: number): Promise<EventId> {
    return this.backlog.active.horizonAbove(after, slack);
  }

  readEvents(q: ReadQuery): Promise<StoredEvent[]> {
    return this.backlog.read(this, q);
  }

  behind(from: EventId, oldest: EventId, warehouse: Warehouse | null): void {
    const key = `${from}:${oldest}`;
    if (key === this.reported) return;
    this.reported = key;
    this.backlog.reportBehind(this.consumer, from, oldest, warehouse);
  }
}
