/**
 * Several nodes: what it costs to run three `evtstream serve` nodes over one database instead
 * of one, per database kind, on the cluster of test/cluster/cluster.ts (PostgreSQL primary and
 * synchronous standby behind PgBouncer and HAProxy, or MariaDB behind HAProxy; three nodes
 * behind HAProxy, all of its own on loopback ports, stopped at the end):
 *
 * 1. cross-node push latency: a reliable consumer's receiver connected straight to node2, events
 *    added at a steady rate through node1 (WebSocket, one caller); from just before addEvent to
 *    the onEvents call arriving. Then the same with the events added through node2, for contrast.
 * 2. takeover: the node pushing two consumers is killed with SIGKILL while events are added
 *    through another node; the time from the kill to the first onEvents of an event added after
 *    it. Consumer PAIR has a standby receiver on a second node; consumer LB's receiver connects
 *    again through HAProxy (after 200 ms, as the cluster test's receivers do).
 * 3. coordination cost: a single node (no cluster) on a fresh database of the shared server
 *    (EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL), once with --no-coordination and once with its
 *    default coordination; a burst of addEvent calls from several callers, pushed to one reliable
 *    receiver: events per second delivered, and the server's CPU per event.
 *
 *   npm run build && npx tsx bench/cluster.ts [--db postgresql,mysql] [--events N] [--runs N]
 *
 * Every delivery is checked: latency, every event once and in ID order; takeover, every event
 * written delivered to both consumers, each connection in ID order (redeliveries across the
 * handover are counted: at least once is the promise there); coordination cost, every event
 * once, in order.
 */
import fs from 'fs';
import path from 'path';
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import { GenFace } from '../src/common/faces/GenFace';
import {
  CLUSTER_CREDENTIALS,
  CLUSTER_USER,
  FENCE_MS,
  HEARTBEAT_MS,
  missingPrograms,
  startCluster,
  type Cluster,
  type ClusterDialect,
  type ClusterNode,
  RECEIVER_FACE_OPTIONS,
} from '../test/cluster/cluster';
import { requireFreshDist } from '../test/support/cli';
import { connectRaw, type RawReceiver } from '../test/support/push';
import { clientCcm, steps } from '../test/support/service';
import { Notifier, sleep, waitFor } from '../test/support/wait';
import {
  allOk,
  BenchClient,
  checkExact,
  increasing,
  percentile,
  receiver,
  sortIds,
  type Check,
} from './client';
import { EVENT_TYPE, FreshDb, serverUrl, unavailable } from './db';
import { describeMachine } from './report';
import { startOurs } from './servers/ours';
import type { ServerProcess } from './servers/process';

const ROOT = path.resolve(__dirname, '..');

const HELP = `Usage: npm run build && npx tsx bench/cluster.ts [options]

  --db KINDS        postgresql, mysql or both, comma-separated (default postgresql,mysql)
  --parts LIST      latency, takeover, cost or a comma list (default all three)
  --rate N          events per second of the steady writers (latency, takeover; default 50)
  --seconds N       seconds of each latency phase, cross-node and same-node (default 10)
  --takeovers N     kills per database (default 3)
  --events N        events of each coordination-cost burst (default 5000)
  --callers N       concurrent addEvent callers of the burst (default 8)
  --runs N          coordination-cost rounds, each both variants in turn (default 3)
  --node-log LEVEL  the cluster nodes' --log-level (default info; the cluster test's is debug)
  --save            write bench/results/<UTC date>-cluster.md
  --out FILE        write the report to FILE
  -h, --help        this help

The cluster needs haproxy, and postgresql + pgbouncer or mariadb-server (Debian packages);
the coordination cost needs EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL (or EVT_BENCH_*).
`;

type Part = 'latency' | 'takeover' | 'cost';
const PARTS: readonly Part[] = ['latency', 'takeover', 'cost'];

interface Options {
  dialects: ClusterDialect[];
  parts: Set<Part>;
  rate: number;
  seconds: number;
  takeovers: number;
  events: number;
  callers: number;
  runs: number;
  nodeLog: string;
  out: string | null;
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** Everything started by this script that must be stopped on Ctrl-C too. */
const stops = new Set<() => Promise<void>>();

// ---------------------------------------------------------------------------------------------
// Clients of the cluster (its user, CLUSTER_CREDENTIALS)

/** One addEvent: its ID, and when it was called and answered (performance.now()). */
interface Added {
  id: string;
  start: number;
  end: number;
}

/** addEvent through one node, on a WebSocket of its own. */
class Writer {
  private readonly ccm = clientCcm();

  private constructor(readonly node: string) {}

  static async open(node: ClusterNode): Promise<Writer> {
    const w = new Writer(node.name);
    await steps((as) => {
      GenFace.register(as, w.ccm, 'gen', node.wsUrl, CLUSTER_CREDENTIALS, { secureChannel: true });
      // The WebSocket opens at the first call: not within the first measured addEvent.
      as.add((as) => w.ccm.iface<GenFace>('gen').ping(as, 1));
    });
    return w;
  }

  async add(data: unknown): Promise<Added> {
    const start = performance.now();
    const id = await steps<string>((as) =>
      this.ccm.iface<GenFace>('gen').addEvent(as, EVENT_TYPE, data),
    );
    return { id: String(id), start, end: performance.now() };
  }

  close(): void {
    this.ccm.close();
  }
}

/** Adds events through `writer` at `rate` per second until stop(), in the background. */
class SteadyWriter {
  readonly added: Added[] = [];
  private stopped = false;
  private error: Error | null = null;
  private readonly loop: Promise<void>;

  constructor(
    private readonly writer: Writer,
    private readonly rate: number,
  ) {
    // Kept for stop(): a failure must not surface as an unhandled rejection meanwhile.
    this.loop = this.run().catch((err: unknown) => {
      this.error = err instanceof Error ? err : new Error(String(err));
    });
  }

  private async run(): Promise<void> {
    const t0 = performance.now();
    for (let i = 0; !this.stopped; i++) {
      // Paced from the start, not from each answer: a slow call does not lower the rate after it.
      const wait = t0 + (i * 1000) / this.rate - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.stopped) break;
      this.added.push(await this.writer.add({ i, via: this.writer.node }));
    }
  }

  /** Ends the loop; rejects if an addEvent failed. */
  async stop(): Promise<Added[]> {
    this.stopped = true;
    await this.loop;
    if (this.error) throw this.error;
    return this.added;
  }

  /** When the event `id` was added (its call started), if this writer added it. */
  startOf(id: string): number | undefined {
    return this.added.find((a) => a.id === id)?.start;
  }
}

/** One onEvents call as a receiver got it: over which connection, when, which IDs. */
interface Batch {
  conn: string;
  at: number;
  ids: string[];
}

/** What one reliable consumer got, over all of its receivers' connections. */
class Consumer {
  readonly batches: Batch[] = [];
  /** When each ID first arrived. */
  private readonly firstAt = new Map<string, number>();
  private readonly changes = new Notifier();

  constructor(readonly component: string) {}

  get ident(): string {
    return `${CLUSTER_USER}:${this.component}`;
  }

  record(batch: Batch): void {
    this.batches.push(batch);
    for (const id of batch.ids) if (!this.firstAt.has(id)) this.firstAt.set(id, batch.at);
    this.changes.notify();
  }

  arrivedAt(id: string): number | undefined {
    return this.firstAt.get(id);
  }

  /** Every ID in arrival order, redeliveries included. */
  ids(): string[] {
    return this.batches.flatMap((b) => b.ids);
  }

  /** Resolves once every one of `ids` arrived; rejects after `timeoutMs`. */
  async got(ids: readonly string[], timeoutMs = 60_000): Promise<void> {
    await this.changes.until(
      () =>
        `${this.component}: ${ids.filter((id) => !this.firstAt.has(id)).length} of ${ids.length} events still to arrive`,
      () => ids.every((id) => this.firstAt.has(id)),
      timeoutMs,
    );
  }

  /** Resolves once a batch satisfying `pred` arrived, with the first such. */
  first(pred: (b: Batch) => boolean, what: string, timeoutMs = 60_000): Promise<Batch> {
    return this.changes.until(
      `${this.component}: ${what}`,
      () => this.batches.find(pred) ?? null,
      timeoutMs,
    );
  }
}

/**
 * A push receiver of `consumer`: its first connection to `first`; when that is dropped, either
 * done (`again` null) or connecting to `again` whenever it has no connection, after a pause of
 * 200 ms as the cluster test's receivers do. Each connection has a name of its own.
 */
class Receiver {
  /** Resolves once the first connection's readyToReceive succeeded (rejects if it failed). */
  readonly attached: Promise<void>;
  private stopped = false;
  private current: RawReceiver | null = null;
  private connections = 0;
  private readonly loop: Promise<void>;

  constructor(
    readonly consumer: Consumer,
    readonly label: string,
    private readonly first: string,
    private readonly again: string | null,
  ) {
    let attach!: { resolve: () => void; reject: (err: unknown) => void };
    this.attached = new Promise<void>((resolve, reject) => (attach = { resolve, reject }));
    // Awaited by the caller, maybe only after other steps: not an unhandled rejection meanwhile.
    this.attached.catch(() => undefined);
    this.loop = this.run(attach);
  }

  /** The name of the first connection (that to `first`). */
  get firstConn(): string {
    return `${this.label}#1`;
  }

  private async run(attach: {
    resolve: () => void;
    reject: (err: unknown) => void;
  }): Promise<void> {
    while (!this.stopped) {
      const n = ++this.connections;
      const conn = `${this.label}#${n}`;
      try {
        const r = await connectRaw(
          n === 1 ? this.first : this.again!,
          CLUSTER_CREDENTIALS,
          this.consumer.component,
          null,
          '1.1',
          (r) => {
            r.behaviour = (call) => {
              // Only calls with events: they are what the figures and checks are about.
              if (call.ids.length)
                this.consumer.record({ conn, at: performance.now(), ids: call.ids });
              return 'ok';
            };
          },
          RECEIVER_FACE_OPTIONS,
        );
        this.current = r;
        if (n === 1) attach.resolve();
        // Polled, not awaited with a long bounded wait: stop() must end the loop at once.
        while (!r.disconnected && !this.stopped) await sleep(10);
        r.close();
      } catch (err) {
        if (n === 1) {
          attach.reject(err);
          return;
        }
        // The node is down, or HAProxy sent us to one that is: try again.
      }
      this.current = null;
      if (this.again === null) return;
      if (!this.stopped) await sleep(200);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.close();
    await this.loop.catch(() => undefined);
  }
}

async function ownerOf(cluster: Cluster, consumer: Consumer): Promise<string | null> {
  const rows = await cluster.query(
    `SELECT owner_node FROM evt_consumers WHERE ident = '${consumer.ident}'`,
  );
  const node = rows[0]?.['owner_node'];
  return typeof node === 'string' ? node : null;
}

async function pushedBy(cluster: Cluster, consumer: Consumer, node: ClusterNode): Promise<void> {
  await waitFor(
    `${consumer.component} pushed by ${node.name}`,
    async () => (await ownerOf(cluster, consumer)) === node.name,
  );
}

// ---------------------------------------------------------------------------------------------
// Figures

interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function stats(values: readonly number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: percentile(s, 100),
  };
}

const median = (xs: readonly number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const ms = (v: number): string =>
  !Number.isFinite(v) ? '—' : Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1);
const int = (v: number): string =>
  Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—';

// ---------------------------------------------------------------------------------------------
// 1. Cross-node push latency

interface LatencyResult {
  cross: Stats;
  same: Stats;
  /** addEvent's own round trip (through node1), for scale. */
  call: Stats;
  check: Check;
}

/** `count` addEvent calls through `writer` at `rate` per second, one caller. */
async function paced(writer: Writer, rate: number, count: number): Promise<Added[]> {
  const added: Added[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    added.push(await writer.add({ i, via: writer.node }));
  }
  return added;
}

async function latency(cluster: Cluster, o: Options): Promise<LatencyResult> {
  const [node1, node2] = cluster.nodes as [ClusterNode, ClusterNode];
  const consumer = new Consumer('LATENCY');
  const rx = new Receiver(consumer, `LATENCY@${node2.name}`, node2.wsUrl, null);
  const viaNode1 = await Writer.open(node1);
  const viaNode2 = await Writer.open(node2);
  try {
    await rx.attached;
    await pushedBy(cluster, consumer, node2);
    // A second's worth first, not counted: connections, JIT and the nodes' pools warm.
    const warm = await paced(viaNode1, o.rate, o.rate);
    await consumer.got(warm.map((a) => a.id));
    const count = Math.round(o.rate * o.seconds);
    say(`  latency: ${count} events at ${o.rate}/s through ${node1.name}, pushed by ${node2.name}`);
    const cross = await paced(viaNode1, o.rate, count);
    await consumer.got(cross.map((a) => a.id));
    say(`  latency: ${count} events at ${o.rate}/s through ${node2.name}, pushed by ${node2.name}`);
    const same = await paced(viaNode2, o.rate, count);
    await consumer.got(same.map((a) => a.id));
    await sleep(300); // anything extra (a duplicate) would come now
    const lat = (added: Added[]): number[] => added.map((a) => consumer.arrivedAt(a.id)! - a.start);
    const all = [...warm, ...cross, ...same];
    // The consumer is new: it gets every stored event, those of earlier parts first.
    const from = BigInt(all[0]!.id);
    const got = consumer.ids().filter((id) => BigInt(id) >= from);
    return {
      cross: stats(lat(cross)),
      same: stats(lat(same)),
      call: stats(cross.map((a) => a.end - a.start)),
      check: allOk(
        checkExact(sortIds(all.map((a) => a.id)), got),
        increasing(
          all.map((a) => a.id),
          'the writer',
        ),
      ),
    };
  } finally {
    viaNode1.close();
    viaNode2.close();
    await rx.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Takeover after kill -9

interface TakeoverConsumer {
  /** From the kill to the first onEvents of an event added after it. */
  newEventMs: number;
  /** From the kill to the first onEvents at all on another connection (a redelivery, maybe). */
  resumedMs: number;
  /** Who pushes it now. */
  owner: string | null;
  /** Events delivered more than once (across the handover). */
  redelivered: number;
}

interface TakeoverResult {
  victim: string;
  pair: TakeoverConsumer;
  lb: TakeoverConsumer;
  check: Check;
}

/** Each connection's events in ID order, and every one of `written` delivered. */
function checkHandover(consumer: Consumer, written: readonly string[]): Check {
  const last = new Map<string, bigint>();
  for (const b of consumer.batches) {
    for (const id of b.ids) {
      const prev = last.get(b.conn) ?? -1n;
      if (BigInt(id) <= prev) {
        return { ok: false, detail: `${consumer.component}: ${b.conn} got ${id} after ${prev}` };
      }
      last.set(b.conn, BigInt(id));
    }
  }
  const missing = written.filter((id) => consumer.arrivedAt(id) === undefined).length;
  return missing
    ? { ok: false, detail: `${consumer.component}: ${missing} of ${written.length} not delivered` }
    : {
        ok: true,
        detail: `${consumer.component}: ${written.length} events delivered, each connection in order`,
      };
}

async function takeover(cluster: Cluster, k: number, o: Options): Promise<TakeoverResult> {
  const n = cluster.nodes;
  // A different victim each time, so that every node is killed (and started again) in turn.
  const victim = n[k % n.length]!;
  const standby = n[(k + 1) % n.length]!;
  const via = n[(k + 2) % n.length]!;
  const pair = new Consumer(`TAKEOVER${k}_PAIR`);
  const lb = new Consumer(`TAKEOVER${k}_LB`);
  const receivers: Receiver[] = [];
  let writer: Writer | null = null;
  let steady: SteadyWriter | null = null;
  let killed = false;
  try {
    // Both consumers pushed by the victim: the first receiver of a consumer wins.
    const pairMain = new Receiver(pair, `PAIR@${victim.name}`, victim.wsUrl, null);
    receivers.push(pairMain);
    await pairMain.attached;
    await pushedBy(cluster, pair, victim);
    const pairStandby = new Receiver(pair, `PAIR@${standby.name}`, standby.wsUrl, null);
    receivers.push(pairStandby);
    await pairStandby.attached;
    // LB's first connection straight to the victim, where HAProxy might have sent it; then
    // through HAProxy, as any receiver behind a balancer connects again.
    const lbRx = new Receiver(lb, 'LB', victim.wsUrl, cluster.wsUrl);
    receivers.push(lbRx);
    await lbRx.attached;
    await pushedBy(cluster, lb, victim);

    writer = await Writer.open(via);
    const w = new SteadyWriter(writer, o.rate);
    steady = w;
    // Steady state before the kill: both caught up (they are new: every stored event first).
    await sleep(1000);
    const before = w.added.map((a) => a.id);
    await Promise.all([pair.got(before), lb.got(before)]);

    say(
      `  takeover ${k + 1}: kill -9 ${victim.name} (pushes both; PAIR's standby on ${standby.name}, writes through ${via.name})`,
    );
    const killedAt = performance.now();
    victim.kill9();
    killed = true;
    const addedAfter = (id: string): boolean => (w.startOf(id) ?? -Infinity) > killedAt;
    const measure = async (c: Consumer, firstConn: string): Promise<TakeoverConsumer> => {
      const fresh = await c.first(
        (b) => b.at > killedAt && b.ids.some(addedAfter),
        'an event added after the kill delivered',
      );
      const resumed = await c.first(
        (b) => b.at > killedAt && b.conn !== firstConn,
        'a delivery on another connection',
      );
      return {
        newEventMs: fresh.at - killedAt,
        resumedMs: resumed.at - killedAt,
        owner: null,
        redelivered: 0,
      };
    };
    const [pairFig, lbFig] = await Promise.all([
      measure(pair, pairMain.firstConn),
      measure(lb, lbRx.firstConn),
    ]);
    const written = (await w.stop()).map((a) => a.id);
    steady = null;
    await Promise.all([pair.got(written), lb.got(written)]);
    await sleep(300); // late redeliveries would come now
    for (const [c, fig] of [
      [pair, pairFig],
      [lb, lbFig],
    ] as const) {
      fig.owner = await ownerOf(cluster, c);
      const ids = c.ids();
      fig.redelivered = ids.length - new Set(ids).size;
    }
    const all = [...before, ...written.filter((id) => !before.includes(id))];
    return {
      victim: victim.name,
      pair: pairFig,
      lb: lbFig,
      check: allOk(checkHandover(pair, all), checkHandover(lb, all)),
    };
  } finally {
    await steady?.stop().catch(() => undefined);
    writer?.close();
    await Promise.all(receivers.map((r) => r.stop()));
    if (killed) {
      // Back to three nodes for the next kill: the old process must have gone first (its port).
      await victim.child?.exited;
      await victim.start();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Coordination cost: one node, with and without coordination

type Variant = 'single' | 'coordinated';

interface CostRun {
  variant: Variant;
  /** Events per second delivered: from the first addEvent to the last event pushed. */
  rate: number;
  /** addEvent calls per second (all answered). */
  addRate: number;
  /** Server CPU (all threads) per event, ms. */
  cpuMs: number;
  check: Check;
}

/** `total` split between `callers`. */
const shares = (total: number, callers: number): number[] =>
  Array.from({ length: callers }, (_v, i) => Math.floor((total + i) / callers));

async function costRun(dialect: ClusterDialect, variant: Variant, o: Options): Promise<CostRun> {
  // Named so that leftovers of this script on the shared server are recognisable.
  const db = await FreshDb.create(dialect, 'bench_i15');
  let server: ServerProcess | null = null;
  let stopServer: (() => Promise<void>) | null = null;
  const client: BenchClient[] = [];
  try {
    server = await startOurs(db, [], variant === 'single' ? ['--no-coordination'] : []);
    const s = server;
    stopServer = () => s.stop();
    stops.add(stopServer);
    const c = new BenchClient(server);
    client.push(c);
    const { r, ready } = await receiver(c, 'COST');
    await ready();
    const faces = await Promise.all(Array.from({ length: o.callers }, () => c.face('gen')));
    const returned: string[][] = faces.map(() => []);
    const burst = async (total: number, tag: string): Promise<void> => {
      const counts = shares(total, faces.length);
      await Promise.all(
        faces.map(async (face, k) => {
          for (let i = 0; i < counts[k]!; i++) {
            const id = await c.call<string>(face, 'addEvent', {
              type: EVENT_TYPE,
              data: { tag, k, i },
            });
            returned[k]!.push(String(id));
          }
        }),
      );
    };
    // A tenth first, not timed: the new server's JIT, pools and the receiver's session warm.
    const warm = Math.max(1, Math.round(o.events / 10));
    await burst(warm, 'warm');
    await r.until(warm);
    const cpu0 = server.cpuSeconds();
    const t0 = performance.now();
    await burst(o.events, 'burst');
    const added = performance.now();
    await r.until(warm + o.events);
    const cpu = server.cpuSeconds() - cpu0;
    const seconds = (r.at[warm + o.events - 1]! - t0) / 1000;
    await sleep(300); // anything extra (a duplicate) would come now
    return {
      variant,
      rate: o.events / seconds,
      addRate: o.events / ((added - t0) / 1000),
      cpuMs: (cpu * 1000) / o.events,
      check: allOk(
        checkExact(sortIds(returned.flat()), r.ids),
        ...returned.map((ids, k) => increasing(ids, `caller ${k}`)),
      ),
    };
  } finally {
    for (const x of client) x.close();
    await server?.stop();
    if (stopServer) stops.delete(stopServer);
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// Orchestration and report

interface DbResult {
  dialect: ClusterDialect;
  clusterDb: string | null;
  costDb: string | null;
  latency: LatencyResult | null;
  takeovers: TakeoverResult[];
  cost: CostRun[];
  errors: string[];
}

async function version(
  query: (sql: string) => Promise<Record<string, unknown>[]>,
): Promise<string> {
  const rows = await query('SELECT version() AS v');
  const v = rows[0]?.['v'];
  return typeof v === 'string' ? v : '?';
}

async function benchDb(dialect: ClusterDialect, o: Options): Promise<DbResult> {
  const res: DbResult = {
    dialect,
    clusterDb: null,
    costDb: null,
    latency: null,
    takeovers: [],
    cost: [],
    errors: [],
  };
  const attempt = async (what: string, body: () => Promise<void>): Promise<void> => {
    try {
      await body();
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      res.errors.push(`${what}: ${text.split('\n')[0]}`);
      say(`  ✗ ${what}: ${text.slice(0, 2000)}`);
    }
  };

  if (o.parts.has('latency') || o.parts.has('takeover')) {
    await attempt('cluster', async () => {
      const missing = missingPrograms(dialect);
      if (missing.length) throw new Error(`missing programs: ${missing.join(', ')}`);
      say(`[${dialect}] starting the cluster`);
      const cluster = await startCluster({
        dialect,
        // The harness's nodes log at debug level, a line or more per event: on two cores that
        // is CPU the nodes would take from the push path. Its last --log-level wins.
        nodeArgs: ['--log-level', o.nodeLog],
        say: (l) => say(`  ${l}`),
      });
      const stop = (): Promise<void> => cluster.stop();
      stops.add(stop);
      try {
        res.clusterDb = await version((sql) => cluster.query(sql));
        if (o.parts.has('latency')) {
          await attempt('latency', async () => {
            res.latency = await latency(cluster, o);
            const l = res.latency;
            say(
              `  cross-node p50 ${ms(l.cross.p50)} p95 ${ms(l.cross.p95)} p99 ${ms(l.cross.p99)} max ${ms(l.cross.max)} ms; ` +
                `same-node p50 ${ms(l.same.p50)} p99 ${ms(l.same.p99)} ms ${l.check.ok ? '✓' : `✗ ${l.check.detail}`}`,
            );
          });
        }
        if (o.parts.has('takeover')) {
          for (let k = 0; k < o.takeovers; k++) {
            const ok = res.errors.length;
            await attempt(`takeover ${k + 1}`, async () => {
              const t = await takeover(cluster, k, o);
              res.takeovers.push(t);
              say(
                `  takeover ${k + 1}: PAIR ${int(t.pair.newEventMs)} ms (to ${t.pair.owner}), LB ${int(t.lb.newEventMs)} ms ` +
                  `(to ${t.lb.owner}); redelivered ${t.pair.redelivered} / ${t.lb.redelivered} ${t.check.ok ? '✓' : `✗ ${t.check.detail}`}`,
              );
            });
            // A failed kill may leave the cluster short of a node: no point going on.
            if (res.errors.length > ok) break;
          }
        }
      } finally {
        say(`[${dialect}] stopping the cluster`);
        stops.delete(stop);
        await stop();
      }
    });
  }

  if (o.parts.has('cost')) {
    const why = unavailable(dialect);
    if (why) {
      res.errors.push(`coordination cost skipped: ${why}`);
      say(`  skipped the coordination cost: ${why}`);
    } else {
      await attempt('coordination cost', async () => {
        const db = await FreshDb.create(dialect, 'bench_i15');
        try {
          res.costDb = await db.version();
        } finally {
          await db.drop();
        }
        for (let run = 1; run <= o.runs; run++) {
          // Alternating order: a drift of the machine's load does not favour one variant.
          const order: Variant[] = run % 2 ? ['single', 'coordinated'] : ['coordinated', 'single'];
          for (const variant of order) {
            const r = await costRun(dialect, variant, o);
            res.cost.push(r);
            say(
              `  cost run ${run}/${o.runs} ${variant}: ${int(r.rate)} events/s delivered, addEvent ${int(r.addRate)}/s, ` +
                `server CPU ${r.cpuMs.toFixed(3)} ms/event ${r.check.ok ? '✓' : `✗ ${r.check.detail}`}`,
            );
          }
        }
      });
    }
  }
  return res;
}

interface Row {
  label: string;
  unit: string;
  aim: string;
  value: (r: DbResult) => string;
}

const costMedian = (r: DbResult, v: Variant, key: 'rate' | 'cpuMs'): number =>
  median(r.cost.filter((c) => c.variant === v).map((c) => c[key]));

const takeoverText = (r: DbResult, pick: (t: TakeoverResult) => number): string =>
  r.takeovers.length
    ? `${int(median(r.takeovers.map(pick)))} (${r.takeovers.map((t) => int(pick(t))).join(', ')})`
    : '—';

const lat =
  (which: 'cross' | 'same' | 'call', key: keyof Stats) =>
  (r: DbResult): string =>
    r.latency ? ms(r.latency[which][key]) : '—';

const checks = (list: Check[]): string =>
  !list.length ? '—' : list.every((c) => c.ok) ? `✓ ${list.length}/${list.length}` : '✗';

const ROWS: Row[] = [
  { label: 'cross-node push latency p50', unit: 'ms', aim: '< 10', value: lat('cross', 'p50') },
  { label: 'cross-node p95', unit: 'ms', aim: '', value: lat('cross', 'p95') },
  { label: 'cross-node p99', unit: 'ms', aim: '< 50', value: lat('cross', 'p99') },
  { label: 'cross-node max', unit: 'ms', aim: '', value: lat('cross', 'max') },
  { label: 'same-node push latency p50', unit: 'ms', aim: '', value: lat('same', 'p50') },
  { label: 'same-node p95', unit: 'ms', aim: '', value: lat('same', 'p95') },
  { label: 'same-node p99', unit: 'ms', aim: '', value: lat('same', 'p99') },
  { label: 'same-node max', unit: 'ms', aim: '', value: lat('same', 'max') },
  {
    label: 'addEvent round trip p50 (cross phase)',
    unit: 'ms',
    aim: '',
    value: lat('call', 'p50'),
  },
  {
    label: 'latency delivery check',
    unit: '',
    aim: '',
    value: (r) => (r.latency ? checks([r.latency.check]) : '—'),
  },
  {
    label: 'takeover after kill -9, standby receiver: median (each)',
    unit: 'ms',
    aim: '',
    value: (r) => takeoverText(r, (t) => t.pair.newEventMs),
  },
  {
    label: 'takeover after kill -9, receiver back through HAProxy: median (each)',
    unit: 'ms',
    aim: '',
    value: (r) => takeoverText(r, (t) => t.lb.newEventMs),
  },
  {
    label: 'events redelivered across a takeover (PAIR / LB, each kill)',
    unit: 'events',
    aim: '',
    value: (r) =>
      r.takeovers.length
        ? r.takeovers.map((t) => `${t.pair.redelivered}/${t.lb.redelivered}`).join(', ')
        : '—',
  },
  {
    label: 'takeover delivery checks',
    unit: '',
    aim: '',
    value: (r) => checks(r.takeovers.map((t) => t.check)),
  },
  {
    label: 'one node, --no-coordination: addEvent + push',
    unit: 'events/s',
    aim: '',
    value: (r) => int(costMedian(r, 'single', 'rate')),
  },
  {
    label: 'one node, coordinated: addEvent + push',
    unit: 'events/s',
    aim: '',
    value: (r) => int(costMedian(r, 'coordinated', 'rate')),
  },
  {
    label: 'coordinated ÷ --no-coordination',
    unit: '',
    aim: '≥ 0.90',
    value: (r) => {
      const x = costMedian(r, 'coordinated', 'rate') / costMedian(r, 'single', 'rate');
      return Number.isFinite(x) ? x.toFixed(2) : '—';
    },
  },
  {
    label: 'server CPU per event, --no-coordination / coordinated',
    unit: 'ms',
    aim: '',
    value: (r) =>
      r.cost.length
        ? `${costMedian(r, 'single', 'cpuMs').toFixed(3)} / ${costMedian(r, 'coordinated', 'cpuMs').toFixed(3)}`
        : '—',
  },
  {
    label: 'coordination-cost delivery checks',
    unit: '',
    aim: '',
    value: (r) => checks(r.cost.map((c) => c.check)),
  },
];

function table(results: DbResult[]): string {
  const header = ['figure', 'unit', ...results.map((r) => r.dialect), 'aim'];
  const rows = ROWS.map((row) => [row.label, row.unit, ...results.map(row.value), row.aim]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]!].length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  const numeric = (i: number): boolean => i >= 2 && i < header.length - 1;
  const rule = `|${widths.map((w, i) => (numeric(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function report(results: DbResult[], o: Options, command: string, started: Date): string {
  const m = describeMachine();
  const dbs = results.flatMap((r) => [
    ...(r.clusterDb ? [`  - ${r.dialect}, the cluster's own server: ${r.clusterDb}`] : []),
    ...(r.costDb ? [`  - ${r.dialect}, the shared server (coordination cost): ${r.costDb}`] : []),
  ]);
  const perRun = results.flatMap((r) => [
    ...r.takeovers.map(
      (t, k) =>
        `| ${r.dialect} | takeover ${k + 1} | kill -9 ${t.victim}: PAIR new event ${int(t.pair.newEventMs)} ms, resumed ${int(t.pair.resumedMs)} ms, now ${t.pair.owner}; ` +
        `LB new event ${int(t.lb.newEventMs)} ms, resumed ${int(t.lb.resumedMs)} ms, now ${t.lb.owner} | ${t.check.ok ? '✓' : `✗ ${t.check.detail}`} |`,
    ),
    ...r.cost.map(
      (c, k) =>
        `| ${r.dialect} | cost ${Math.floor(k / 2) + 1} ${c.variant} | ${int(c.rate)} events/s delivered, addEvent ${int(c.addRate)}/s, CPU ${c.cpuMs.toFixed(3)} ms/event | ${c.check.ok ? '✓' : `✗ ${c.check.detail}`} |`,
    ),
  ]);
  const errors = results.flatMap((r) => r.errors.map((e) => `- ${r.dialect}: ${e}`));
  return [
    `# Several nodes: push latency across nodes, takeover, coordination cost (${started.toISOString().slice(0, 10)})`,
    '',
    'Produced by [bench/cluster.ts](../cluster.ts); see [../README.md](../README.md).',
    '',
    '```sh',
    `npm run build && ${command}`,
    '```',
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores, shared with other work: timings are noisy; compare the`,
    '  figures of one run with each other (ratios), not across runs',
    `- memory ${m.memoryGiB} GiB; ${m.os}; Node ${m.node}`,
    `- load average (1, 5, 15 min) at the end: ${m.loadAverageAtStart.join(', ')}`,
    '- databases:',
    ...dbs,
    '',
    '## Settings',
    '',
    `- the cluster of test/cluster/cluster.ts: three \`evtstream serve\` nodes (dist/) behind HAProxy,`,
    `  each archiving (\`--dwh\`) and discarding every 2 s; PostgreSQL: event traffic through`,
    `  PgBouncer (transaction pool, \`max=8\` per node), coordination and LISTEN straight through`,
    '  HAProxy, a synchronous streaming standby (every commit waits for it), `fsync=off`; MariaDB:',
    '  one server of its own (`.ci/databases.sh` in a scratch folder) through HAProxy, `max=8`',
    `- the harness's short coordination timings: heartbeat ${HEARTBEAT_MS} ms, fence ${FENCE_MS} ms`,
    '  (defaults 1 s and 5 s); a taker waits fence + heartbeat before it pushes a consumer its',
    `  node did not let go cleanly, here ${FENCE_MS + HEARTBEAT_MS} ms (6 s with the defaults); nodes at`,
    `  \`--log-level ${o.nodeLog}\``,
    `- latency: one reliable receiver straight to node2; ${o.rate} events/s for ${o.seconds} s added through`,
    '  node1 (cross-node), then as many through node2 (same node), one caller over WebSocket, after',
    "  a second's worth not counted; latency from just before addEvent to the onEvents call arriving",
    `- takeover: ${o.takeovers} kills, each of a different node that pushes two new consumers while`,
    `  events are added at ${o.rate}/s through a third node; PAIR has a standby receiver on another`,
    '  node, LB connects again through HAProxy 200 ms after its connection drops; the figure is',
    '  from the kill to the first onEvents of an event added after the kill; the node is started',
    '  again before the next kill',
    `- coordination cost: one node (\`--log-level warn\`, pool \`max=16\`) on a fresh database of the`,
    '  shared server per run, default coordination (heartbeat 1 s) against `--no-coordination`;',
    `  a reliable receiver attached, then ${o.events.toLocaleString('en-US')} addEvent calls from ${o.callers} callers (WebSocket,`,
    `  each its own connection) after a tenth as many not timed; events/s from the first call to the last`,
    `  event pushed; ${o.runs} rounds, both variants in alternating order, medians; server CPU`,
    '  from /proc (all threads)',
    '',
    '## Results',
    '',
    table(results),
    '',
    '## Every takeover and run',
    '',
    '| db | what | figures | delivery |',
    '|----|------|---------|----------|',
    ...perRun,
    '',
    ...(errors.length ? ['## Errors', '', ...errors, ''] : []),
  ].join('\n');
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'postgresql,mysql' },
      parts: { type: 'string', default: PARTS.join(',') },
      rate: { type: 'string', default: '50' },
      seconds: { type: 'string', default: '10' },
      takeovers: { type: 'string', default: '3' },
      events: { type: 'string', default: '5000' },
      callers: { type: 'string', default: '8' },
      runs: { type: 'string', default: '3' },
      'node-log': { type: 'string', default: 'info' },
      save: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    say(HELP);
    return null;
  }
  const list = (s: string): string[] =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const dialects = list(values.db);
  for (const d of dialects) {
    if (d !== 'postgresql' && d !== 'mysql') throw new Error(`--db: ${d} is no cluster database`);
  }
  const parts = list(values.parts);
  for (const p of parts) if (!PARTS.includes(p as Part)) throw new Error(`--parts: unknown ${p}`);
  const positive = (name: string, text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const date = new Date().toISOString().slice(0, 10);
  return {
    dialects: dialects as ClusterDialect[],
    parts: new Set(parts as Part[]),
    rate: positive('rate', values.rate),
    seconds: positive('seconds', values.seconds),
    takeovers: positive('takeovers', values.takeovers),
    events: positive('events', values.events),
    callers: positive('callers', values.callers),
    runs: positive('runs', values.runs),
    nodeLog: values['node-log'],
    out:
      values.out ??
      (values.save ? path.join(ROOT, 'bench', 'results', `${date}-cluster.md`) : null),
  };
}

async function main(): Promise<number> {
  const o = parseOptions();
  if (!o) return 0;
  // The nodes and the single node run dist/: a stale one would be measured in src/'s place.
  requireFreshDist();
  const started = new Date();
  const command = ['npx tsx bench/cluster.ts', ...process.argv.slice(2)].join(' ');
  const results: DbResult[] = [];
  for (const dialect of o.dialects) {
    if (o.parts.has('cost') && !serverUrl(dialect)) say(`[${dialect}] ${unavailable(dialect)}`);
    results.push(await benchDb(dialect, o));
  }
  const text = report(results, o, command, started);
  say('');
  say(table(results));
  if (o.out) {
    fs.mkdirSync(path.dirname(o.out), { recursive: true });
    fs.writeFileSync(o.out, text);
    say(`\nwritten: ${path.relative(process.cwd(), o.out)}`);
  }
  const failed =
    results.some((r) => r.errors.length) ||
    results.some(
      (r) =>
        (r.latency && !r.latency.check.ok) ||
        r.takeovers.some((t) => !t.check.ok) ||
        r.cost.some((c) => !c.check.ok),
    );
  return failed ? 1 : 0;
}

process.once('SIGINT', () => {
  say('interrupted: stopping what this script started');
  void Promise.all([...stops].map((s) => s().catch(() => undefined))).then(() => process.exit(130));
});

main().then(
  // Exit rather than wait for the event loop: closed futoin-invoker clients may keep timers.
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await Promise.all([...stops].map((s) => s().catch(() => undefined)));
    process.exit(1);
  },
);
