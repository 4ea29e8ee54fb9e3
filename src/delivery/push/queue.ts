import { cmpIds, type EventId } from '../../common/ids';
import type { StoredEvent } from '../../storage/store';
import { eventBytes, type ChunkLimits } from '../limits';
import type { Event } from '../../common/event';
import { toEvents } from '../reader';

/** An event ready to push, parsed once and shared by every session it goes to. */
export interface Delivery {
  event: Event;
  bytes: number;
  /** The event as JSON, encoded once for all those sessions (see eventsJson). */
  json?: string;
}

/** The events as a JSON list, each encoded once whatever the number of sessions it goes to. */
export function eventsJson(items: readonly Delivery[]): string {
  let out = '[';
  for (let i = 0; i < items.length; i++) {
    const d = items[i]!;
    if (i > 0) out += ',';
    out += d.json ??= JSON.stringify(d.event);
  }
  return `${out}]`;
}

export const toDeliveries = (rows: readonly StoredEvent[]): Delivery[] => {
  const events = toEvents(rows);
  return events.map((event, i) => ({ event, bytes: eventBytes(rows[i]!) }));
};

/** Events waiting to be pushed to one session, in ID order, with their total size. */
export class DeliveryQueue {
  private items: Delivery[] = [];
  private total = 0;

  get length(): number {
    return this.items.length;
  }

  get bytes(): number {
    return this.total;
  }

  get head(): Delivery | undefined {
    return this.items[0];
  }

  get lastId(): EventId | undefined {
    return this.items[this.items.length - 1]?.event.id;
  }

  push(d: Delivery): void {
    this.items.push(d);
    this.total += d.bytes;
  }

  shift(): Delivery | undefined {
    const d = this.items.shift();
    if (d) this.total -= d.bytes;
    return d;
  }

  /** Whether it holds more than `maxEvents` events or `maxBytes` bytes. */
  exceeds(maxEvents: number, maxBytes: number): boolean {
    return this.items.length > maxEvents || this.total > maxBytes;
  }

  /** Whether it holds a whole batch: take() would stop at the limits, not at its end. */
  fills(limits: ChunkLimits): boolean {
    return this.items.length >= limits.maxEvents || this.total > limits.maxBytes;
  }

  /** Puts `items` (in ID order, all before what is queued) back at the front. */
  unshift(items: readonly Delivery[]): void {
    this.items.unshift(...items);
    for (const d of items) this.total += d.bytes;
  }

  /** How many queued events, from the front, have IDs up to `id`. */
  countUpTo(id: EventId): number {
    let n = 0;
    while (n < this.items.length && cmpIds(this.items[n]!.event.id, id) <= 0) n++;
    return n;
  }

  /**
   * Takes the longest prefix that fits the limits (and `most` events, if given): at least one
   * event, if there is one.
   */
  take(limits: ChunkLimits, most = limits.maxEvents): Delivery[] {
    let bytes = 0;
    let n = 0;
    const cap = Math.min(most, limits.maxEvents);
    while (n < this.items.length && n < cap) {
      const size = this.items[n]!.bytes;
      if (n > 0 && bytes + size > limits.maxBytes) break;
      bytes += size;
      n++;
    }
    this.total -= bytes;
    return this.items.splice(0, n);
  }

  clear(): void {
    this.items = [];
    this.total = 0;
  }
}
