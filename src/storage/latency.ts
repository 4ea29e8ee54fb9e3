import type { EventId } from '../common/ids';

/**
 * Delivery latency, in plain numbers the event path adds to (/metrics renders them as
 * histograms). Two measures, because no one clock sees both ends of every event:
 *
 * - latency: from the commit to the acknowledgement, both in this process, on its monotonic
 *   clock. Exact, but only this process knows when it committed an event (addEvent; not
 *   addXferEvent, whose transaction commits when its owner says, nor events other processes
 *   add). Commit times are sampled: the first event of the first commit in each
 *   COMMIT_SAMPLE_MS, remembered for COMMIT_SAMPLE_KEEP_MS (a sampled event acknowledged later
 *   is not observed: the age measure and the consumer lag gauges cover that).
 * - age: from the event's `ts` to the acknowledgement, for every event acknowledged here. `ts`
 *   is whole seconds on the database's clock, so this is at most a second too high, plus the
 *   difference between the two clocks; it covers events from any process.
 *
 * An event is acknowledged when the onEvents call carrying it succeeded, or when a poll's
 * `last_id` moved the consumer's pointer past it (for events the previous answer to that
 * consumer in this process carried). Each consumer's acknowledgement is observed separately.
 */

/** Upper bounds of the latency buckets, in seconds: milliseconds to the sampling window. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];
/** Upper bounds of the age buckets, in seconds: `ts` has whole seconds only. */
export const AGE_BUCKETS: readonly number[] = [
  1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400,
];

/** One commit time is remembered per this many milliseconds at most. */
export const COMMIT_SAMPLE_MS = 10;
/** ...for this long (the last latency bucket). */
export const COMMIT_SAMPLE_KEEP_MS = 300_000;

/** Counts of one histogram: per bucket (not cumulative), with the sum and the total count. */
export class Buckets {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  /** Adds `n` observations of `value`. */
  observe(value: number, n = 1): void {
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i]! += n;
    this.sum += value * n;
    this.count += n;
  }
}

/** An acknowledged event: what the measures need of it. */
export interface AckedEvent {
  readonly id: EventId;
  /** `YYYY-MM-DDTHH:MM:SSZ` (UTC). */
  readonly ts: string;
}

/** Clocks: monotonic milliseconds for latency, wall-clock milliseconds for age. */
export interface LatencyClock {
  mono(): number;
  wall(): number;
}

const SYSTEM_CLOCK: LatencyClock = { mono: () => performance.now(), wall: () => Date.now() };

/** See the module comment. One per store connection, created by StreamCounters.trackLatency. */
export class DeliveryLatency {
  /** Per consumer: commit to acknowledgement (s). */
  readonly latency = new Map<string, Buckets>();
  /** Per consumer: `ts` to acknowledgement (s). */
  readonly age = new Map<string, Buckets>();
  /** Per event table: sampled event → when its commit returned (monotonic ms), oldest first. */
  private readonly samples = new Map<string, Map<EventId, number>>();
  private lastSampleAt = -Infinity;

  constructor(private readonly clock: LatencyClock = SYSTEM_CLOCK) {}

  /** Events of `table` were committed just now, by this process (IDs in order). */
  committed(table: string, ids: readonly EventId[]): void {
    const now = this.clock.mono();
    const id = ids[0];
    if (id === undefined || now - this.lastSampleAt < COMMIT_SAMPLE_MS) return;
    this.lastSampleAt = now;
    let samples = this.samples.get(table);
    if (!samples) {
      samples = new Map();
      this.samples.set(table, samples);
    }
    // Inserted in time order, so the oldest come first.
    for (const [old, at] of samples) {
      if (now - at <= COMMIT_SAMPLE_KEEP_MS) break;
      samples.delete(old);
    }
    samples.set(id, now);
  }

  /** `consumer` acknowledged `events` of `table` just now. */
  acknowledged(consumer: string, table: string, events: readonly AckedEvent[]): void {
    if (events.length === 0) return;
    const samples = this.samples.get(table);
    if (samples && samples.size > 0) {
      const now = this.clock.mono();
      let latency: Buckets | undefined;
      for (const e of events) {
        const at = samples.get(e.id);
        if (at === undefined) continue;
        latency ??= this.of(this.latency, consumer, LATENCY_BUCKETS);
        latency.observe(Math.max(0, now - at) / 1000);
      }
    }
    const age = this.of(this.age, consumer, AGE_BUCKETS);
    const wall = this.clock.wall();
    // Neighbours mostly share their second: one parse per run of equal times.
    let ts = '';
    let n = 0;
    for (const e of events) {
      if (e.ts === ts) {
        n++;
        continue;
      }
      observeAge(age, ts, wall, n);
      ts = e.ts;
      n = 1;
    }
    observeAge(age, ts, wall, n);
  }

  private of(map: Map<string, Buckets>, consumer: string, bounds: readonly number[]): Buckets {
    let b = map.get(consumer);
    if (!b) {
      b = new Buckets(bounds);
      map.set(consumer, b);
    }
    return b;
  }
}

/** `n` events of time `ts` are `wall - ts` old (0 when the database's clock is ahead of ours). */
function observeAge(age: Buckets, ts: string, wall: number, n: number): void {
  const at = Date.parse(ts);
  if (n > 0 && !Number.isNaN(at)) age.observe(Math.max(0, wall - at) / 1000, n);
}
