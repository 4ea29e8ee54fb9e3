/**
 * A cluster of this test's own on loopback ports, everything under one scratch folder:
 * - PostgreSQL: a primary and a streaming standby (synchronous), PgBouncer (event traffic
 *   through a transaction pool) and HAProxy in front of the two servers (the standby as backup,
 *   as in front of a Patroni pair);
 * - or MariaDB (one server, through .ci/databases.sh with a folder and port of its own);
 * - three `evtstream serve` nodes (dist/, as shipped), each archiving (--dwh) and discarding,
 *   behind HAProxy with health checks on /readyz.
 * Nothing here touches the shared test servers. Run alone, it starts a cluster and keeps it up
 * until Ctrl-C, printing its addresses:
 *
 *   npm run build && npx tsx test/cluster/cluster.ts postgresql   # or mysql
 */
import { execFile, execFileSync } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { promisify } from 'util';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import { BIN, Child, freePort, ROOT } from '../support/cli';
import { asUser, serviceUser, startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { sleep, waitFor } from '../support/wait';

const run = promisify(execFile);

export type ClusterDialect = 'postgresql' | 'mysql';

/** The users of every node: alice writes and reads, root is an admin. */
export const CLUSTER_USER = 'alice';
export const CLUSTER_SECRET = 'alice-secret';
export const CLUSTER_CREDENTIALS = `${CLUSTER_USER}:${CLUSTER_SECRET}`;

/**
 * The push face options of the cluster's raw receivers: calls bounded, as a real receiver bounds
 * them (ReliableReceiver: 10 s, and it gives up at once when the connection is lost; 3 s here
 * stands in for both). futoin-invoker leaves a call on a connection that failed to open waiting
 * for its call timeout, 30 s by default, which would show as a slow takeover.
 */
export const RECEIVER_FACE_OPTIONS = Object.freeze({ callTimeoutMS: 3_000, retryCount: 0 });

/** Coordination timings of the nodes (short, so that the scenarios are). */
export const HEARTBEAT_MS = 200;
export const FENCE_MS = 2_000;

const PG_BIN =
  process.env['PG_BIN'] ??
  (fs.existsSync('/usr/lib/postgresql')
    ? path.join(
        '/usr/lib/postgresql',
        fs
          .readdirSync('/usr/lib/postgresql')
          .sort((a, b) => Number(a) - Number(b))
          .pop() ?? '',
        'bin',
      )
    : '');

export const HAPROXY_BIN = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => fs.existsSync(p));

/** Whether this machine has what a cluster of `dialect` needs (else: what is missing). */
export function missingPrograms(dialect: ClusterDialect): string[] {
  const missing: string[] = [];
  if (!HAPROXY_BIN) missing.push('haproxy');
  if (dialect === 'postgresql') {
    if (!PG_BIN || !fs.existsSync(path.join(PG_BIN, 'initdb'))) missing.push('postgresql');
    if (!['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].some((p) => fs.existsSync(p)))
      missing.push('pgbouncer');
  } else if (!['/usr/sbin/mariadbd', '/usr/bin/mariadbd'].some((p) => fs.existsSync(p))) {
    missing.push('mariadb-server');
  }
  return missing;
}

/** Runs a PostgreSQL program as the user the servers run as. */
async function pgRun(program: string, args: string[]): Promise<string> {
  const [cmd, argv] = asUser(serviceUser(), path.join(PG_BIN, program), args);
  const { stdout } = await run(cmd, argv, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** The PIDs of the children of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** One PostgreSQL server of the cluster. */
class PgServer {
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  async start(settings: string[]): Promise<void> {
    const opts = [
      `-p ${this.port}`,
      `-k ${this.dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c max_connections=300',
      '-c wal_level=replica',
      '-c max_wal_senders=5',
      '-c hot_standby=on',
      // A process killed loses nothing the OS has: these tests kill processes, not machines.
      '-c fsync=off',
      ...settings.map((s) => `-c ${s}`),
    ].join(' ');
    await pgRun('pg_ctl', [
      '-D',
      this.dir,
      '-w',
      '-t',
      '60',
      '-l',
      `${this.dir}.log`,
      '-o',
      opts,
      'start',
    ]);
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!fs.existsSync(path.join(this.dir, 'postmaster.pid'))) return;
    await pgRun('pg_ctl', ['-D', this.dir, '-w', '-t', '60', '-m', mode, 'stop']).catch(
      () => undefined,
    );
  }

  /** kill -9 of the postmaster and its processes: a crash. */
  async crash(): Promise<void> {
    const pidFile = path.join(this.dir, 'postmaster.pid');
    const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    const procs = [pid, ...childrenOf(pid)];
    for (const p of procs) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor(`${this.name} killed`, () => procs.every((p) => !alive(p)));
  }

  async query(sql: string, db = 'postgres'): Promise<Record<string, unknown>[]> {
    const c = new Client({ connectionString: this.url(db) });
    // A server going down under a read fails the read; without a listener it would be thrown.
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  }
}

/** HAProxy in front of the database servers and of the nodes. */
class HaProxy {
  private child: Child | null = null;

  constructor(
    readonly dir: string,
    readonly nodesPort: number,
    readonly dbPort: number,
  ) {}

  async start(
    nodePorts: number[],
    db: { primary: number; standby?: number; mysql?: boolean },
  ): Promise<void> {
    const check = db.mysql ? '' : '    option pgsql-check user postgres';
    const cfg = [
      'global',
      '    maxconn 4000',
      'defaults',
      '    mode tcp',
      '    timeout connect 2s',
      '    timeout client 1h',
      '    timeout server 1h',
      // WebSockets of push receivers stay open for long: the tunnel timeout is theirs.
      '    timeout tunnel 1h',
      '    timeout check 1s',
      // A connection refused by a node that died before its health check failed is tried again
      // on another node: a receiver reconnecting then gets a live node, not a refusal (after
      // which futoin-invoker waits long before it tries again).
      '    retries 3',
      '    option redispatch 1',
      'frontend evt',
      `    bind 127.0.0.1:${this.nodesPort}`,
      '    default_backend nodes',
      'backend nodes',
      '    balance roundrobin',
      '    option httpchk GET /readyz',
      '    http-check expect status 200',
      '    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions',
      ...nodePorts.map((p, i) => `    server node${i + 1} 127.0.0.1:${p} check`),
      'frontend db',
      `    bind 127.0.0.1:${this.dbPort}`,
      '    default_backend dbs',
      'backend dbs',
      check,
      '    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions',
      `    server db1 127.0.0.1:${db.primary} check`,
      ...(db.standby ? [`    server db2 127.0.0.1:${db.standby} check backup`] : []),
      '',
    ].join('\n');
    const file = path.join(this.dir, 'haproxy.cfg');
    fs.writeFileSync(file, cfg);
    this.child = new Child(HAPROXY_BIN!, ['-db', '-f', file]);
    await waitFor(
      () => `HAProxy up: ${this.child?.describe() ?? ''}`,
      async () => {
        if (this.child?.status) throw new Error(`HAProxy exited: ${this.child.describe()}`);
        return portOpen(this.nodesPort);
      },
    );
  }

  async stop(): Promise<void> {
    await this.child?.stop('SIGTERM').catch(() => undefined);
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** One `evtstream serve` of the cluster. */
export class ClusterNode {
  child: Child | null = null;
  /** Output of every run of this node (it may be killed and started again). */
  private past = '';
  stopped = false;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get pid(): number {
    const pid = this.child?.pid;
    if (!pid) throw new Error(`${this.name} is not running`);
    return pid;
  }

  /** Everything it logged so far, over all its runs. */
  get log(): string {
    return this.past + (this.child?.stderr ?? '');
  }

  async start(): Promise<void> {
    if (this.child) this.past += this.child.stderr;
    this.child = new Child(
      process.execPath,
      [BIN, 'serve', '--port', String(this.port), ...this.args],
      {
        env: {
          EVTSTREAM_USERS: CLUSTER_CREDENTIALS,
          EVTSTREAM_ADMINS: 'root:root-secret',
        },
      },
    );
    await this.child.waitForOutput(/^evtstream listening on /m, 60_000);
    await this.ready();
  }

  /** Waits for /readyz to answer 200. */
  async ready(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      () => `${this.name} ready: ${this.child?.describe() ?? ''}`,
      async () => {
        try {
          const rsp = await fetch(`${this.url}readyz`, { signal: AbortSignal.timeout(1000) });
          return rsp.status === 200;
        } catch {
          return false;
        }
      },
      timeoutMs,
    );
  }

  kill9(): void {
    this.child?.kill();
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  async stop(): Promise<void> {
    if (!this.child) return;
    // A stopped process does not handle SIGTERM: let it run first.
    try {
      process.kill(this.pid, 'SIGCONT');
    } catch {
      // gone
    }
    await this.child.stop('SIGTERM', 15_000).catch(() => this.child?.kill());
  }
}

/** What a test reaches the cluster by. */
export interface Cluster {
  dialect: ClusterDialect;
  dir: string;
  nodes: ClusterNode[];
  /** The nodes behind HAProxy (HTTP and WebSocket). */
  url: string;
  wsUrl: string;
  /** The event database, directly (for the test's own reads and faults). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The warehouse, directly. */
  queryWarehouse(sql: string): Promise<Record<string, unknown>[]>;
  /** Ends a node's coordination session from the database (pg_terminate_backend, KILL). */
  terminateCoordination(node: ClusterNode): Promise<void>;
  /** Restarts the database server (the primary). */
  restartDatabase(): Promise<void>;
  /** PostgreSQL: kills the primary and promotes the standby. */
  failover?(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  dialect: ClusterDialect;
  /** Extra `serve` arguments for every node. */
  nodeArgs?: string[];
  say?: (line: string) => void;
}

/** The coordination session of a node, as its log names it ("... connected (session N)"). */
export function coordinationSession(node: ClusterNode): string {
  const all = [...node.log.matchAll(/coordination: node \S+ connected \(session (\d+)\)/g)];
  const last = all[all.length - 1]?.[1];
  if (!last) throw new Error(`${node.name} logged no coordination session`);
  return last;
}

/** Starts a cluster; stop() ends every process and removes its folder. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const say = options.say ?? (() => undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `evt-cluster-${options.dialect}-`));
  fs.chmodSync(dir, 0o755);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    return options.dialect === 'postgresql'
      ? await startPg(dir, options, stops, stopAll, say)
      : await startMysql(dir, options, stops, stopAll, say);
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function nodeArgs(name: string, db: string, extra: string[]): string[] {
  return [
    '--host',
    '127.0.0.1',
    '--db',
    db,
    '--node',
    name,
    '--heartbeat',
    `${HEARTBEAT_MS}ms`,
    '--fence-after',
    `${FENCE_MS}ms`,
    '--discard',
    '--discard-every',
    '2s',
    '--log-level',
    'debug',
    ...extra,
  ];
}

async function startPg(
  dir: string,
  options: ClusterOptions,
  stops: (() => Promise<void>)[],
  stopAll: () => Promise<void>,
  say: (line: string) => void,
): Promise<Cluster> {
  const owner = serviceUser();
  const primary = new PgServer('primary', path.join(dir, 'pg1'), await freePort());
  const standby = new PgServer('standby', path.join(dir, 'pg2'), await freePort());
  if (owner) execFileSync('chown', [owner, dir]);
  say(`PostgreSQL primary on ${primary.port}`);
  await pgRun('initdb', [
    '-D',
    primary.dir,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '--no-sync',
  ]);
  await primary.start([]);
  stops.push(() => primary.stop('immediate'));
  await primary.query('CREATE DATABASE evt');
  await primary.query('CREATE DATABASE dwh');
  say(`PostgreSQL standby on ${standby.port} (streaming, synchronous)`);
  await pgRun('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primary.port),
    '-U',
    'postgres',
    '-D',
    standby.dir,
    '-X',
    'stream',
    '-R',
    '-c',
    'fast',
  ]);
  await standby.start(['synchronous_standby_names=']);
  stops.push(() => standby.stop('immediate'));
  // Synchronous from now on: a commit returns once the standby has it.
  await primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'");
  await primary.query('SELECT pg_reload_conf()');
  await waitFor('the standby in sync', async () => {
    const rows = await primary.query('SELECT sync_state FROM pg_stat_replication');
    return rows.some((r) => r['sync_state'] === 'sync');
  });

  const haproxy = new HaProxy(dir, await freePort(), await freePort());
  const viaHaproxy = (db: string): string =>
    `postgres://postgres@127.0.0.1:${haproxy.dbPort}/${db}`;
  const nodePorts: number[] = [];
  // HAProxy needs the nodes' ports before they run: picked now, started below.
  for (let i = 0; i < 3; i++) nodePorts.push(await freePort());
  await haproxy.start(nodePorts, { primary: primary.port, standby: standby.port });
  stops.push(() => haproxy.stop());
  const bouncer: PgBouncer = await startPgBouncer(viaHaproxy('evt'), 12);
  stops.push(() => bouncer.stop());
  say(
    `HAProxy: nodes on ${haproxy.nodesPort}, PostgreSQL on ${haproxy.dbPort}; PgBouncer on ${bouncer.port}`,
  );

  const nodes: ClusterNode[] = nodePorts.map(
    (port, i) =>
      new ClusterNode(
        `node${i + 1}`,
        port,
        nodeArgs(`node${i + 1}`, `${bouncer.url('transaction')}?pool_mode=transaction&max=8`, [
          // Locks and LISTEN need a session: straight to HAProxy, not through the pool.
          '--session-db',
          viaHaproxy('evt'),
          '--dwh',
          viaHaproxy('dwh'),
          ...(options.nodeArgs ?? []),
        ]),
      ),
  );
  stops.push(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });
  await nodes[0]!.start();
  await Promise.all(nodes.slice(1).map((n) => n.start()));
  say(`nodes: ${nodes.map((n) => `${n.name} ${n.url}`).join(', ')}`);

  let current = primary;
  return {
    dialect: 'postgresql',
    dir,
    nodes,
    url: `http://127.0.0.1:${haproxy.nodesPort}/`,
    wsUrl: `ws://127.0.0.1:${haproxy.nodesPort}/`,
    query: async (sql, params = []) => {
      const c = new Client({ connectionString: current.url('evt') });
      c.on('error', () => undefined);
      await c.connect();
      try {
        return (await c.query(sql, params)).rows as Record<string, unknown>[];
      } finally {
        await c.end();
      }
    },
    queryWarehouse: (sql) => current.query(sql, 'dwh'),
    terminateCoordination: async (node) => {
      await current.query(`SELECT pg_terminate_backend(${Number(coordinationSession(node))})`);
    },
    restartDatabase: async () => {
      await current.stop('fast');
      await current.start([]);
    },
    failover: async () => {
      await primary.crash();
      // What Patroni would do: promote the synchronous standby, which has every commit.
      await pgRun('pg_ctl', ['-D', standby.dir, '-w', '-t', '60', 'promote']);
      current = standby;
    },
    stop: stopAll,
  };
}

async function startMysql(
  dir: string,
  options: ClusterOptions,
  stops: (() => Promise<void>)[],
  stopAll: () => Promise<void>,
  say: (line: string) => void,
): Promise<Cluster> {
  const port = await freePort();
  const env = { ...process.env, EVT_DB_DIR: path.join(dir, 'dbs'), EVT_MYSQL_PORT: String(port) };
  const script = path.join(ROOT, '.ci', 'databases.sh');
  say(`MariaDB on ${port}`);
  await run(script, ['start', 'mysql'], { env });
  stops.push(async () => {
    await run(script, ['stop', 'mysql'], { env });
  });
  const admin = `mysql://evt:evt@127.0.0.1:${port}/mysql`;
  const adminQuery = async (sql: string, db?: string): Promise<Record<string, unknown>[]> => {
    const u = new URL(admin);
    if (db) u.pathname = `/${db}`;
    const c = await mysql.createConnection(u.toString());
    try {
      const [rows] = await c.query(sql);
      return rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  await adminQuery('CREATE DATABASE evt');
  await adminQuery('CREATE DATABASE dwh');

  const haproxy = new HaProxy(dir, await freePort(), await freePort());
  const nodePorts: number[] = [];
  for (let i = 0; i < 3; i++) nodePorts.push(await freePort());
  await haproxy.start(nodePorts, { primary: port, mysql: true });
  stops.push(() => haproxy.stop());
  const viaHaproxy = (db: string): string => `mysql://evt:evt@127.0.0.1:${haproxy.dbPort}/${db}`;
  say(`HAProxy: nodes on ${haproxy.nodesPort}, MariaDB on ${haproxy.dbPort}`);

  const nodes = nodePorts.map(
    (p, i) =>
      new ClusterNode(
        `node${i + 1}`,
        p,
        nodeArgs(`node${i + 1}`, `${viaHaproxy('evt')}?max=8`, [
          '--dwh',
          viaHaproxy('dwh'),
          ...(options.nodeArgs ?? []),
        ]),
      ),
  );
  stops.push(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });
  await nodes[0]!.start();
  await Promise.all(nodes.slice(1).map((n) => n.start()));
  say(`nodes: ${nodes.map((n) => `${n.name} ${n.url}`).join(', ')}`);

  return {
    dialect: 'mysql',
    dir,
    nodes,
    url: `http://127.0.0.1:${haproxy.nodesPort}/`,
    wsUrl: `ws://127.0.0.1:${haproxy.nodesPort}/`,
    query: async (sql, params = []) => {
      const c = await mysql.createConnection(`mysql://evt:evt@127.0.0.1:${port}/evt`);
      try {
        const [rows] = await c.query(sql, params);
        return rows as Record<string, unknown>[];
      } finally {
        await c.end();
      }
    },
    queryWarehouse: (sql) => adminQuery(sql, 'dwh'),
    terminateCoordination: async (node) => {
      await adminQuery(`KILL ${Number(coordinationSession(node))}`);
    },
    restartDatabase: async () => {
      await run(script, ['restart', 'mysql'], { env });
    },
    stop: stopAll,
  };
}

// Run alone: a cluster until Ctrl-C.
if (require.main === module) {
  const dialect = (process.argv[2] ?? 'postgresql') as ClusterDialect;
  void (async () => {
    const cluster = await startCluster({ dialect, say: (l) => console.log(l) });
    console.log(`cluster up: ${cluster.url} (user ${CLUSTER_CREDENTIALS}); Ctrl-C stops it`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    await cluster.stop();
    await sleep(0);
  })();
}
