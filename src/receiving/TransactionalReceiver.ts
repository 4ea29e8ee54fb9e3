import type { AsyncSteps } from 'futoin-asyncsteps';
import type { AdvancedCCM } from 'futoin-invoker';
import { awaitSteps, ErrorCode, EvtError } from '../common/errors';
import type { Event } from '../common/event';
import { LIVE_COMPONENT } from '../common/constants';
import { cmpIds, maxId, type EventId } from '../common/ids';
import { OptionChecks, refuseOption, TABLE_NAME } from '../common/options';
import { checkTableName, CONSUMER_STATE_TABLE, type ConsumerStateStore } from './consumer-state';
import { ReliableReceiver } from './ReliableReceiver';

/** Options of the constructor; TRANSACTIONAL_DEFAULTS has the defaults. */
export interface TransactionalReceiverOptions<H> {
  /**
   * The consumer's database: `pgDatabase(pool)`, `mysqlDatabase(pool)`, `sqliteDatabase(db)`,
   * `futoinDatabase(ccm.db('app'))`, or a ConsumerStateStore of your own.
   */
  database: ConsumerStateStore<H>;
  /**
   * Applies a batch of events inside the transaction: `tx` is the driver's handle in it (the pg
   * client, the mysql2 connection, the sqlite3 Database, the XferBuilder). Resolving commits the
   * batch with the consumer's new position; throwing rolls both back, and the batch comes again.
   */
  handler: (events: Event[], tx: H) => Promise<void> | void;
  /** The table of consumer positions in the consumer's database. */
  stateTable?: string;
  /** The consumer's row in it; default: the component. */
  stateKey?: string;
  /** Create the table when it is missing (false: your migrations create it, see consumerStateDdl). */
  createTable?: boolean;
}

/** Defaults of the TransactionalReceiver's options. */
export const TRANSACTIONAL_DEFAULTS = Object.freeze({
  /** The table of consumer positions in the consumer's database. */
  stateTable: CONSUMER_STATE_TABLE,
  /** Create the table when it is missing. */
  createTable: true,
});

/** Times a batch is tried again at once when the stored position moved under it. */
const MOVED_RETRIES = 3;

/**
 * A reliable consumer whose effects happen exactly once: each pushed batch is applied in one
 * transaction on the consumer's own database, together with the consumer's position (the last
 * event ID applied) in a small table there. Events at or below the stored position are not
 * applied again, and answered as delivered. So when the consumer crashes after its commit and
 * before its answer, the batch that comes again changes nothing, and a crash before the commit
 * leaves nothing behind: the batch comes again and is applied then. The service's pointer and
 * the stored position may differ after a crash; the stored one decides what is applied.
 *
 * The position moves by compare-and-set, in the same transaction: two receivers of the same
 * consumer (two processes, or a session replaced while its last batch still commits) never both
 * apply an event; the one that finds the position moved reads it again and applies only what is
 * left. The table (`stateTable`, default evt_consumer_state) and the consumer's row are created
 * when missing, before the first batch; `createTable: false` leaves the table to your own
 * migrations (consumerStateDdl gives its definition).
 *
 * Restoring the consumer's database from a backup takes its position back with its data: move
 * the consumer's pointer at the service back to the restored position too, or the events in
 * between are not delivered again.
 */
export class TransactionalReceiver<H> extends ReliableReceiver {
  private readonly database: ConsumerStateStore<H>;
  private readonly handler: (events: Event[], tx: H) => Promise<void> | void;
  private readonly stateTable: string;
  private readonly createTable: boolean;
  private readonly stateKeyOption: string | undefined;
  private stateKey = '';
  /** The table and row, made ready once per start (again after a failure). */
  private prepared: Promise<void> | null = null;
  /** The position stored last, as far as this receiver knows (null: read it). */
  private known: EventId | null = null;

  /**
   * @param executor_ccm the CCM of the executors that receive the calls; closing it stops the
   *   receiver.
   */
  constructor(executor_ccm: AdvancedCCM, options: TransactionalReceiverOptions<H>) {
    super(executor_ccm);
    const check = new OptionChecks('receiver');
    const db: unknown = options.database;
    if (
      typeof db !== 'object' ||
      db === null ||
      typeof (db as Partial<ConsumerStateStore<H>>).apply !== 'function' ||
      typeof (db as Partial<ConsumerStateStore<H>>).applyAside !== 'function'
    ) {
      refuseOption('receiver', 'database', 'a ConsumerStateStore', db, 'object');
    }
    if (typeof options.handler !== 'function') {
      refuseOption('receiver', 'handler', 'a function', options.handler, 'function');
    }
    this.database = options.database;
    this.handler = options.handler;
    this.stateTable =
      check.string('stateTable', options.stateTable, TABLE_NAME, checkTableName) ??
      TRANSACTIONAL_DEFAULTS.stateTable;
    this.stateKeyOption = check.string(
      'stateKey',
      options.stateKey,
      'a non-empty string',
      (s) => s.length > 0 && s.length <= 128,
    );
    this.createTable = check.bool(
      'createTable',
      options.createTable,
      TRANSACTIONAL_DEFAULTS.createTable,
    );
  }

  /**
   * A registered consumer only: without a component a ReliableReceiver takes the LIVE stream,
   * which skips what was sent while disconnected, and its position would mean nothing.
   */
  protected override _checkComponent(component: string | null): string {
    if (component === LIVE_COMPONENT) {
      throw new TypeError(
        `TransactionalReceiver needs a registered consumer (options.component): ${LIVE_COMPONENT} misses events`,
      );
    }
    const checked = super._checkComponent(component);
    this.stateKey = this.stateKeyOption ?? checked;
    this.prepared = null;
    this.known = null;
    return checked;
  }

  /** The last event ID applied, as stored in the consumer's database ('0': none yet). */
  async position(): Promise<EventId> {
    await this.prepare();
    return this.database.position(this.stateTable, this.stateKey);
  }

  /** Applies a pushed batch; the call is answered once it committed (or had been applied). */
  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    awaitSteps(as, () => this.apply(events));
  }

  /**
   * Called right after a batch committed, before its call is answered, with the events applied
   * (those after the stored position) and the new position. For instrumentation and tests.
   */
  protected _committed(_events: Event[], _position: EventId): void {}

  private prepare(): Promise<void> {
    if (!this.stateKey) return Promise.reject(new Error('The receiver is not started'));
    if (!this.prepared) {
      const p = this.database.prepare(this.stateTable, this.stateKey, this.createTable);
      this.prepared = p;
      p.catch(() => {
        if (this.prepared === p) this.prepared = null;
      });
    }
    return this.prepared;
  }

  private async apply(batch: Event[]): Promise<void> {
    await this.prepare();
    const { database: db, stateTable: table, stateKey: key } = this;
    // Parked events an operator replays come again below the position (marked `replayed`): they
    // were never applied (the handler kept failing on them), so they are applied now, in a
    // transaction of their own that leaves the position alone. At least once: after a crash
    // between that commit and the answer, the service replays them again.
    const replayed = batch.filter((e) => e.replayed === true);
    if (replayed.length > 0) await db.applyAside(table, key, (tx) => this.handler(replayed, tx));
    const events = replayed.length > 0 ? batch.filter((e) => e.replayed !== true) : batch;
    const last = events[events.length - 1];
    if (!last) return;
    let from = this.known ?? (await db.position(table, key));
    for (let attempt = 0; ; attempt++) {
      const position = from;
      const fresh = events.filter((e) => cmpIds(e.id, position) > 0);
      if (fresh.length === 0) {
        // Applied before (its answer was lost, or the consumer crashed before answering).
        this.remember(position);
        return;
      }
      let applied: boolean;
      try {
        applied = await db.apply(table, key, position, last.id, (tx) => this.handler(fresh, tx));
      } catch (err) {
        // A commit whose outcome is unknown may have moved it: read it again next time.
        this.known = null;
        throw err;
      }
      if (applied) {
        this.remember(last.id);
        this._committed(fresh, last.id);
        return;
      }
      if (attempt >= MOVED_RETRIES) {
        this.known = null;
        throw new EvtError(
          ErrorCode.InternalError,
          `The position of ${key} in ${table} keeps moving: is another receiver applying it?`,
        );
      }
      from = await db.position(table, key);
    }
  }

  private remember(position: EventId): void {
    this.known = this.known === null ? position : maxId(this.known, position);
  }
}
