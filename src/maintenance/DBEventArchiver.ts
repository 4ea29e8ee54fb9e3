import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM, type RegisterOptions } from 'futoin-invoker';
import { sleepStep } from '../common/async';
import { Backoff } from '../common/backoff';
import { DB_CONN, LIVE_COMPONENT } from '../common/constants';
import { awaitSteps, ErrorCode } from '../common/errors';
import type { Event } from '../common/event';
import { defaultLogger, errorOf, type LogFields, type Logger } from '../common/log';
import { PollFace } from '../common/faces/PollFace';
import { ATTR, OPERATIONS, setBatch, traced } from '../common/tracing';
import { CALL_TIMEOUT_MS, canPush, FAILURE_BACKOFF, isServiceEndpoint } from '../receiving/connect';
import { ALREADY_STARTED, type ReceiverStartOptions } from '../receiving/LiveReceiver';
import { ReliableReceiver } from '../receiving/ReliableReceiver';
import { configFromFutoinDb } from '../storage/ccm';
import { ArchiverCounters } from '../storage/counters';
import { HistoryWriter, type HistorySource, type WarehouseSource } from '../storage/history';
import type { SqlClient } from '../storage/sql';
import { ARCHIVER_DEFAULTS, archiverMigrate, archiverSettings } from './options';

/** How events reach the archiver: pushed, polled, or pushed when the service offers it. */
export type ArchiverMode = 'push' | 'poll' | 'auto';

/** Options of the constructor; ARCHIVER_DEFAULTS (maintenance/options) has the defaults. */
export interface DBEventArchiverOptions {
  /**
   * The warehouse: connection settings (the archiver opens the connection at each start and
   * closes it at stop) or an open SqlClient (used as is, and left open). Default: the settings
   * of the futoin-database connection `#db.evtdwh` registered in `db_ccm`.
   */
  warehouse?: WarehouseSource;
  /** Apply the warehouse ('dwh') migrations at each start (a no-op when done). */
  migrate?: boolean;
  log?: Logger;
}

/**
 * Options of `start()`: the receiver's (component, want, reconnection...) and these; defaults in
 * ARCHIVER_DEFAULTS.
 */
export interface ArchiverStartOptions extends ReceiverStartOptions {
  /** The warehouse table. */
  history_table?: string;
  /** 'auto': push, unless the endpoint or the service cannot; then poll. */
  mode?: ArchiverMode;
  /** Polling: the first delay after a poll that found nothing, doubling up to pollMaxMS. */
  pollMinMS?: number;
  pollMaxMS?: number;
}

const POLLER = 'archiver-poll';

/** What a service that does not push answers readyToReceive (or registration through push). */
function pushNotOffered(code: string, info?: string): boolean {
  return (
    code === ErrorCode.UnknownInterface ||
    code === ErrorCode.NotSupportedVersion ||
    (code === ErrorCode.InvalidRequest && /Bi-Direct Channel is required/i.test(info ?? ''))
  );
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** One start() to stop(). */
interface Run {
  endpoint: unknown;
  credentials: string | null;
  component: string;
  want: string[] | null;
  mode: ArchiverMode;
  table: string;
  /** What receives now: null while the warehouse is being prepared. */
  receiving: 'push' | 'poll' | null;
  /** For ReliableReceiver#start. */
  receiverOptions: ReceiverStartOptions;
  /** For PollFace.register. */
  faceOptions: RegisterOptions;
  pollVersion: string;
  pollMinMs: number;
  pollMaxMs: number;
  reconnect: Backoff;
  failures: Backoff;
  /** The preparation, then the polling loop. */
  worker: AsyncSteps | null;
  writer: HistoryWriter | null;
  /** Warehouse work in progress: stop() closes the connection once it has settled. */
  tasks: Set<Promise<unknown>>;
  /** Polling: the last event archived, acknowledged by the next poll. */
  lastId: string | null;
  stopped: boolean;
}

/**
 * Archives the active event stream into the warehouse's history table (evt_history): a reliable
 * consumer (component ARCHIVER by default) that writes each batch in one warehouse transaction,
 * ignoring events already there, and acknowledges it only once that transaction committed. So
 * the stream's pointer for the archiver never moves past an event the warehouse does not hold,
 * and a batch delivered again (after a failure or a restart) writes nothing twice.
 *
 * Events arrive by push (futoin.evt.push over WebSocket or in process); when the endpoint is an
 * HTTP URL or the service does not push, by polling. Any failure (the service, the connection,
 * the warehouse) is retried with backoff; nothing is skipped. Run one archiver per component.
 *
 * Emits 'ready' (receiving), 'newEvents' (a batch arrived), 'processedEvents' (count, events)
 * once per warehouse INSERT of a committed batch, as futoin-eventstream's (count) does,
 * 'receiverError' (archiving a batch failed: it comes again) and 'workerError' (connecting,
 * the warehouse at start, or a lost connection). One failure is not retried: a history table
 * that the warehouse does not have (or without the columns id, type, data, ts). That is
 * 'workerError' InvalidConfig, also logged as an error, and the archiver stops by itself.
 */
export class DBEventArchiver extends ReliableReceiver {
  static override get COMPONENT(): string | null {
    return ARCHIVER_DEFAULTS.component;
  }

  /** What it archived and what failed, for /metrics. */
  readonly counters = new ArchiverCounters();
  private readonly warehouse: HistorySource;
  private readonly migrate: boolean;
  private readonly log: Logger;
  private run: Run | null = null;
  /** The warehouse inserts of each pushed batch, until its processedEvents are emitted. */
  private readonly inserted = new WeakMap<Event[], Event[][]>();
  private stopping: Promise<void> = Promise.resolve();

  /**
   * @param db_ccm the CCM with futoin-database's `#db.evtdwh` (unless `options.warehouse` says
   *   where the warehouse is); also the CCM of the receiving executors. Closing it stops the
   *   archiver.
   */
  constructor(db_ccm: AdvancedCCM, options: DBEventArchiverOptions = {}) {
    super(db_ccm);
    const w = options.warehouse ?? configFromFutoinDb(db_ccm, DB_CONN.warehouse);
    // The option takes either; only an SqlClient has transactions.
    this.warehouse =
      'transaction' in w ? { kind: 'client', client: w } : { kind: 'connect', config: w };
    this.migrate = archiverMigrate(options);
    this.log = options.log ?? defaultLogger();
    this.on('workerError', () => this.counters.workerErrors++);
  }

  /**
   * Starts archiving from `endpoint`: a ws(s):// or http(s):// URL (`secure+` marks a loopback
   * channel secure) or an in-process Executor. Throws when already started ('Already started!')
   * or when the options cannot work; everything else is retried (see 'workerError'), except a
   * history table missing in the warehouse, found once it answers: 'workerError' InvalidConfig,
   * and the archiver stops.
   */
  override start(
    endpoint: unknown,
    credentials: string | null = null,
    options: ArchiverStartOptions = {},
  ): void {
    if (this.run) throw new Error(ALREADY_STARTED);
    const s = archiverSettings(options);
    const { mode, faceOptions } = s;
    if (mode === 'push' && !canPush(endpoint)) {
      throw new TypeError('Push needs a bi-directional channel: a ws(s):// URL or an Executor');
    }
    if (!isServiceEndpoint(endpoint)) {
      throw new TypeError('The endpoint must be an http(s):// or ws(s):// URL or an Executor');
    }
    const component = this._checkComponent(
      s.component ?? (this.constructor as typeof DBEventArchiver).COMPONENT,
    );
    // What the push receiver (ReliableReceiver#start) takes: everything but ours.
    const { mode: _m, history_table: _t, pollMinMS: _p1, pollMaxMS: _p2, ...rest } = options;
    const run: Run = {
      endpoint,
      credentials,
      component,
      want: s.want,
      mode,
      table: s.historyTable,
      receiving: null,
      receiverOptions: { ...rest, component },
      faceOptions,
      pollVersion: faceOptions.version ?? PollFace.LATEST_VERSION,
      pollMinMs: s.pollMinMs,
      pollMaxMs: s.pollMaxMs,
      reconnect: new Backoff(s.reconnectMinMS, s.reconnectMaxMS),
      failures: new Backoff(FAILURE_BACKOFF.minMs, FAILURE_BACKOFF.maxMs),
      worker: null,
      writer: null,
      tasks: new Set(),
      lastId: null,
      stopped: false,
    };
    this.run = run;
    this.counters.running = true;
    run.worker = this.prepare(run, mode !== 'poll' && canPush(endpoint) ? 'push' : 'poll');
  }

  /** The warehouse connection archiving writes through, once open (null before, or stopped). */
  get warehouseDb(): SqlClient | null {
    return this.run?.writer?.db ?? null;
  }

  /**
   * Stops archiving: closes the connections and cancels timers; the warehouse connection (when
   * the archiver opened it) closes once the write in progress, if any, has ended. start() may
   * follow; whenStopped() tells when everything is closed.
   */
  override stop(): void {
    super.stop();
    const run = this.run;
    if (!run) return;
    this.run = null;
    this.counters.running = false;
    run.stopped = true;
    run.worker?.cancel();
    run.worker = null;
    const previous = this.stopping;
    this.stopping = (async () => {
      await previous;
      await Promise.allSettled([...run.tasks]);
      await run.writer?.close().catch((err: unknown) => {
        this.log.warn('Archiver: closing the warehouse connection failed', {
          consumer: run.component,
          err: errorOf(err),
        });
      });
    })();
  }

  /** The archive must have every event: a LIVE stream would miss some. */
  protected override _checkComponent(component: string | null): string {
    if (component === LIVE_COMPONENT) {
      throw new TypeError(`The archiver is a reliable consumer: ${LIVE_COMPONENT} misses events`);
    }
    return super._checkComponent(component);
  }

  /** Resolves once the archiver stopped by stop() has closed everything. */
  whenStopped(): Promise<void> {
    return this.stopping;
  }

  /** Archives a pushed batch; the push is answered (and the pointer moves) once committed. */
  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    const run = this.run;
    if (!run?.writer) as.error(ErrorCode.InternalError, 'The archiver is stopped');
    this.emit('newEvents', events);
    awaitSteps(as, async () => {
      this.inserted.set(events, await this.archive(run, events));
    });
  }

  /**
   * 'processedEvents' once per warehouse insert of a pushed batch, when the receiver is done
   * with it: as the step before the push is answered, so a listener that stops the archiver at
   * once (the archiver example) still lets that answer go and the pointer move.
   */
  protected override _processed(events: Event[]): void {
    const inserts = this.inserted.get(events) ?? [events];
    this.inserted.delete(events);
    for (const insert of inserts) this.emit('processedEvents', insert.length, insert);
  }

  /**
   * Writes a batch to the warehouse in one transaction; once committed, emits 'processedEvents'
   * once per INSERT statement, with its count (futoin-eventstream's listeners add them up) and
   * its events.
   */
  private archive(run: Run, events: readonly Event[]): Promise<Event[][]> {
    return traced(OPERATIONS.archive, run.table, async (span) => {
      if (span.isRecording()) {
        span.setAttribute(ATTR.consumer, run.component);
        setBatch(span, events);
      }
      const fields = (): LogFields => ({
        consumer: run.component,
        event_id: events[events.length - 1]?.id,
        first_id: events[0]?.id,
        events: events.length,
      });
      const writer = run.writer;
      if (!writer) throw new Error('The warehouse is not open');
      let inserts: Event[][];
      try {
        inserts = await this.track(run, writer.write(events));
      } catch (err) {
        this.counters.writeFailures++;
        this.log.warn('Archiver: writing events failed', { ...fields(), err: errorOf(err) });
        throw err;
      }
      this.log.debug('Archiver: archived', fields());
      const c = this.counters;
      c.events += events.length;
      c.batches++;
      c.lastId = events[events.length - 1]?.id ?? c.lastId;
      c.lastSuccessMs = Date.now();
      return inserts;
    });
  }

  private track<T>(run: Run, task: Promise<T>): Promise<T> {
    run.tasks.add(task);
    const untrack = (): void => {
      run.tasks.delete(task);
    };
    task.then(untrack, untrack);
    return task;
  }

  /**
   * Opens and migrates the warehouse (again and again while it fails), then receives. A history
   * table that is not there (InvalidConfig) stops the archiver instead: see misconfigured().
   */
  private prepare(run: Run, how: 'push' | 'poll'): AsyncSteps {
    const worker = $as();
    let invalid: { info: string; e: Error | undefined } | null = null;
    worker.loop((as) => {
      as.add(
        (as) => awaitSteps(as, () => this.track(run, this.openWarehouse(run))),
        (as, err) => {
          const e = as.state.last_exception;
          if (err === ErrorCode.InvalidConfig) {
            invalid = { info: as.state.error_info ?? '', e };
          } else {
            this.emit('workerError', err, `Warehouse unavailable: ${errorText(e ?? err)}`, e);
          }
          as.success(null);
        },
      );
      as.add((as, writer: HistoryWriter | null) => {
        if (writer || invalid) as.break();
        sleepStep(as, run.reconnect.next());
      });
    });
    worker.add((_as) => {
      run.worker = null;
      if (invalid) {
        this.misconfigured(run, invalid.info, invalid.e);
        return;
      }
      run.reconnect.reset();
      this.receive(run, how);
    });
    worker.execute();
    return worker;
  }

  /**
   * The warehouse answered, but archiving there cannot work until someone changes it or the
   * options: retrying would only fail each batch for ever. Reported once — logged as an error
   * and emitted as workerError InvalidConfig — and the archiver stops (as stop() does), having
   * received and acknowledged nothing; start() may follow once it is fixed.
   */
  private misconfigured(run: Run, info: string, e: Error | undefined): void {
    if (this.run !== run) return;
    this.log.error(`Archiver: ${info}. Archiving stopped; start the archiver again once fixed`, {
      consumer: run.component,
      ...(e ? { err: e } : {}),
    });
    this.stop();
    this.emit('workerError', ErrorCode.InvalidConfig, info, e);
  }

  private async openWarehouse(run: Run): Promise<HistoryWriter> {
    const writer = await HistoryWriter.open(this.warehouse, {
      table: run.table,
      migrate: this.migrate,
      log: this.log,
    });
    if (run.stopped) {
      await writer.close();
      throw new Error('The archiver is stopped');
    }
    run.writer = writer;
    return writer;
  }

  private receive(run: Run, how: 'push' | 'poll'): void {
    if (run.stopped) return;
    run.receiving = how;
    if (how === 'push') super.start(run.endpoint, run.credentials, run.receiverOptions);
    else run.worker = this.poll(run);
  }

  /** Falls back to polling when the service turns out not to push ('auto' mode). */
  protected override _sessionFailed(code: string, info?: string): boolean {
    const run = this.run;
    if (!run || run.mode !== 'auto' || run.receiving !== 'push' || !pushNotOffered(code, info)) {
      return false;
    }
    this.log.info(`Archiver: the service does not push (${code}: ${info ?? ''}); polling`, {
      consumer: run.component,
    });
    run.reconnect.reset();
    this.receive(run, 'poll');
    return true;
  }

  /** Polls in a loop, one connection (CCM) per session, reconnecting with backoff. */
  private poll(run: Run): AsyncSteps {
    const worker = $as();
    worker.loop((as) => {
      const ccm = new AdvancedCCM();
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        ccm.close();
      };
      as.add(
        (as) => {
          as.setCancel(close);
          this.pollSession(as, run, ccm);
        },
        (as, err) => {
          close();
          // A service that knows only FTN18 1.0 polling (the reference serves it through push).
          if (
            (err === ErrorCode.NotSupportedVersion || err === ErrorCode.UnknownInterface) &&
            run.pollVersion !== '1.0' &&
            run.faceOptions.version === undefined
          ) {
            run.pollVersion = '1.0';
          }
          this.emit('workerError', err, as.state.error_info, as.state.last_exception);
          as.success();
        },
      );
      as.add((as) => {
        close();
        sleepStep(as, run.reconnect.next());
      });
    });
    worker.execute();
    return worker;
  }

  private pollSession(as: AsyncSteps, run: Run, ccm: AdvancedCCM): void {
    PollFace.register(as, ccm, POLLER, run.endpoint, run.credentials, {
      limitZone: 'unlimited',
      callTimeoutMS: CALL_TIMEOUT_MS,
      // Reconnecting is this loop's job.
      retryCount: 0,
      ...run.faceOptions,
      version: run.pollVersion,
    });
    as.add((as) => {
      const face = ccm.iface<PollFace>(POLLER);
      face.registerConsumer(as, run.component);
      as.add((as) => {
        this.emit('ready');
        let delay = 0;
        as.loop((as) => {
          as.add((as) => face.pollEvents(as, run.component, run.lastId, run.want));
          as.add((as, events: Event[]) => {
            run.reconnect.reset();
            if (events.length === 0) {
              delay = Math.min(Math.max(delay * 2, run.pollMinMs), run.pollMaxMs);
              sleepStep(as, delay);
              return;
            }
            delay = 0;
            this.pollBatch(as, run, events);
          });
        });
      });
    });
  }

  /** Archives a polled batch; only then does the next poll acknowledge it (last_id). */
  private pollBatch(as: AsyncSteps, run: Run, events: Event[]): void {
    this.emit('newEvents', events);
    let archived = false;
    as.add(
      (as) =>
        awaitSteps(as, async () => {
          for (const insert of await this.archive(run, events))
            this.emit('processedEvents', insert.length, insert);
          archived = true;
        }),
      (as, err) => {
        // The warehouse failed: poll again from the same last_id after a growing delay.
        this.emit('receiverError', err, as.state.error_info, as.state.last_exception);
        sleepStep(as, run.failures.next());
      },
    );
    as.add((_as) => {
      if (!archived) return;
      run.failures.reset();
      const last = events[events.length - 1];
      if (last) run.lastId = last.id;
    });
  }
}
