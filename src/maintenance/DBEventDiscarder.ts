import $asyncevent from 'futoin-asyncevent';
import type { SimpleCCM } from 'futoin-invoker';
import { ErrorCode, isEvtError } from '../common/errors';
import { cmpIds, NO_EVENT, type EventId } from '../common/ids';
import { defaultLogger, type Logger } from '../common/log';
import { resolveStore } from '../storage/ccm';
import { DiscarderCounters } from '../storage/counters';
import { Lock } from '../storage/sql';
import type { ConsumerState, EventStore } from '../storage/store';
import type { Lease } from '../storage/coordination/coordinator';
import { afterBatch, batchBound, passCeiling, planBatch } from './discard-plan';
import { discarderSettings, type DiscarderSettings } from './options';

/** Options of start(); DISCARDER_DEFAULTS (maintenance/options) has the defaults. */
export interface DBEventDiscarderOptions {
  /** Time between passes, in ms (10 minutes, as the reference). */
  poll_period_ms?: number;
  /** Events deleted per statement, each statement its own transaction. */
  limit_at_once?: number;
  /** Event table (default: the store's, evt_queue). */
  event_table?: string;
  /** Consumer table (default: the store's, evt_consumers). */
  consumer_table?: string;
  /**
   * Minimum age of the events kept in the active table even when every consumer has them: a
   * duration (common/time), ms or a string such as '7d', '12h', '30m', '45s', '500ms'; 0: none.
   */
  keep_for?: number | string;
  /**
   * When a consumer counts as stale and stops holding events back (a duration, as keep_for);
   * unset, null or 0: never. See DBEventDiscarder.
   */
  stale_consumer_ms?: number | string | null;
  /** An explicit store; otherwise the store of `ccm`'s services (see resolveStore). */
  store?: EventStore;
  /** Where warnings go (default: the store's logger). */
  log?: Logger;
}

/** Events a discarder emits (futoin-asyncevent: listeners run asynchronously). */
export interface DiscarderEvents {
  /** A batch was deleted: how many events, and the highest ID among them. */
  eventDiscard: (count: number, lastId: EventId) => void;
  /** A pass ignored a stale consumer (see DBEventDiscarder): its ident, pointer and last_time. */
  staleConsumer: (ident: string, pointer: EventId, lastTime: string) => void;
  /** A pass ended (periodic or runPass()), also when it deleted nothing: what it did. */
  passEnd: (result: DiscardResult) => void;
  /** A pass failed: FutoIn-style code, description, the exception. The next period retries. */
  workerError: (code: string, info?: string, exception?: Error) => void;
}

type Listen = <K extends keyof DiscarderEvents>(event: K, handler: DiscarderEvents[K]) => void;

const DISCARDER_EVENTS: readonly (keyof DiscarderEvents)[] = [
  'eventDiscard',
  'staleConsumer',
  'passEnd',
  'workerError',
];

/** What one pass did. */
export interface DiscardResult {
  /** Events deleted. */
  deleted: number;
  /** The highest ID deleted, null when none was. */
  lastId: EventId | null;
  /** DELETE statements run. */
  batches: number;
  /** Consumers this pass ignored as stale. */
  stale: ConsumerState[];
  /** Set when the pass did nothing because another node discards (it holds the lock). */
  elsewhere?: string;
}

/** Batches per pass: a pass ends after this many, so it never runs unbounded. */
export const BATCHES_PER_PASS = 100;
/** A pass that stopped at BATCHES_PER_PASS is followed this soon (or after the period if shorter). */
const BACKLOG_PAUSE_MS = 1000;

interface Worker {
  ccm: SimpleCCM;
  options: DBEventDiscarderOptions;
  settings: DiscarderSettings;
  store: EventStore | null;
  stopped: boolean;
  timer: NodeJS.Timeout | null;
  /** The pass in progress, if any (never rejects). */
  running: Promise<void> | null;
  onClose: () => void;
  /** The discarder's lock of its event table: one node discards it at a time. */
  lease: Lease | null;
}

/**
 * Deletes delivered events from the active event table (evt_queue), so it stays small; the
 * archiver keeps history elsewhere. Same API as the reference's: `start(ccm, options)`, `stop()`,
 * events 'eventDiscard' and 'workerError'; closing the CCM stops it.
 *
 * What it deletes: only events every registered consumer has acknowledged, i.e. IDs up to the
 * lowest `last_evt_id` in evt_consumers, and never above the gap-safe horizon. Each DELETE reads
 * the pointers itself, so a pointer moved back (AdminCore.moveConsumer) or a consumer registered
 * while a pass runs holds its events from the moment that commits.
 * - No registered consumer: nothing is deleted, as nothing tells that any event was delivered.
 *   A consumer removed from evt_consumers no longer holds events back.
 * - `keep_for`: nothing younger than that (by `ts`, on the database's UTC clock) is deleted.
 * - Deletion always takes the lowest IDs first and stops at the first event it must keep, so
 *   the active table stays one unbroken range of IDs (an old event after a younger one waits).
 * - The newest event in the table is always kept, so MAX(id) never goes back: older MySQL and
 *   MariaDB servers (before 8.0 / 10.2.4) restart AUTO_INCREMENT at MAX(id) + 1, and a reused ID
 *   would sit below consumers' pointers, never delivered.
 * - `stale_consumer_ms` (off by default): a consumer counts as stale when its pointer is behind
 *   the horizon, its last_time (set at registration and whenever its pointer moves) is older than
 *   that, and the first event it has not acknowledged is older than that too (so a consumer idle
 *   at the head for days is not stale the moment a new event arrives). A stale consumer does not
 *   hold events back, never silently: each pass that ignores it logs a warning naming it and
 *   emits 'staleConsumer'. It stays registered; if it comes back, it resumes after its pointer,
 *   without the events deleted meanwhile. Once it moves (it acknowledges, or an administrator
 *   moves it), it holds events back again, also in the middle of a pass. When every consumer is
 *   stale nothing is deleted, as with none. A consumer with nothing to read is never stale.
 * - LIVE consumers hold nothing back: one reading behind the deleted range misses those events.
 *
 * Each pass deletes in batches of `limit_at_once` events, one statement (one short transaction)
 * each, so live traffic never waits behind one huge delete; a pass ends when nothing is left to
 * delete or after BATCHES_PER_PASS batches (then the next pass follows within a second, to work
 * a backlog off). Passes run every `poll_period_ms`. A failed pass emits 'workerError' and the
 * next period tries again.
 *
 * With several nodes over one database, one discards at a time: a pass needs the discarder's
 * lock of its event table (see the store's coordinator), kept from pass to pass; a node without
 * it ends its passes at once (`elsewhere` in the result) and takes over at a pass after the
 * holder is gone. A node that loses the lock (fenced) stops between two statements.
 */
export class DBEventDiscarder {
  declare readonly on: Listen;
  declare readonly once: Listen;
  declare readonly off: Listen;
  declare readonly emit: <K extends keyof DiscarderEvents>(
    event: K,
    ...args: Parameters<DiscarderEvents[K]>
  ) => void;

  /** What it deleted and what failed, for /metrics. */
  readonly counters = new DiscarderCounters();
  private worker: Worker | null = null;
  /** Passes never overlap, periodic or runPass(). */
  private readonly passLock = new Lock();

  constructor() {
    $asyncevent(this, [...DISCARDER_EVENTS]);
  }

  /**
   * Starts discarding: a first pass at once, then one every `poll_period_ms`. `ccm` is where
   * services find their store (its `#db.evt`, or the store bound to it); `options.store`
   * overrides it. Throws when already started or when an option is invalid.
   */
  start(ccm: SimpleCCM, options: DBEventDiscarderOptions = {}): void {
    if (this.worker) throw new Error('Already started!');
    const settings = discarderSettings(options);
    const worker: Worker = {
      ccm,
      options,
      settings,
      store: null,
      stopped: false,
      timer: null,
      running: null,
      onClose: () => void this.stop(),
      lease: null,
    };
    this.worker = worker;
    ccm.once('close', worker.onClose);
    // Queued now, so a runPass() called after start() always runs after this first pass.
    this.runScheduled(worker);
  }

  /** Stops discarding; resolves once a pass in progress has ended (after its current statement). */
  stop(): Promise<void> {
    const w = this.worker;
    if (!w) return Promise.resolve();
    this.worker = null;
    w.stopped = true;
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    w.ccm.off('close', w.onClose);
    return (w.running ?? Promise.resolve()).then(() => w.lease?.release());
  }

  /** Runs one pass now (after the one in progress, if any); rejects if it fails. Needs start(). */
  runPass(): Promise<DiscardResult> {
    const w = this.worker;
    if (!w) return Promise.reject(new Error('Not started'));
    return this.passLock.run(() => this.reportedPass(w));
  }

  private async reportedPass(w: Worker): Promise<DiscardResult> {
    const c = this.counters;
    let result: DiscardResult;
    try {
      result = await this.pass(w);
    } catch (err) {
      c.failures++;
      throw err;
    }
    c.passes++;
    c.lastSuccessMs = Date.now();
    c.staleConsumers = result.stale.length;
    this.logOf(w).debug('discarder: pass done', {
      deleted: result.deleted,
      event_id: result.lastId,
      batches: result.batches,
    });
    this.emit('passEnd', result);
    return result;
  }

  private schedule(w: Worker, delayMs: number): void {
    if (w.stopped) return;
    w.timer = setTimeout(() => {
      w.timer = null;
      this.runScheduled(w);
    }, delayMs);
  }

  private runScheduled(w: Worker): void {
    w.running = this.passLock
      .run(() => this.reportedPass(w))
      .then(
        (r) =>
          r.batches >= BATCHES_PER_PASS
            ? Math.min(BACKLOG_PAUSE_MS, w.settings.periodMs)
            : w.settings.periodMs,
        (err: unknown) => {
          if (!w.stopped) this.report(w, err);
          return w.settings.periodMs;
        },
      )
      .then((next) => {
        w.running = null;
        this.schedule(w, next);
      });
  }

  private report(w: Worker, err: unknown): void {
    const exception = err instanceof Error ? err : new Error(String(err));
    const code = isEvtError(err) ? err.code : ErrorCode.InternalError;
    const info = isEvtError(err) ? err.info : exception.message;
    this.logOf(w).warn(
      `discarder: pass failed (${code}: ${info}); next try in ${w.settings.periodMs} ms`,
      { code, err: exception },
    );
    this.emit('workerError', code, info, exception);
  }

  private logOf(w: Worker): Logger {
    return w.options.log ?? w.store?.log ?? defaultLogger();
  }

  private async pass(w: Worker): Promise<DiscardResult> {
    const result: DiscardResult = { deleted: 0, lastId: null, batches: 0, stale: [] };
    if (w.stopped) return result;
    // Only the store and logger: table options stay ours, not the default of the CCM's store.
    w.store ??= await resolveStore(w.ccm, {
      ...(w.options.store ? { store: w.options.store } : {}),
      ...(w.options.log ? { log: w.options.log } : {}),
    });
    const store = w.store;
    const s = w.settings;
    const eventTable = s.eventTable ?? store.eventTable;
    const consumerTable = s.consumerTable ?? store.consumerTable;
    const lease = await this.leaseOf(w, store, eventTable);
    if (!lease) {
      result.elsewhere = 'another node discards this event table';
      return result;
    }

    // Why the lowest pointer is a safe bound, also with concurrent writers: a reliable consumer
    // moves its own pointer only forward, only to events it acknowledged, and never past the
    // horizon (StorePoller), below which every ID has committed or never will. So no event can
    // still commit at or below the lowest pointer, and everything there reached every consumer
    // counted. The horizon bounds deletion too, for pointers moved by others (the reference's
    // services move them to any last_id, a manual UPDATE): deletion never runs ahead of what
    // readers know to be final.
    // Pointers do not only grow, though: an administrator moves one back to replay
    // (AdminCore.moveConsumer), a new consumer starts at 0. So the pointers read here only pick
    // the events to try; the DELETE itself never goes past the lowest pointer as it reads them
    // (deleteEventsUpTo), so a move or registration that commits before it holds its events.
    const horizon = await store.horizon(eventTable);
    const ceiling = passCeiling(horizon, await store.newestEventId(eventTable));
    if (ceiling === null) return result;

    let stale: ConsumerState[] | null = null;
    // A node that lost its lock (fenced) stops between two statements.
    while (!w.stopped && lease.valid && result.batches < BATCHES_PER_PASS) {
      // Read again for each batch: a pointer moved back or a consumer registered meanwhile
      // (pointer 0) must stop the rest of the pass.
      const consumers = await store.consumers(s.staleMs, consumerTable);
      if (stale === null) {
        stale = await this.staleOf(w, store, consumers, horizon, eventTable);
        result.stale = stale;
      }
      const bound = batchBound(consumers, stale, ceiling);
      if (bound === null) break;

      const ages = await store.eventAges({
        after: NO_EVENT,
        upTo: bound,
        limit: s.limit,
        ...(s.keepMs !== undefined ? { olderThanMs: s.keepMs } : {}),
        table: eventTable,
      });
      const batch = planBatch(ages, s.limit);
      if (batch === null) break;
      // Nothing can appear at or below batch.upTo (it is below the horizon), so this deletes
      // the lowest of the events just read, unless a pointer went back (or a consumer came)
      // since they were read: the statement stops at the lowest pointer it reads itself.
      const deleted = await store.deleteEventsUpTo(batch.upTo, s.limit, {
        table: eventTable,
        consumerTable,
        ...(s.staleMs !== undefined && stale.length > 0
          ? { ignoring: { consumers: stale, idleMs: s.staleMs } }
          : {}),
      });
      result.batches++;
      // Lowest first: the `deleted` lowest of those read (unless another discarder deleted
      // some of them meanwhile).
      const { lastId, more } = afterBatch(ages, batch, deleted, s.limit);
      if (lastId !== null) {
        result.deleted += deleted;
        result.lastId = lastId;
        this.counters.events += deleted;
        this.counters.lastId = lastId;
        this.emit('eventDiscard', deleted, lastId);
      }
      if (!more) break;
    }
    return result;
  }

  /**
   * The discarder's lock of `eventTable`, held from pass to pass: with several nodes over one
   * database, one discards at a time; another takes over at its next pass once that one is
   * gone. Null while another node holds it.
   */
  private async leaseOf(w: Worker, store: EventStore, eventTable: string): Promise<Lease | null> {
    if (w.lease?.valid) return w.lease;
    const had = w.lease !== null;
    w.lease = null;
    const coordinator = await store.startCoordination();
    const lease = await coordinator.tryAcquire(`discarder/${eventTable}`);
    if (w.stopped) {
      await lease?.release();
      return null;
    }
    if (lease) {
      w.lease = lease;
      this.logOf(w).info(`discarder: node ${coordinator.node} discards ${eventTable}`);
    } else if (had) {
      this.logOf(w).info(`discarder: another node discards ${eventTable} now`);
    }
    return lease;
  }

  /** The consumers to ignore this pass, warned about and emitted (see the class comment). */
  private async staleOf(
    w: Worker,
    store: EventStore,
    consumers: readonly ConsumerState[],
    horizon: EventId,
    eventTable: string,
  ): Promise<ConsumerState[]> {
    const staleMs = w.settings.staleMs;
    if (staleMs === undefined) return [];
    const stale: ConsumerState[] = [];
    for (const c of consumers) {
      if (!c.idle || cmpIds(c.pointer, horizon) >= 0) continue;
      const [next] = await store.eventAges({
        after: c.pointer,
        upTo: horizon,
        limit: 1,
        olderThanMs: staleMs,
        table: eventTable,
      });
      if (!next?.old) continue;
      stale.push(c);
      this.logOf(w).warn(
        `discarder: consumer ${c.ident} is stale (at event ${c.pointer}, last moved ${c.lastTime}, ` +
          `event ${next.id} waiting longer than stale_consumer_ms); it no longer holds events back`,
        { consumer: c.ident, event_id: c.pointer },
      );
      this.emit('staleConsumer', c.ident, c.pointer, c.lastTime);
    }
    return stale;
  }
}
