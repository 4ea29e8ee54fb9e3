/**
 * Three `evtstream serve` processes over one database, with HAProxy and (PostgreSQL) PgBouncer
 * and a synchronous streaming standby, all of this test's own (cluster.ts). Writers go through
 * every node; consumer PAIR has two receivers, one straight to node1 and one to node2, both up
 * for the whole run; consumer LB has one receiver through HAProxy that connects again whenever
 * it is dropped. Faults, one after another: kill -9 of a node, SIGSTOP of a node for 10 s, the
 * coordination session ended from the database, a database restart and (PostgreSQL) the primary
 * killed and the standby promoted. After each: every written event delivered to each consumer,
 * each connection's events in ID order, no two connections of a consumer taking turns (two
 * pushers at once; but for the one call a stopped node was writing, see `resumed`), pointers
 * only forward, a redelivery only past the stored pointer, and a takeover within its bound.
 */
import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import type { AdvancedCCM } from 'futoin-invoker';
import { GenFace } from '../../src/common/faces/GenFace';
import { takeoverWaitMs } from '../../src/storage/coordination/options';
import { requireFreshDist } from '../support/cli';
import { connectRaw, type RawReceiver } from '../support/push';
import { clientCcm, steps } from '../support/service';
import { sleep, waitFor, waitForValue } from '../support/wait';
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
} from './cluster';

/** One onEvents call as a receiver got it: on which connection, when, what. */
interface Batch {
  conn: string;
  /** onEvents' seq: 0 at the start of each push session. */
  seq: number;
  at: number;
  ids: bigint[];
}

/**
 * What a consumer's receivers got, one line per run of calls over one connection: its seqs,
 * when (wall clock, as the nodes' logs say it), and the IDs. A failed check shows it.
 */
function history(all: readonly Batch[]): string {
  const runs: Batch[][] = [];
  for (const b of all) {
    const run = runs[runs.length - 1];
    if (run && run[0]!.conn === b.conn) run.push(b);
    else runs.push([b]);
  }
  const clock = (at: number): string =>
    new Date(performance.timeOrigin + at).toISOString().slice(11, 23);
  return runs
    .map((run) => {
      const first = run[0]!;
      const last = run[run.length - 1]!;
      const ids = run.flatMap((b) => b.ids);
      return `  ${first.conn}: seq ${first.seq}..${last.seq} at ${clock(first.at)}..${clock(last.at)}, IDs ${ids[0] ?? '-'}..${ids[ids.length - 1] ?? '-'}`;
    })
    .join('\n');
}

/**
 * A receiver that connects again (after a short pause) whenever its connection is dropped or
 * cannot be made, as a real one does. Each connection has a name of its own.
 */
class Receiver {
  private current: RawReceiver | null = null;
  private stopped = false;
  private connections = 0;
  private readonly loop: Promise<void>;

  constructor(
    readonly label: string,
    readonly component: string,
    private readonly endpoint: string,
    private readonly record: (b: Batch) => void,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const conn = `${this.label}#${++this.connections}`;
      try {
        const r = await connectRaw(
          this.endpoint,
          CLUSTER_CREDENTIALS,
          this.component,
          null,
          '1.1',
          (r) => {
            r.behaviour = (call) => {
              this.record({
                conn,
                seq: call.seq,
                at: performance.now(),
                ids: call.ids.map((id) => BigInt(id)),
              });
              return 'ok';
            };
          },
          RECEIVER_FACE_OPTIONS,
        );
        this.current = r;
        await r.until(() => r.disconnected || this.stopped, 3_600_000);
        r.close();
      } catch {
        // The node is down, or readyToReceive failed: try again.
      }
      this.current = null;
      if (!this.stopped) await sleep(200); // a receiver's pause before it connects again
    }
  }

  /** Connected now (pushed to, or waiting as a standby). */
  get connected(): boolean {
    return this.current !== null && !this.current.disconnected;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.close();
    await this.loop;
  }
}

/** How soon after a stopped node runs again the call it was writing arrives, at most. */
const RESUMED_CALL_MS = 2_000;

const PAIR = 'PAIR';
const LB = 'LB';
const ident = (component: string): string => `${CLUSTER_USER}:${component}`;

/** How long a consumer may go unserved after its node is lost: see README "High availability". */
const TAKEOVER_BOUND_MS =
  // the database ends a silent node's session (2 × fence), the taker waits past its fence...
  2 * FENCE_MS +
  takeoverWaitMs({ fenceMs: FENCE_MS, heartbeatMs: HEARTBEAT_MS }) +
  // ...and the receiver notices and connects again (HAProxy: 2 checks of 300 ms), with slack
  // for this loaded machine.
  5_000;

for (const dialect of ['postgresql', 'mysql'] as ClusterDialect[]) {
  describe(`a cluster of three nodes [${dialect}]`, function () {
    this.timeout(120_000);
    let cluster: Cluster;
    const receivers: Receiver[] = [];
    const batches = new Map<string, Batch[]>([
      [PAIR, []],
      [LB, []],
    ]);
    /** IDs the writers got back: committed. */
    const written: bigint[] = [];
    /** Every pointer read, per consumer, in reading order. */
    const pointers = new Map<string, { at: number; id: bigint }[]>([
      [PAIR, []],
      [LB, []],
    ]);
    /**
     * Where and when each stopped node ran again. A node stopped (SIGSTOP) in the moment between
     * its last check that it may push and the write of a call completes that call when it runs
     * again, before it notices it is fenced (README "Fencing"): its receiver gets it on the old
     * connection, in the old session (seq going on), just after the node resumed, after the new
     * owner's first calls. One such call per stop and consumer is not a second pusher.
     */
    const resumed: { node: string; at: number }[] = [];
    let sampling: Promise<void> | null = null;
    let sampled = false;
    let stopSampling = false;
    const gens = new Map<ClusterNode, AdvancedCCM>();
    let nextWriter = 0;

    before(async function () {
      this.timeout(300_000);
      const missing = missingPrograms(dialect);
      if (missing.length) {
        throw new Error(
          `The cluster tests need ${missing.join(', ')} (Debian packages; .ci/run installs them)`,
        );
      }
      requireFreshDist();
      cluster = await startCluster({ dialect });
      for (const node of cluster.nodes) {
        const ccm = clientCcm();
        await steps((as) =>
          GenFace.register(as, ccm, 'gen', node.url, CLUSTER_CREDENTIALS, { secureChannel: true }),
        );
        gens.set(node, ccm);
      }
      const [n1, n2] = cluster.nodes;
      // Node1's first: it pushes PAIR, node2's waits as a standby.
      receivers.push(new Receiver('node1', PAIR, n1!.wsUrl, (b) => batches.get(PAIR)!.push(b)));
      await waitFor('PAIR owned', async () => (await owner(PAIR)) !== null);
      receivers.push(new Receiver('node2', PAIR, n2!.wsUrl, (b) => batches.get(PAIR)!.push(b)));
      receivers.push(new Receiver('haproxy', LB, cluster.wsUrl, (b) => batches.get(LB)!.push(b)));
      await waitFor('LB owned', async () => (await owner(LB)) !== null);
      sampling = samplePointers();
    });

    after(async function () {
      this.timeout(120_000);
      stopSampling = true;
      await sampling;
      await Promise.all(receivers.splice(0).map((r) => r.stop()));
      for (const ccm of gens.values()) ccm.close();
      // EVT_CLUSTER_LOGS=DIR keeps the nodes' logs (debug level) for a look after a failure.
      const keep = process.env['EVT_CLUSTER_LOGS'];
      if (keep && cluster) {
        fs.mkdirSync(keep, { recursive: true });
        for (const n of cluster.nodes)
          fs.writeFileSync(path.join(keep, `${dialect}-${n.name}.log`), n.log);
      }
      await cluster?.stop();
    });

    /** Reads the pointers of both consumers until the end, through failures of the database. */
    async function samplePointers(): Promise<void> {
      while (!stopSampling) {
        try {
          const rows = await cluster.query(
            `SELECT ident, last_evt_id FROM evt_consumers WHERE ident IN ('${ident(PAIR)}', '${ident(LB)}')`,
          );
          const at = performance.now();
          for (const row of rows) {
            const component = String(row['ident']).split(':')[1]!;
            pointers.get(component)!.push({ at, id: BigInt(String(row['last_evt_id'])) });
          }
          sampled = true;
        } catch {
          // the database is down for a moment
        }
        await sleep(100);
      }
    }

    async function owner(component: string): Promise<string | null> {
      const rows = await cluster.query(
        `SELECT owner_node FROM evt_consumers WHERE ident = '${ident(component)}'`,
      );
      const node = rows[0]?.['owner_node'];
      return typeof node === 'string' ? node : null;
    }

    const nodeNamed = (name: string): ClusterNode => {
      const node = cluster.nodes.find((n) => n.name === name);
      if (!node) throw new Error(`no node ${name}`);
      return node;
    };

    /** Adds `n` events, each through the next node that takes it (a failed call: the next). */
    async function write(n: number, skip: ClusterNode[] = []): Promise<bigint[]> {
      const ids: bigint[] = [];
      const live = cluster.nodes.filter((node) => !skip.includes(node));
      for (let i = 0; i < n; i++) {
        for (let attempt = 0; ; attempt++) {
          const node = live[nextWriter++ % live.length]!;
          try {
            const id = await steps<string>((as) =>
              gens.get(node)!.iface<GenFace>('gen').addEvent(as, 'HA', { i, node: node.name }),
            );
            ids.push(BigInt(id));
            break;
          } catch (err) {
            if (attempt > 200) throw err;
            await sleep(100);
          }
        }
      }
      written.push(...ids);
      return ids;
    }

    const delivered = (component: string): Set<bigint> =>
      new Set(batches.get(component)!.flatMap((b) => b.ids));

    async function allDelivered(timeoutMs = 60_000): Promise<void> {
      for (const component of [PAIR, LB]) {
        await waitForValue(
          `every written event delivered to ${component}`,
          () => written.filter((id) => !delivered(component).has(id)).length,
          (missing) => missing === 0,
          timeoutMs,
        );
      }
    }

    /** The invariants over everything recorded so far; returns the connection switches of each consumer. */
    function check(): Map<string, number> {
      const switches = new Map<string, number>();
      for (const component of [PAIR, LB]) {
        const all = batches.get(component)!;
        const seenConns: string[] = [];
        const lastOfConn = new Map<string, bigint>();
        const seqOfConn = new Map<string, number>();
        const excused = new Set<(typeof resumed)[number]>();
        const seen = new Set<bigint>();
        let n = 0;
        for (const b of all) {
          const prev = seenConns[seenConns.length - 1];
          const oldSession = seqOfConn.has(b.conn) && b.seq > seqOfConn.get(b.conn)!;
          seqOfConn.set(b.conn, b.seq);
          const lastCall =
            prev !== b.conn && oldSession
              ? resumed.find(
                  (r) =>
                    !excused.has(r) &&
                    b.conn.startsWith(`${r.node}#`) &&
                    b.at >= r.at &&
                    b.at - r.at < RESUMED_CALL_MS,
                )
              : undefined;
          if (lastCall) {
            excused.add(lastCall);
            if (process.env['EVT_TEST_VERBOSE']) {
              console.log(
                `      ${component}: ${b.conn} completed call ${b.seq} ${Math.round(b.at - lastCall.at)} ms after it ran again`,
              );
            }
          } else if (prev !== b.conn) {
            // Two pushers at once would show as two connections taking turns.
            expect(
              seenConns,
              `${component}: ${b.conn} pushed again after another connection had pushed:\n${history(all)}\n`,
            ).not.to.include(b.conn);
            seenConns.push(b.conn);
            if (prev !== undefined) n++;
          }
          // Each connection's events in ID order.
          for (const id of b.ids) {
            const last = lastOfConn.get(b.conn) ?? -1n;
            expect(id > last, `${component}: ${b.conn} got ${id} after ${last}`).to.equal(true);
            lastOfConn.set(b.conn, id);
          }
          // A redelivery only of what the stored pointer had not passed when it was delivered.
          const stored = [...pointers.get(component)!].reverse().find((p) => p.at < b.at)?.id ?? 0n;
          for (const id of b.ids) {
            // The completed call may carry what the new owner has sent and stored since.
            if (seen.has(id) && !lastCall) {
              expect(
                id > stored,
                `${component}: ${id} delivered again, though the pointer had passed it (${stored})`,
              ).to.equal(true);
            }
            seen.add(id);
          }
        }
        switches.set(component, n);
        // Pointers only forward.
        const ps = pointers.get(component)!;
        for (let i = 1; i < ps.length; i++) {
          expect(
            ps[i]!.id >= ps[i - 1]!.id,
            `${component}: the pointer went back from ${ps[i - 1]!.id} to ${ps[i]!.id}`,
          ).to.equal(true);
        }
      }
      return switches;
    }

    /** Runs a fault while events are written, and checks everything after it. */
    async function around(
      what: string,
      fault: () => Promise<void>,
      opts: { skip?: ClusterNode[]; maxSwitches?: number } = {},
    ): Promise<{ switches: Map<string, number>; tookMs: number }> {
      const before = check();
      await write(10);
      const started = performance.now();
      await fault();
      const after = await write(10, opts.skip ?? []);
      const last = after[after.length - 1]!;
      // The time from the fault to the last event written after it reaching both consumers.
      await allDelivered();
      const tookMs = Math.max(
        ...[PAIR, LB].map((c) => batches.get(c)!.find((b) => b.ids.includes(last))!.at - started),
      );
      if (process.env['EVT_TEST_VERBOSE']) {
        console.log(
          `      ${what}: the events written after it delivered to both consumers ${Math.round(tookMs)} ms after the fault`,
        );
      }
      const switches = check();
      for (const [c, n] of switches) {
        expect(n - before.get(c)!, `${what}: handovers of ${c}`).to.be.at.most(
          opts.maxSwitches ?? 1,
        );
      }
      return { switches, tookMs };
    }

    it('delivers events written through every node to both consumers, one node pushing each', async () => {
      await write(30);
      await allDelivered();
      await waitFor('pointers read', () => sampled);
      const switches = check();
      expect(switches.get(PAIR), 'the standby never pushed').to.equal(0);
      expect(switches.get(LB)).to.equal(0);
      expect(await owner(PAIR)).to.equal('node1');
    });

    it('hands a consumer to another node when its node is killed with SIGKILL', async () => {
      const victim = nodeNamed((await owner(LB))!);
      const { tookMs } = await around('kill -9', async () => victim.kill9(), { skip: [victim] });
      expect(tookMs, 'takeover within its bound').to.be.below(TAKEOVER_BOUND_MS + 10_000);
      expect(await owner(LB)).not.to.equal(victim.name);
      await victim.start();
      // Its receivers back (standbys now), so that the next fault has one to hand over to.
      await waitFor(
        'every receiver connected again',
        () => receivers.every((r) => r.connected),
        60_000,
      );
    });

    it('hands a consumer over from a node stopped for 10 s, which fences itself when it runs again', async () => {
      const victim = nodeNamed((await owner(PAIR))!);
      const fenced = (): number => victim.log.split(`node ${victim.name} fenced`).length - 1;
      const fencesBefore = fenced();
      await around(
        'SIGSTOP',
        async () => {
          victim.signal('SIGSTOP');
          const paused = performance.now();
          try {
            // Written while it is stopped, delivered by the other node within the pause.
            const during = await write(10, [victim]);
            await allDelivered();
            const tookMs = performance.now() - paused;
            const lastId = during[during.length - 1]!;
            const each = [PAIR, LB].map(
              (c) =>
                `${c} ${Math.round(batches.get(c)!.find((b) => b.ids.includes(lastId))!.at - paused)} ms`,
            );
            if (process.env['EVT_TEST_VERBOSE']) console.log(`      SIGSTOP: ${each.join(', ')}`);
            if (process.env['EVT_TEST_VERBOSE']) {
              console.log(
                `      SIGSTOP: the events written during the pause delivered ${Math.round(tookMs)} ms after it began`,
              );
            }
            expect(tookMs, 'takeover within its bound').to.be.below(TAKEOVER_BOUND_MS + 10_000);
            await sleep(Math.max(0, 10_000 - (performance.now() - paused))); // the pause is the fault
          } finally {
            resumed.push({ node: victim.name, at: performance.now() });
            victim.signal('SIGCONT');
          }
        },
        { skip: [victim] },
      );
      await waitFor('the paused node fenced itself', () => fenced() > fencesBefore);
      await victim.ready();
      await waitFor(
        'every receiver connected again',
        () => receivers.every((r) => r.connected),
        60_000,
      );
    });

    it('fences a node whose coordination session the database ended; another takes its consumers', async () => {
      const victim = nodeNamed((await owner(PAIR))!);
      await around('pg_terminate_backend / KILL', () => cluster.terminateCoordination(victim));
      await victim.ready();
      await waitFor(
        'every receiver connected again',
        () => receivers.every((r) => r.connected),
        60_000,
      );
    });

    it('keeps delivering in order across a restart of the database', async () => {
      await around('database restart', () => cluster.restartDatabase());
      await Promise.all(cluster.nodes.map((n) => n.ready()));
    });

    if (dialect === 'postgresql') {
      it('loses nothing when the primary is killed and the synchronous standby promoted', async () => {
        await around('failover', () => cluster.failover!());
        await Promise.all(cluster.nodes.map((n) => n.ready()));
      });
    }
  });
}
