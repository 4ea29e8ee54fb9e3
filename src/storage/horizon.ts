import { cmpIds, maxId, type EventId } from '../common/ids';
import type { Logger } from '../common/log';
import type { WriterProbe } from './dialects';

export interface HorizonOptions {
  /** Warn when open transactions have held the horizon back this long (ms). */
  stallWarnMs: number;
  /** When the database cannot list its writers: how long an ID gap may still fill (ms). */
  settleMs: number;
}

export const HORIZON_DEFAULTS: HorizonOptions = { stallWarnMs: 10_000, settleMs: 3_000 };

interface Pending {
  newest: EventId;
  /** Writers open after `newest` was read; null when the database could not tell. */
  writers: Set<string> | null;
  at: number;
}

/**
 * Keeps at most this many probes waiting: past it, the one after the oldest is dropped (the
 * horizon may then wait longer for the newer ones; it never moves early).
 */
export const MAX_WAITING_PROBES = 256;

/**
 * The gap-safe horizon of one event table: the highest ID up to which every event that will ever
 * commit has committed. Readers deliver up to it and reliable pointers never move past it, so a
 * transaction that commits late with a lower ID is never skipped.
 *
 * Each refresh probes the database (newest committed ID, then the open writer transactions) and
 * remembers the probe until all its writers have ended; then its newest ID is safe. Concurrent
 * callers share probes, and every caller gets a horizon from a probe that began after its call,
 * so an event committed before the call is covered as soon as its writers are done.
 */
export class HorizonTracker {
  private safe: EventId = '0';
  private pending: Pending[] = [];
  private running: Promise<EventId> | null = null;
  private queued: Promise<EventId> | null = null;
  private lastWarnAt = -Infinity;
  /** The oldest waiting probe when a stall was last counted. */
  private stalledProbe: Pending | null = null;
  private stallCount = 0;

  constructor(
    private readonly probe: (since: EventId) => Promise<WriterProbe>,
    private readonly options: HorizonOptions,
    private readonly log: Logger,
    private readonly label: string,
    /** Wall-clock milliseconds (a test's clock in unit tests). */
    private readonly now: () => number = Date.now,
  ) {}

  /** The horizon from a probe started after this call. */
  current(): Promise<EventId> {
    if (!this.running) {
      this.running = this.refresh().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    if (!this.queued) {
      this.queued = this.running
        .catch(() => undefined)
        .then(() => {
          this.queued = null;
          // Any probe running now began after the one these callers waited out, so after their
          // calls: share it. Queuing behind it instead would let a caller that probes back to
          // back (a push channel) keep these waiting for ever.
          return this.running ?? this.current();
        });
    }
    return this.queued;
  }

  /** The last horizon computed, without asking the database. */
  get known(): EventId {
    return this.safe;
  }

  /** How long the oldest unresolved probe has waited (ms), 0 when none waits. */
  heldForMs(now = this.now()): number {
    const first = this.pending[0];
    return first ? now - first.at : 0;
  }

  /** Whether committed events may be waiting for open writers (worth probing again soon). */
  get waiting(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Stalls seen so far: each time the oldest waiting probe had waited `stallWarnMs`, counted
   * once per such probe (a stall outlasting several probes counts once).
   */
  get stalls(): number {
    return this.stallCount;
  }

  private async refresh(): Promise<EventId> {
    const probe = await this.probe(this.safe);
    const now = this.now();
    const live = probe.writers ? new Set(probe.writers) : null;

    this.pending = this.pending.filter((p) => {
      const open = p.writers
        ? live !== null && [...p.writers].some((w) => live.has(w))
        : now - p.at < this.options.settleMs;
      if (!open) this.safe = maxId(this.safe, p.newest);
      return open;
    });

    if (live !== null && live.size === 0) {
      this.safe = maxId(this.safe, probe.newest);
      this.pending = [];
    } else if (cmpIds(probe.newest, this.safe) > 0) {
      const last = this.pending[this.pending.length - 1];
      if (!last || cmpIds(probe.newest, last.newest) > 0) {
        this.pending.push({ newest: probe.newest, writers: live, at: now });
        if (this.pending.length > MAX_WAITING_PROBES) this.pending.splice(1, 1);
      }
    }

    this.warnIfStalled(now);
    return this.safe;
  }

  private warnIfStalled(now: number): void {
    const held = this.heldForMs(now);
    if (held < this.options.stallWarnMs) return;
    const first = this.pending[0];
    if (first && first !== this.stalledProbe) {
      this.stalledProbe = first;
      this.stallCount++;
    }
    if (now - this.lastWarnAt < this.options.stallWarnMs) return;
    this.lastWarnAt = now;
    const who = first?.writers
      ? `open transactions ${[...first.writers].slice(0, 5).join(', ')}`
      : 'an unfilled ID gap';
    this.log.warn(
      `${this.label}: delivery is held at event ${this.safe} for ${Math.round(held / 1000)} s by ${who}; ` +
        'events after it wait until they commit or roll back',
      { event_id: this.safe, held_ms: Math.round(held) },
    );
  }
}

/** For databases with one writer at a time: the newest committed ID is always safe. */
export class SingleWriterHorizon {
  private safe: EventId = '0';

  constructor(private readonly probe: (since: EventId) => Promise<WriterProbe>) {}

  /**
   * This process committed events up to `lastId`: with one writer at a time, every lower ID
   * committed before it or never will, so the horizon is there at once, without a probe.
   */
  committed(lastId: EventId): void {
    this.safe = maxId(this.safe, lastId);
  }

  async current(): Promise<EventId> {
    const { newest } = await this.probe(this.safe);
    this.safe = maxId(this.safe, newest);
    return this.safe;
  }

  get known(): EventId {
    return this.safe;
  }

  heldForMs(): number {
    return 0;
  }

  get waiting(): boolean {
    return false;
  }

  get stalls(): number {
    return 0;
  }
}

export type Horizon = Pick<
  HorizonTracker,
  'current' | 'known' | 'heldForMs' | 'waiting' | 'stalls'
> & {
  /** See SingleWriterHorizon.committed; absent where other writers may still fill lower IDs. */
  committed?(lastId: EventId): void;
};
