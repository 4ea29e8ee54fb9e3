import { EventEmitter } from 'events';
import { sleep, waitAtMost, withTimeout } from '../../common/async';
import { Backoff } from '../../common/backoff';
import type { Logger } from '../../common/log';
import type { SqlDialect } from '../dialects';
import type { CoordinationSql } from '../queries';
import type { SessionAddress, SessionConnection, SqlClient, SqlValue } from '../sql';
import { CONTROL_CHANNEL, ControlReader, parseControl, type ControlMessage } from './control';
import type { CoordinationSettings } from './options';

/** The settings of one node's coordinator: its name decided. */
export type NodeSettings = CoordinationSettings & { node: string };

/**
 * A lock this node holds for as long as it is valid: while it holds, no other node holds it.
 * Act on it (push, delete) only while `valid`: the node heard from the database within the
 * fence bound and has not lost its coordination session.
 */
export interface Lease {
  readonly name: string;
  readonly valid: boolean;
  /** Lets go of the lock; resolves once the database has it free (or the session is gone). */
  release(): Promise<void>;
}

export interface CoordinatorEvents {
  /** Connected (again): whoever waits for a lock may try now. */
  up: [];
  /** A heartbeat succeeded: waiters retry their locks. */
  tick: [];
  /** Every lease is gone (the database session is lost or its heartbeat too old): stop at once. */
  fenced: [reason: string];
  /** A control message from another node (or from a command on the database). */
  control: [message: ControlMessage];
}

/** What /metrics shows of a node's coordination. */
export interface CoordinationStats {
  node: string;
  /** 'database' when nodes coordinate over the database; 'local' for a node on its own. */
  kind: 'database' | 'local';
  /** The server's ID of the coordination session (PostgreSQL backend PID, MySQL connection ID). */
  session: string | null;
  /** Connected and heard from the database within the fence bound. */
  up: boolean;
  /** Time since the last successful heartbeat was sent, ms (0 for a local node). */
  heartbeatAgeMs: number;
  /** Times this node fenced itself. */
  fences: number;
  /** Locks acquired, and held now. */
  acquisitions: number;
  held: number;
}

/**
 * How the nodes over one database agree on who does what: one lock per consumer (and per
 * maintenance task), held by one node at a time, and control messages between nodes.
 */
export interface Coordinator {
  /** This node's name (see CoordinationOptions.node). */
  readonly node: string;
  /** 'database': other nodes coordinate over the same database; 'local': this node is alone. */
  readonly kind: 'database' | 'local';
  readonly settings: NodeSettings;
  /** Heard from the database within the fence bound (always true for a local node). */
  readonly fresh: boolean;
  /** The lock `name` if it is free; null if another node (or this one) holds it, or while down. */
  tryAcquire(name: string): Promise<Lease | null>;
  /** Sends a control message to every node (best effort: a hint, never relied on alone). */
  send(message: Omit<ControlMessage, 'from'>): Promise<void>;
  /** Work to finish before close() ends the session (a clean release of a consumer). */
  track(work: Promise<unknown>): void;
  stats(): CoordinationStats;
  on<K extends keyof CoordinatorEvents>(
    event: K,
    listener: (...args: CoordinatorEvents[K]) => void,
  ): this;
  once<K extends keyof CoordinatorEvents>(
    event: K,
    listener: (...args: CoordinatorEvents[K]) => void,
  ): this;
  off<K extends keyof CoordinatorEvents>(
    event: K,
    listener: (...args: CoordinatorEvents[K]) => void,
  ): this;
  close(): Promise<void>;
}

/** A refusal that retrying cannot fix: the coordination connection goes to the wrong place. */
export class CoordinationConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoordinationConfigError';
  }
}

/** How long close() waits for tracked work (clean releases) before it drops the session. */
const CLOSE_WAIT_MS = 3_000;

/** Tracks work to finish before closing. */
class Tracked {
  private readonly work = new Set<Promise<unknown>>();

  add(work: Promise<unknown>): void {
    const p = work.catch(() => undefined);
    this.work.add(p);
    void p.then(() => this.work.delete(p));
  }

  settle(): Promise<void> {
    return waitAtMost(Promise.all([...this.work]), CLOSE_WAIT_MS);
  }
}

/**
 * A node on its own (SQLite, or coordination turned off): locks in memory, no heartbeat, never
 * fenced. Within the process the rules are the same as across nodes.
 */
export class LocalCoordinator extends EventEmitter<CoordinatorEvents> implements Coordinator {
  readonly kind = 'local';
  private readonly held = new Set<string>();
  private acquisitions = 0;
  private readonly tracked = new Tracked();

  constructor(readonly settings: NodeSettings) {
    super();
  }

  get node(): string {
    return this.settings.node;
  }

  get fresh(): boolean {
    return true;
  }

  tryAcquire(name: string): Promise<Lease | null> {
    if (this.held.has(name)) return Promise.resolve(null);
    this.held.add(name);
    this.acquisitions++;
    let held = true;
    const lease: Lease = {
      name,
      get valid() {
        return held;
      },
      release: () => {
        if (held) {
          held = false;
          this.held.delete(name);
        }
        return Promise.resolve();
      },
    };
    return Promise.resolve(lease);
  }

  send(): Promise<void> {
    return Promise.resolve();
  }

  track(work: Promise<unknown>): void {
    this.tracked.add(work);
  }

  stats(): CoordinationStats {
    return {
      node: this.node,
      kind: this.kind,
      session: null,
      up: true,
      heartbeatAgeMs: 0,
      fences: 0,
      acquisitions: this.acquisitions,
      held: this.held.size,
    };
  }

  async close(): Promise<void> {
    await this.tracked.settle();
    this.removeAllListeners();
  }
}

/** Where a database coordinator works. */
export interface DatabaseCoordinatorSetup {
  /** The pool: control messages go through it; session connections are opened from it. */
  db: SqlClient;
  dialect: SqlDialect;
  /** Where the coordination session connects (a direct address or a session pool). */
  at: SessionAddress;
  settings: NodeSettings;
  log: Logger;
}

/** A lease held on the coordination session. */
class SessionLease implements Lease {
  held = true;

  constructor(
    readonly name: string,
    readonly key: SqlValue,
    private readonly owner: DatabaseCoordinator,
    /** The session that took it: a lease never outlives it. */
    readonly generation: number,
  ) {}

  get valid(): boolean {
    return this.held && this.owner.holds(this);
  }

  release(): Promise<void> {
    return this.owner.releaseLease(this);
  }
}

const now = (): number => performance.now();

/**
 * Coordination over the database (PostgreSQL advisory locks, MySQL named locks) on one
 * connection of its own per node: the coordination session. Its locks are the node's leases,
 * and the server frees them when the session ends.
 *
 * The session is checked every heartbeat_ms. The node is "fresh" while the last heartbeat that
 * succeeded was sent less than fence_ms ago (on the monotonic clock, so a paused process counts
 * its pause). Once it is not — the database is unreachable, the session was terminated, the
 * process was stopped, a heartbeat answered from another server session or from a read-only
 * server — the node fences itself: every lease ends at once (emitted as 'fenced', so its users
 * stop), the session is dropped, and it connects again with backoff. Whoever takes a lock over
 * from a node that did not let go cleanly waits past that node's fence (takeoverWaitMs), so two
 * nodes never act on one lock at the same moment.
 *
 * Each lock is taken at most once on the session (session locks stack: taken twice, released
 * once, it would stay held). A node takes a lock named after itself first, so two running nodes
 * cannot share a name. PostgreSQL: control messages are NOTIFY on one channel, which the session
 * LISTENs to; MySQL: rows of evt_control, read at each heartbeat.
 */
export class DatabaseCoordinator extends EventEmitter<CoordinatorEvents> implements Coordinator {
  readonly kind = 'database';
  private state: 'down' | 'up' | 'closed' = 'down';
  private session: SessionConnection | null = null;
  /** Bumped at each new session: a lease of an older session is not valid. */
  private generation = 0;
  /** The pid (server session ID) the session had at its first heartbeat. */
  private pid: string | null = null;
  /** When the last successful heartbeat was sent (monotonic ms). */
  private lastOk = -Infinity;
  private beating = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly held = new Map<string, SessionLease>();
  /** Names being acquired now: never two attempts at one name at once. */
  private readonly acquiring = new Set<string>();
  private fences = 0;
  private acquisitions = 0;
  private readonly reconnect = new Backoff(100, 10_000);
  private readonly tracked = new Tracked();
  private readonly sql: CoordinationSql;
  private readonly control: ControlReader | null;
  /** Set by the first connection attempt: resolves, or rejects on a CoordinationConfigError. */
  readonly started: Promise<void>;
  private lastExpire = -Infinity;
  private readonly createdAt = now();

  constructor(private readonly setup: DatabaseCoordinatorSetup) {
    super();
    const sql = setup.dialect.queries.coordination;
    if (!sql || !setup.dialect.lockKey || !setup.db.openSession) {
      throw new Error(`No coordination on ${setup.dialect.name}`);
    }
    this.sql = sql;
    this.control = sql.control ? new ControlReader() : null;
    this.started = this.connectLoop();
    this.started.catch(() => undefined);
  }

  get settings(): NodeSettings {
    return this.setup.settings;
  }

  get node(): string {
    return this.setup.settings.node;
  }

  private get log(): Logger {
    return this.setup.log;
  }

  get fresh(): boolean {
    return this.state === 'up' && now() - this.lastOk < this.settings.fenceMs;
  }

  /** Whether `lease` is still this node's: its session is the current one, and fresh. */
  holds(lease: SessionLease): boolean {
    return (
      this.generation === lease.generation &&
      this.held.get(lease.name) === lease &&
      this.checkFresh()
    );
  }

  /** Fresh; fences at once when the heartbeat is too old (a paused process notices here first). */
  private checkFresh(): boolean {
    if (this.fresh) return true;
    if (this.state === 'up') {
      this.fence(`no heartbeat answered for ${Math.round(now() - this.lastOk)} ms`);
    }
    return false;
  }

  private keyOf(name: string): SqlValue {
    // Named after the database too: MySQL's named locks are shared by every database.
    return this.setup.dialect.lockKey!(`${this.setup.at.database ?? ''}/${name}`);
  }

  async tryAcquire(name: string): Promise<Lease | null> {
    const session = this.session;
    if (!session || !this.checkFresh() || this.held.has(name) || this.acquiring.has(name)) {
      return null;
    }
    const generation = this.generation;
    const key = this.keyOf(name);
    this.acquiring.add(name);
    try {
      const [row] = await session.query<{ ok: unknown }>(this.sql.tryLock, [key]);
      if (Number(row?.ok) !== 1) return null;
      if (generation !== this.generation || this.state !== 'up') return null; // session gone
      const lease = new SessionLease(name, key, this, generation);
      this.held.set(name, lease);
      this.acquisitions++;
      return lease;
    } catch (err) {
      // The heartbeat decides whether the session is lost; this attempt just failed.
      this.log.debug(`coordination: taking lock ${name} failed: ${(err as Error).message}`);
      return null;
    } finally {
      this.acquiring.delete(name);
    }
  }

  async releaseLease(lease: SessionLease): Promise<void> {
    if (this.held.get(lease.name) !== lease) return;
    this.held.delete(lease.name);
    lease.held = false;
    const session = this.session;
    if (!session || lease.generation !== this.generation) return;
    try {
      const [row] = await session.query<{ ok: unknown }>(this.sql.unlock, [lease.key]);
      if (Number(row?.ok) !== 1)
        this.log.warn(`coordination: lock ${lease.name} was not held by this node's session`);
    } catch (err) {
      // Whether it is still held is unknown: a second acquisition would stack on it. Only a new
      // session is sure to hold nothing.
      if (lease.generation === this.generation) {
        this.fence(`releasing lock ${lease.name} failed: ${(err as Error).message}`);
      }
    }
  }

  async send(message: Omit<ControlMessage, 'from'>): Promise<void> {
    await sendControl(this.setup.db, this.sql, { ...message, from: this.node });
    if (this.sql.control && now() - this.lastExpire > CONTROL_KEEP_MS) {
      this.lastExpire = now();
      await this.setup.db.execute(this.sql.control.expire, [CONTROL_KEEP_MS]);
    }
  }

  track(work: Promise<unknown>): void {
    this.tracked.add(work);
  }

  stats(): CoordinationStats {
    const up = this.state === 'up' && this.fresh;
    return {
      node: this.node,
      kind: this.kind,
      session: this.state === 'up' ? this.pid : null,
      up,
      heartbeatAgeMs: Number.isFinite(this.lastOk) ? Math.round(now() - this.lastOk) : -1,
      fences: this.fences,
      acquisitions: this.acquisitions,
      held: up ? this.held.size : 0,
    };
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.tracked.settle();
    this.state = 'closed';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const lease of this.held.values()) lease.held = false;
    this.held.clear();
    const session = this.session;
    this.session = null;
    // Ending the session frees every lock it holds.
    await session?.close();
    this.removeAllListeners();
  }

  /**
   * Ends every lease now: the session is dropped (the server frees its locks once it sees that;
   * whoever takes one over waits past this moment anyway), users are told, and the node
   * connects again.
   */
  private fence(reason: string): void {
    if (this.state !== 'up') return;
    this.state = 'down';
    this.fences++;
    this.generation++;
    const leases = this.held.size;
    for (const lease of this.held.values()) lease.held = false;
    this.held.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.session?.destroy();
    this.session = null;
    this.log.warn(
      `coordination: node ${this.node} fenced: ${reason}; ${leases} lock(s) given up, their work stopped; reconnecting`,
    );
    this.emit('fenced', reason);
    void this.connectLoop();
  }

  /**
   * Connects until it works (or closes). Resolves after the first attempt, whether it worked or
   * will be retried; rejects when that attempt found the configuration wrong (a transaction
   * pool, a node name in use), which retrying cannot fix: then it stops.
   */
  private connectLoop(): Promise<void> {
    let settle!: (err?: Error) => void;
    const first = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    void (async () => {
      for (let attempt = 0; this.state === 'down'; attempt++) {
        try {
          await this.connect();
          settle();
          return;
        } catch (err) {
          if (this.state !== 'down') break;
          const message = (err as Error).message;
          if (err instanceof CoordinationConfigError) {
            this.log.error(`coordination: ${message}`);
            if (this.fences === 0) {
              this.state = 'closed';
              settle(err);
              return;
            }
          } else if (attempt === 0) {
            this.log.warn(`coordination: connecting failed: ${message}; retrying`);
          } else {
            this.log.debug(`coordination: connecting failed: ${message}`);
          }
          // Only a refusal at the start rejects: a node still trying keeps its users waiting.
          if (this.fences > 0 || now() - this.createdAt > 2 * this.settings.fenceMs) settle();
          await sleep(this.reconnect.next());
        }
      }
      settle();
    })();
    return first;
  }

  private async connect(): Promise<void> {
    const db = this.setup.db;
    const session = await db.openSession!(this.setup.at);
    try {
      for (const stmt of this.sql.sessionSettings(this.settings.fenceMs)) {
        // Settings a server does not know (older versions) are left out.
        await session.execute(stmt).catch((err: Error) => {
          this.log.debug(`coordination: ${stmt}: ${err.message}`);
        });
      }
      if (this.setup.dialect.name === 'postgresql') await this.refuseTransactionPool(session);
      const [nodeLock] = await session.query<{ ok: unknown }>(this.sql.tryLock, [
        this.keyOf(`node/${this.node}`),
      ]);
      if (Number(nodeLock?.ok) !== 1) {
        const message =
          `another running node is named ${this.node} (or this node's previous coordination ` +
          'session has not ended yet): node names must be unique among running nodes';
        // At start, past the time a dead predecessor's session takes to end, it is a live one.
        if (this.fences === 0 && now() - this.createdAt > 2 * this.settings.fenceMs)
          throw new CoordinationConfigError(message);
        throw new Error(message);
      }
      const sentAt = now();
      const beat = await this.heartbeatRow(session);
      if (beat.ro) {
        throw new Error('the database server is read-only (a standby): waiting for a primary');
      }
      if (this.control) await this.control.start(session, this.sql.control!);
      if (this.sql.notify) {
        session.onNotification((channel, payload) => {
          if (channel !== CONTROL_CHANNEL) return;
          const message = parseControl(payload);
          if (message && message.from !== this.node) this.emit('control', message);
        });
        await session.execute(`LISTEN "${CONTROL_CHANNEL}"`);
      }
      if (this.state !== 'down') throw new Error('closed');
      this.session = session;
      this.pid = beat.pid;
      this.lastOk = sentAt;
      this.generation++;
      this.state = 'up';
      this.reconnect.reset();
      void session.closed.then((err) => {
        if (this.session === session)
          this.fence(`the coordination connection ended${err ? `: ${err.message}` : ''}`);
      });
      this.timer = setInterval(() => void this.heartbeat(), this.settings.heartbeatMs);
      this.timer.unref();
      this.log.info(`coordination: node ${this.node} connected (session ${beat.pid})`);
      this.emit('up');
    } catch (err) {
      session.destroy();
      throw err;
    }
  }

  /**
   * A transaction pooler (PgBouncer pool_mode=transaction) gives each statement any server
   * session: a session lock is then held by a session nobody watches. Two clients through such a
   * pool share server sessions: while another client holds a transaction open on the session this
   * one just used, this one gets another. Directly or through a session pool, each keeps its own.
   */
  private async refuseTransactionPool(session: SessionConnection): Promise<void> {
    const pidOf = async (s: SessionConnection): Promise<string> =>
      String((await s.query<{ pid: unknown }>('SELECT pg_backend_pid() AS pid'))[0]?.pid);
    const first = await pidOf(session);
    const other = await this.setup.db.openSession!(this.setup.at);
    let shared: boolean;
    try {
      await other.execute('BEGIN');
      const otherPid = await pidOf(other);
      const again = await pidOf(session);
      shared = otherPid === first || again !== first;
      await other.execute('ROLLBACK');
    } finally {
      await other.close();
    }
    if (shared) {
      throw new CoordinationConfigError(
        'the coordination connection goes through a transaction pool (such as PgBouncer with ' +
          'pool_mode=transaction): its session locks would be held by a server session nobody ' +
          'watches. Give it a direct address or a session pool (--session-db, sessionDatabase)',
      );
    }
  }

  private async heartbeatRow(
    session: SessionConnection,
  ): Promise<{ pid: string; ro: boolean; locks: number | null }> {
    const [row] = await withTimeout(
      session.query<{ pid: unknown; ro: unknown; locks: unknown }>(this.sql.heartbeat),
      this.settings.fenceMs,
    );
    return {
      pid: String(row?.pid),
      ro: Number(row?.ro) === 1,
      locks: row?.locks === null || row?.locks === undefined ? null : Number(row.locks),
    };
  }

  private async heartbeat(): Promise<void> {
    if (!this.checkFresh() || this.beating) return;
    const session = this.session;
    if (!session) return;
    this.beating = true;
    const generation = this.generation;
    const sentAt = now();
    try {
      const beat = await this.heartbeatRow(session);
      if (generation !== this.generation) return;
      if (beat.pid !== this.pid) {
        this.fence(
          `the coordination connection answered from another server session (${beat.pid}, not ${this.pid ?? '?'}): a transaction pool?`,
        );
        return;
      }
      if (beat.ro) {
        this.fence('the database server became read-only (a standby)');
        return;
      }
      // The node's own lock and one per lease: fewer means the server dropped some.
      if (beat.locks !== null && beat.locks < this.held.size + 1) {
        this.fence(
          `the coordination session holds ${beat.locks} locks, not ${this.held.size + 1}: a transaction pool?`,
        );
        return;
      }
      if (this.control) {
        for (const message of await this.control.read(session)) {
          if (message.from !== this.node) this.emit('control', message);
        }
      }
      if (generation !== this.generation) return;
      this.lastOk = Math.max(this.lastOk, sentAt);
      this.emit('tick');
    } catch (err) {
      if (generation === this.generation) this.fence(`heartbeat failed: ${(err as Error).message}`);
    } finally {
      this.beating = false;
    }
  }
}

/** Control rows are read over this window, and deleted once older than twice that. */
const CONTROL_KEEP_MS = 60_000;

/** Sends a control message through the pool: NOTIFY, or a row of evt_control. */
export async function sendControl(
  db: SqlClient,
  sql: CoordinationSql,
  message: ControlMessage,
): Promise<void> {
  if (sql.notify) {
    await db.query(sql.notify, [CONTROL_CHANNEL, JSON.stringify(message)]);
  } else if (sql.control) {
    await db.execute(sql.control.send, [
      message.kind,
      message.scope,
      message.subject,
      message.from,
      message.info.slice(0, 200),
      message.epoch ?? '',
    ]);
  }
}
