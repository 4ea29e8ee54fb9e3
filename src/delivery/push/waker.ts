import { sleep } from '../../common/async';
import { Backoff } from '../../common/backoff';
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
 * Wakes the push hub when new events may be readable, from three sources:
 * - events committed by this process (the store's 'committed' event): at once;
 * - PostgreSQL NOTIFY from other processes: one LISTEN connection, reconnected with backoff,
 *   with a catch-up wake after each reconnect (notices sent while it was down are lost);
 * - adaptive polling as the backstop for everything else (other processes on SQLite and MySQL,
 *   transactions of futoin-database users, lost notices): fast while events keep coming or
 *   committed events wait for open writers, slowing down to pollMaxMs when idle.
 * Notifications are hints; readers always go by the horizon.
 */
export class Waker {
  private timer: NodeJS.Timeout | null = null;
  private interval: number;
  private listener: Listener | null = null;
  private stopped = false;
  private readonly onCommitted = (table: string): void => {
    if (table === this.table) this.wakeNow();
  };

  constructor(
    private readonly store: EventStore,
    private readonly table: string,
    /** Resolves true when the wake found something to do (poll again soon). */
    private readonly onWake: () => Promise<boolean>,
    private readonly options: WakerOptions,
    private readonly log: Logger,
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
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.listener?.close();
  }

  /** Wakes now and restarts the backstop at its fastest pace. */
  wakeNow(): void {
    if (this.stopped) return;
    this.interval = this.options.pollMinMs;
    void this.run();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    let busy = false;
    try {
      busy = await this.onWake();
    } catch (err) {
      this.log.debug(`push wake-up failed: ${(err as Error).message}`);
    }
    // A pace, not a retry after failures (that is Backoff): no jitter, which would only make
    // the idle polls more frequent.
    this.interval = busy
      ? this.options.pollMinMs
      : Math.min(this.interval * 2, this.options.pollMaxMs);
    this.schedule(this.interval);
  }

  private async listenLoop(): Promise<void> {
    // Jittered, so that the processes that lost their connections together (a database restart)
    // do not all reconnect at the same moments.
    const reconnect = new Backoff(100, 10_000);
    while (!this.stopped) {
      let failure: Error | null = null;
      try {
        this.listener = await this.store.listen(this.table, () => this.wakeNow());
        if (this.stopped) {
          await this.listener.close();
          return;
        }
        reconnect.reset();
        this.wakeNow(); // whatever was notified while we were not listening
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
