import { ErrorCode, EvtError } from '../common/errors';
import type { Event } from '../common/event';
import type { EventId } from '../common/ids';
import type { ReadQuery, StoredEvent } from '../storage/store';
import { eventBytes, FTN18_1_1_EVENT_ROOM, type ChunkLimits } from './limits';

export interface Chunk {
  events: StoredEvent[];
  /** The horizon the read was bounded by. */
  horizon: EventId;
  /** True when no event up to the horizon is left after these (the rest, if any, was filtered
   * out by `want`); false when the chunk stopped at the message limits. */
  complete: boolean;
}

/** What ChunkReader reads from (the store). */
export interface EventSource {
  /** The gap-safe horizon for a reader at `after` (see EventStore.horizonAbove). */
  horizonAbove(after: EventId, slack: number): Promise<EventId>;
  readEvents(q: ReadQuery): Promise<StoredEvent[]>;
}

/**
 * Reads the next chunk of events after `after`, up to the gap-safe horizon, sized to `limits`.
 * Row sizes are learned as reads go, so a read of large events does not fetch far more rows than
 * one message can carry. An event that alone exceeds the caller's message limit is an error that
 * says so (EventTooLarge): skipping it would lose it, and sending it would fail on every retry.
 * Push sessions catch it and wait on the event (see ReliableSession).
 */
export class ChunkReader {
  /** Moving average of an event's bytes in a list. */
  private avgBytes = 256;

  constructor(private readonly store: EventSource) {}

  async next(
    after: EventId,
    want: readonly string[] | null,
    limits: ChunkLimits,
    horizon?: EventId,
  ): Promise<Chunk> {
    const upTo = horizon ?? (await this.store.horizonAbove(after, limits.maxEvents));
    const events: StoredEvent[] = [];
    let bytes = 0;
    let from = after;
    // Fetch about what fits (by the learned row size); if all of it fitted and more may follow,
    // fetch again, so a misjudged size never shortens the response.
    for (;;) {
      const room = limits.maxEvents - events.length;
      const fetch = Math.max(
        1,
        Math.min(room, Math.ceil(((limits.maxBytes - bytes) / this.avgBytes) * 1.25)),
      );
      const rows = await this.store.readEvents({ after: from, upTo, limit: fetch, want });
      for (const row of rows) {
        const size = eventBytes(row);
        this.avgBytes = this.avgBytes * 0.9 + size * 0.1;
        if (bytes + size > limits.maxBytes) {
          if (events.length === 0) throw tooLarge(row, size, limits);
          return { events, horizon: upTo, complete: false };
        }
        bytes += size;
        events.push(row);
      }
      if (rows.length < fetch) return { events, horizon: upTo, complete: true };
      if (events.length >= limits.maxEvents) return { events, horizon: upTo, complete: false };
      from = events[events.length - 1]!.id;
    }
  }
}

/**
 * One event alone is larger than a message of the caller's channel carries (`limit`: bytes of
 * JSON the event list may take). Its code is NotSupportedVersion when an FTN18 1.1 message would
 * carry it and the caller speaks 1.0, InternalError when no FTN18 message carries it.
 */
export class EventTooLarge extends EvtError {
  constructor(
    readonly eventId: EventId,
    readonly bytes: number,
    readonly limit: number,
    readonly version: string,
  ) {
    const upgrade = version === '1.0' && bytes <= FTN18_1_1_EVENT_ROOM;
    super(
      upgrade ? ErrorCode.NotSupportedVersion : ErrorCode.InternalError,
      `Event ${eventId} takes ${bytes} bytes, more than one message of this channel carries (${limit});` +
        (upgrade
          ? ' use FTN18 1.1 (8 MiB messages)'
          : ' no FTN18 message carries it (8 MiB at most)'),
    );
    this.name = 'EventTooLarge';
  }
}

const tooLarge = (row: StoredEvent, size: number, limits: ChunkLimits): EventTooLarge =>
  new EventTooLarge(row.id, size, limits.maxBytes, limits.version);

/** Stored rows as FTN18 events: the JSON text of data parsed for the response. */
export const toEvents = (rows: readonly StoredEvent[]): Event[] =>
  rows.map((r) => ({ id: r.id, type: r.type, data: JSON.parse(r.data) as unknown, ts: r.ts }));
