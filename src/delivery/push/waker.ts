import { sleep, systemClock, type Clock } from '../../common/async';
import { Backoff } from '../../common/backoff';
import type { EventId } from '../../common/ids';
import type { Logger } from '../../common/log';
import type { Listener } from '../../storage/dialects';
import type { EventStore } from '../../storage/store';

export interface WakerOptions {
  /** Backstop polling: the shortest and longest pause between checks for new events (ms). */
  pollMinMs: number;
  pollMaxMs: number;
  /** Use the database's notifications (PostgreSQL LISTEN) where it has them. */
  listen: boolean;
}

/**
 * What woke the hub: a commit of this process (with the highest ID it stored), a notification
 * from another process, or the backstop's timer.
 */
export type Wake = { by: 'commit'; lastId: EventId } | { by: 'notice' } | { by: 'poll' };

/** What a wake found. */
export interface WakeResult {
  /** Nothing listens (no session): the backstop rests until resume(). */
  idle: boolean;
  /** New events were read. */
  found: boolean;
  /** Committed events may wait for open writers: check again soon. */
  waiting: boolean;
}

/**
 * Wakes the push hub when new events may be readable, from three sources:
 * - events committed by this process (the store's 'committed' event): at once;
 * - PostgreSQL NOTIFY from other processes: one LISTEN connection, reconnected with backoff,
 *   with a catch-up wake after each reconnect (notices sent while it was down are lost);
 * - polling as the backstop for what nothing announces (other processes on SQLite and MySQL,
 *   transactions of futoin-database users, lost notices).
 *
 * Every wake costs the process a wake-up and the database a query, so the backstop keeps its own
 * pace: fast (pollMinMs) only while its own checks find events, or while committed events wait
 * for open writers; otherwise it slows down, doubling to pollMaxMs. Announced events never speed
 * it up (they were read when announced), nor put it off (on SQLite a wake by a commit reads only
 * up to that commit, so the backstop is what finds other processes' later ones). It rests while
 * the hub has no session at all. Notifications are hints; readers always go by the horizon.
 */
export class Waker {
  private cancelTimer: (() => void) | null = null;
  private interval: number;
  private listener: Listener | null = null;
  private stopped = false;
  /** The backstop rests: the last wake found no session. */
  private resting = false;
  private readonly onCommitted = (table: string, lastId: EventId): void => {
    if (table === this.table) this.wake({ by: 'commit', lastId });
  };

  constructor(
    private readonly store: Pick<EventStore, 'on' | 'off' | 'canListen' | 'listen'>,
    private readonly table: string,
    private readonly onWake: (wake: Wake) => Promise<WakeResult>,
    private readonly options: WakerOptions,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.interval = options.pollMinMs;
  }

  start(): void {
    this.store.on('committed', this.onCommitted);
    if (this.options.listen && this.store.canListen) void this.listenLoop();
    this.schedule(this.options.pollMinMs);
  }

  stop(): void {
    this.stopped = true;
    this.store.off('committed', this.onCommitted);
    this.cancelTimer?.();
    this.cancelTimer = null;
    void this.listener?.close();
  }

  /** A session came: the backstop starts again at its fastest pace, if it rested. */
  resume(): void {
    if (!this.resting || this.stopped) return;
    this.resting = false;
    this.interval = this.options.pollMinMs;
    this.schedule(this.interval);
  }

  /** Wakes the hub now (a commit or a notice); the backstop keeps its pace. */
  wake(wake: Wake): void {
    if (this.stopped) return;
    void this.run(wake);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = this.clock.later(ms, () => {
      this.cancelTimer = null;
      void this.run({ by: 'poll' });
    });
  }

  private async run(wake: Wake): Promise<void> {
    let result: WakeResult = { idle: false, found: false, waiting: false };
    try {
      result = await this.onWake(wake);
    } catch (err) {
      this.log.debug(`push wake-up failed: ${(err as Error).message}`);
    }
    if (this.stopped) return;
    if (result.idle) {
      this.resting = true;
      this.cancelTimer?.();
      this.cancelTimer = null;
      return;
    }
    this.resting = false;
    // A pace, not a retry after failures (that is Backoff): no jitter, which would only make
    // the idle polls more frequent.
    if (result.waiting || (wake.by === 'poll' && result.found)) {
      this.interval = this.options.pollMinMs;
      this.schedule(this.interval);
    } else if (wake.by === 'poll') {
      this.interval = Math.min(this.interval * 2, this.options.pollMaxMs);
      this.schedule(this.interval);
    } else if (!this.cancelTimer) {
      this.schedule(this.interval);
    }
  }

  private async listenLoop(): Promise<void> {
    // Jittered, so that the processes that lost their connections together (a database restart)
    // do not all reconnect at the same moments.
    const reconnect = new Backoff(100, 10_000);
    while (!this.stopped) {
      let failure: Error | null = null;
      try {
        this.listener = await this.store.listen(this.table, () => this.wake({ by: 'notice' }));
        if (this.stopped) {
          await this.listener.close();
          return;
        }
        reconnect.reset();
        this.wake({ by: 'notice' }); // whatever was notified while we were not listening
        const err = await this.listener.closed;
        if (this.stopped) return;
        this.log.warn(`LISTEN connection lost${err ? `: ${err.message}` : ''}; reconnecting`);
      } catch (err) {
        failure = err as Error;
      }
      const delay = reconnect.next();
      if (failure) this.log.debug(`LISTEN failed: ${failure.message}; retrying in ${delay} ms`);
      await sleep(delay);
    }
  }
}
