/**
 * The registry behind /metrics (see metrics.ts): prom-client's counters and gauges for one app,
 * filled when scraped. Loaded on the first scrape only, so a service nobody scrapes neither
 * loads prom-client (about 10 MiB of memory) nor builds a registry.
 *
 * Nothing here runs on the event path. The services only bump plain numbers (StreamCounters);
 * this module reads them, asks the database for consumer lag and the newest event, and looks at
 * the push sessions, all when a scrape comes in.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { withTimeout } from '../common/async';
import { PACKAGE_VERSION } from '../common/build';
import type { PushHub } from '../delivery/push/hub';
import type {
  ArchiverCounters,
  ConsumerCounts,
  DiscarderCounters,
  StreamCounters,
} from '../storage/counters';
import type { Buckets, DeliveryLatency } from '../storage/latency';
import type { CoordinationStats } from '../storage/coordination/coordinator';
import type { ConsumerOwner } from '../storage/store';
import { AdminCore, type ConsumerInfo } from './admin';
import {
  METRICS_LAG_LIMIT,
  METRICS_TIMEOUT_MS,
  type MetricsOptions,
  type MetricsSource,
} from './metrics';

/** The metrics of one app: its registry, and a scrape that fills it and renders it. */
export interface StreamMetrics {
  /** Only this app's `evtstream_*` metrics (process metrics are added by `scrape`). */
  readonly registry: Registry;
  /**
   * Reads everything and renders the exposition text. Concurrent calls share one reading, so a
   * burst of scrapers costs the database one round of queries. Rejects when the store fails or
   * has not answered within the timeout.
   */
  scrape(): Promise<string>;
}

/** What a scrape reads from the database and the push engine, in one go. */
interface Snapshot {
  consumers: ConsumerInfo[];
  newestId: number;
  activeEvents: number;
  /** How old activeEvents is, seconds (see TableCounts). */
  activeEventsAgeS: number;
  reliable: { consumer: string; queued: number; inFlight: number }[];
  live: number;
  /** Per event table with a horizon: how long it is held back now, and stalls so far. */
  horizons: { table: string; heldSeconds: number; stalls: number }[];
  standby: number;
  /** Which node pushes which consumer, as the consumer table says (every node's view alike). */
  owners: ConsumerOwner[];
  coordination: CoordinationStats;
}

/**
 * Node's process metrics, one registry for the whole process: they describe the process, not an
 * app, and collectDefaultMetrics installs process-wide observers (GC, event loop delay) that are
 * never removed, so once per process rather than once per service started. Set up at the first
 * scrape: process_cpu_* then count from there, which rate() does not mind.
 */
let processRegistry: Registry | null = null;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** A total that StreamCounters keeps for the whole process. */
interface TotalDef {
  name: string;
  help: string;
  read: (c: StreamCounters) => number;
}

/** A total that StreamCounters keeps per consumer. */
interface PerConsumerDef {
  name: string;
  help: string;
  read: (c: ConsumerCounts) => number;
}

/** A gauge filled from a scrape's snapshot. */
interface GaugeDef {
  name: string;
  help: string;
  labels: readonly string[];
  fill: (set: (labels: Record<string, string>, value: number) => void, s: Snapshot) => void;
}

/** A total this node's coordinator keeps. */
interface CoordinationTotalDef {
  name: string;
  help: string;
  read: (c: CoordinationStats) => number;
}

const COORDINATION_TOTALS: readonly CoordinationTotalDef[] = [
  {
    name: 'evtstream_coordination_fences_total',
    help: 'Times this node fenced itself: it lost its coordination session or heard nothing from the database within the fence bound, and stopped pushing.',
    read: (c) => c.fences,
  },
  {
    name: 'evtstream_coordination_acquisitions_total',
    help: 'Locks this node took (consumers it began to push, maintenance tasks it took on).',
    read: (c) => c.acquisitions,
  },
];

const TOTALS: readonly TotalDef[] = [
  {
    name: 'evtstream_events_added_total',
    help: 'Events stored by addEvent (and group commit) in this process.',
    read: (c) => c.eventsAdded,
  },
  {
    name: 'evtstream_push_calls_total',
    help: 'onEvents calls to push receivers that succeeded.',
    read: (c) => c.pushCalls,
  },
  {
    name: 'evtstream_push_failures_total',
    help: 'onEvents calls to push receivers that failed or timed out, and attempts at an event larger than a receiver takes.',
    read: (c) => c.pushFailures,
  },
  {
    name: 'evtstream_live_events_dropped_total',
    help: 'Events dropped from LIVE consumers that fell too far behind, or larger than their receiver takes.',
    read: (c) => c.liveDropped,
  },
  {
    name: 'evtstream_pointer_commits_total',
    help: "Commits that stored consumers' pointers: one per acknowledging poll, one per group of push sessions' writes.",
    read: (c) => c.pointerCommits,
  },
  {
    name: 'evtstream_pointer_moves_total',
    help: 'Consumer pointer moves those commits stored (moves per commit: how well the writes were grouped).',
    read: (c) => c.pointerMoves,
  },
  {
    name: 'evtstream_queue_overflows_total',
    help: "Reliable push sessions' queues that overflowed (the session re-reads the store).",
    read: (c) => c.queueOverflows,
  },
];

const PER_CONSUMER: readonly PerConsumerDef[] = [
  {
    name: 'evtstream_events_delivered_total',
    help: 'Events delivered to a consumer by this process: polled, or pushed and acknowledged (all LIVE sessions as consumer "LIVE").',
    read: (c) => c.delivered,
  },
  {
    name: 'evtstream_polls_total',
    help: 'pollEvents calls answered, per consumer.',
    read: (c) => c.polls,
  },
  {
    name: 'evtstream_events_from_warehouse_total',
    help: "Events of a reliable consumer's backlog read from the warehouse, as the discarder had deleted them from the active table.",
    read: (c) => c.fromWarehouse,
  },
  {
    name: 'evtstream_consumer_behind_retention_total',
    help: 'Reads of a reliable consumer that began below the oldest event of the active table without a warehouse to replay from: events the discarder deleted were skipped.',
    read: (c) => c.behindRetention,
  },
  {
    name: 'evtstream_events_parked_total',
    help: 'Events parked for a push consumer by this process: its receiver failed on each max_attempts times.',
    read: (c) => c.parked,
  },
  {
    name: 'evtstream_events_replayed_total',
    help: 'Parked events delivered again to a push consumer by this process.',
    read: (c) => c.replayed,
  },
];

const perConsumer =
  (value: (c: ConsumerInfo) => number): GaugeDef['fill'] =>
  (set, s) => {
    for (const c of s.consumers) set({ consumer: c.ident }, value(c));
  };

const gaugeDefs = (lagLimit: number): GaugeDef[] => [
  {
    name: 'evtstream_newest_event_id',
    help: 'The highest event ID stored (a float: exact up to 2^53).',
    labels: [],
    fill: (set, s) => set({}, s.newestId),
  },
  {
    name: 'evtstream_active_events',
    help: 'Events in the active table (not discarded yet).',
    labels: [],
    fill: (set, s) => set({}, s.activeEvents),
  },
  {
    name: 'evtstream_active_events_age_seconds',
    help: 'How old evtstream_active_events is: 0 when counted for this scrape; a big table is counted in the background now and then.',
    labels: [],
    fill: (set, s) => set({}, s.activeEventsAgeS),
  },
  {
    name: 'evtstream_consumers',
    help: 'Registered consumers.',
    labels: [],
    fill: (set, s) => set({}, s.consumers.length),
  },
  {
    name: 'evtstream_consumer_lag_events',
    help: `Committed events after the consumer's pointer, counted up to ${lagLimit}.`,
    labels: ['consumer'],
    fill: perConsumer((c) => c.lag_events),
  },
  {
    name: 'evtstream_consumer_lag_capped',
    help: '1 when the lag in events reached the count limit (the consumer is further behind).',
    labels: ['consumer'],
    fill: perConsumer((c) => (c.lag_capped ? 1 : 0)),
  },
  {
    name: 'evtstream_consumer_lag_seconds',
    help: 'Age of the oldest event the consumer has not acknowledged, 0 when none.',
    labels: ['consumer'],
    fill: perConsumer((c) => c.lag_ms / 1000),
  },
  {
    name: 'evtstream_consumer_parked_events',
    help: 'Parked events of the consumer not resolved yet (parked, or to be replayed).',
    labels: ['consumer'],
    fill: perConsumer((c) => c.parked),
  },
  {
    name: 'evtstream_consumer_parking_suspended',
    help: 'Alert: 1 when the consumer parked too many events in a row (park_max_streak) and now waits on a failing event; its receiver may be failing on everything.',
    labels: ['consumer'],
    fill: perConsumer((c) => (c.parking_suspended ? 1 : 0)),
  },
  {
    name: 'evtstream_consumer_connected',
    help: '1 when the consumer has a push session here or polled within a minute (mode push or poll), else 0 (mode idle).',
    labels: ['consumer', 'mode'],
    fill: (set, s) => {
      for (const c of s.consumers) set({ consumer: c.ident, mode: c.mode }, c.connected ? 1 : 0);
    },
  },
  {
    name: 'evtstream_push_sessions',
    help: 'Push sessions open in this process, by kind (reliable or live).',
    labels: ['kind'],
    fill: (set, s) => {
      set({ kind: 'reliable' }, s.reliable.length);
      set({ kind: 'live' }, s.live);
    },
  },
  {
    name: 'evtstream_push_standby_sessions',
    help: 'Receivers waiting here for a reliable consumer that is pushed by another session (first wins).',
    labels: [],
    fill: (set, s) => set({}, s.standby),
  },
  {
    name: 'evtstream_consumer_owner',
    help: 'The node pushing a reliable consumer, as the consumer table records it (1 per consumer with an owner; the same on every node).',
    labels: ['consumer', 'node'],
    fill: (set, s) => {
      for (const o of s.owners) set({ consumer: o.ident, node: o.node }, 1);
    },
  },
  {
    name: 'evtstream_consumer_owner_epoch',
    help: "The consumer's owner epoch: it grows at each acquisition (a takeover, a new session).",
    labels: ['consumer'],
    fill: (set, s) => {
      for (const o of s.owners) set({ consumer: o.ident }, Number(o.epoch));
    },
  },
  {
    name: 'evtstream_node_info',
    help: "This node's name and whether it coordinates over the database ('database') or is alone ('local').",
    labels: ['node', 'coordination'],
    fill: (set, s) => set({ node: s.coordination.node, coordination: s.coordination.kind }, 1),
  },
  {
    name: 'evtstream_coordination_up',
    help: 'Whether this node may push: its coordination session is connected and the database answered within the fence bound.',
    labels: [],
    fill: (set, s) => set({}, s.coordination.up ? 1 : 0),
  },
  {
    name: 'evtstream_coordination_heartbeat_age_seconds',
    help: "Time since this node's last answered coordination heartbeat was sent.",
    labels: [],
    fill: (set, s) => set({}, Math.max(0, s.coordination.heartbeatAgeMs) / 1000),
  },
  {
    name: 'evtstream_coordination_locks',
    help: 'Locks this node holds now (consumers it pushes, maintenance tasks it runs).',
    labels: [],
    fill: (set, s) => set({}, s.coordination.held),
  },
  {
    name: 'evtstream_push_queued_events',
    help: "Events queued in memory for a reliable consumer's push session.",
    labels: ['consumer'],
    fill: (set, s) => {
      for (const r of s.reliable) set({ consumer: r.consumer }, r.queued);
    },
  },
  {
    name: 'evtstream_push_in_flight_batches',
    help: 'Batches pushed to a reliable consumer and not yet acknowledged and stored.',
    labels: ['consumer'],
    fill: (set, s) => {
      for (const r of s.reliable) set({ consumer: r.consumer }, r.inFlight);
    },
  },
];

const horizonDefs: GaugeDef[] = [
  {
    name: 'evtstream_horizon_held_seconds',
    help: "How long committed events have waited on open writer transactions (PostgreSQL, MySQL) before delivery, as this process's last probe saw it; 0 when nothing waits.",
    labels: ['table'],
    fill: (set, s) => {
      for (const h of s.horizons) set({ table: h.table }, h.heldSeconds);
    },
  },
];

/** A figure of the archiver or the discarder: a counter (a total) or a gauge. */
interface LifecycleDef<C> {
  name: string;
  help: string;
  kind: 'counter' | 'gauge';
  read: (c: C) => number;
}

const idValue = (id: string | null): number => (id === null ? 0 : Number(id));

const ARCHIVER_DEFS: readonly LifecycleDef<ArchiverCounters>[] = [
  {
    name: 'evtstream_archiver_events_total',
    help: 'Events the in-process archiver committed to the warehouse (a batch delivered again counts again).',
    kind: 'counter',
    read: (c) => c.events,
  },
  {
    name: 'evtstream_archiver_batches_total',
    help: 'Batches the archiver committed to the warehouse, one transaction each.',
    kind: 'counter',
    read: (c) => c.batches,
  },
  {
    name: 'evtstream_archiver_write_failures_total',
    help: 'Batches whose warehouse transaction failed (they are delivered again).',
    kind: 'counter',
    read: (c) => c.writeFailures,
  },
  {
    name: 'evtstream_archiver_errors_total',
    help: 'Connection and set-up errors of the archiver (the service, the warehouse at start), each retried.',
    kind: 'counter',
    read: (c) => c.workerErrors,
  },
  {
    name: 'evtstream_archiver_last_success_timestamp_seconds',
    help: 'When the archiver last committed a batch (Unix time); 0 before the first.',
    kind: 'gauge',
    read: (c) => c.lastSuccessMs / 1000,
  },
  {
    name: 'evtstream_archiver_last_event_id',
    help: 'The highest event ID archived (a float: exact up to 2^53); 0 before the first.',
    kind: 'gauge',
    read: (c) => idValue(c.lastId),
  },
  {
    name: 'evtstream_archiver_running',
    help: '1 while the archiver runs; 0 once stopped (also by itself, on a history table the warehouse does not have).',
    kind: 'gauge',
    read: (c) => (c.running ? 1 : 0),
  },
];

const DISCARDER_DEFS: readonly LifecycleDef<DiscarderCounters>[] = [
  {
    name: 'evtstream_discarder_events_total',
    help: 'Events the discarder deleted from the active table.',
    kind: 'counter',
    read: (c) => c.events,
  },
  {
    name: 'evtstream_discarder_passes_total',
    help: 'Discarder passes that ended without an error, whether they deleted anything or not.',
    kind: 'counter',
    read: (c) => c.passes,
  },
  {
    name: 'evtstream_discarder_failures_total',
    help: 'Discarder passes that failed (the next period tries again).',
    kind: 'counter',
    read: (c) => c.failures,
  },
  {
    name: 'evtstream_discarder_last_success_timestamp_seconds',
    help: 'When a discarder pass last ended without an error (Unix time); 0 before the first.',
    kind: 'gauge',
    read: (c) => c.lastSuccessMs / 1000,
  },
  {
    name: 'evtstream_discarder_last_event_id',
    help: 'The highest event ID deleted (a float: exact up to 2^53); 0 before the first.',
    kind: 'gauge',
    read: (c) => idValue(c.lastId),
  },
  {
    name: 'evtstream_discarder_stale_consumers',
    help: 'Consumers the last pass ignored as stale (stale_consumer_ms), holding nothing back.',
    kind: 'gauge',
    read: (c) => c.staleConsumers,
  },
];

/** Registers the figures of an archiver or a discarder, read from its counters at each scrape. */
function registerLifecycle<C>(
  registry: Registry,
  defs: readonly LifecycleDef<C>[],
  counters: C,
): void {
  for (const def of defs) {
    const collect = (m: Counter | Gauge): void => {
      m.reset();
      const v = def.read(counters);
      if (m instanceof Counter) m.inc(v);
      else m.set(v);
    };
    const config = { name: def.name, help: def.help, registers: [registry] };
    if (def.kind === 'counter') {
      new Counter({
        ...config,
        collect(this: Counter) {
          collect(this);
        },
      });
    } else {
      new Gauge({
        ...config,
        collect(this: Gauge) {
          collect(this);
        },
      });
    }
  }
}

/** A histogram family in the text format, from plain bucket counts per consumer. */
interface HistogramDef {
  name: string;
  help: string;
  read: (l: DeliveryLatency) => Map<string, Buckets>;
}

const HISTOGRAMS: readonly HistogramDef[] = [
  {
    name: 'evtstream_delivery_latency_seconds',
    help: 'From the commit of an event (addEvent in this process) to its acknowledgement here, on the monotonic clock; commit times are sampled, one per 10 ms. Since the first scrape.',
    read: (l) => l.latency,
  },
  {
    name: 'evtstream_delivery_age_seconds',
    help: "From an event's ts (whole seconds, the database's clock) to its acknowledgement here: every event acknowledged, from any process. Since the first scrape.",
    read: (l) => l.age,
  },
];

const escapeLabel = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * Renders a histogram as the text format has it (cumulative `_bucket` series with `le`, then
 * `_sum` and `_count`). prom-client's Histogram only takes one observation at a time; the
 * event path keeps counts of its own (storage/latency.ts), so they are rendered here.
 */
function renderHistogram(def: HistogramDef, series: Map<string, Buckets>): string {
  const lines = [`# HELP ${def.name} ${def.help}`, `# TYPE ${def.name} histogram`];
  for (const consumer of [...series.keys()].sort()) {
    const b = series.get(consumer)!;
    const c = `consumer="${escapeLabel(consumer)}"`;
    let cumulative = 0;
    b.bounds.forEach((bound, i) => {
      cumulative += b.counts[i] ?? 0;
      lines.push(`${def.name}_bucket{${c},le="${bound}"} ${cumulative}`);
    });
    lines.push(`${def.name}_bucket{${c},le="+Inf"} ${b.count}`);
    lines.push(`${def.name}_sum{${c}} ${b.sum}`);
    lines.push(`${def.name}_count{${c}} ${b.count}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Builds the app's metrics on a registry of their own (never prom-client's global one, so two
 * services in one process, as in the tests, do not clash). Needs the app's active store.
 *
 * Totals are prom-client counters read from StreamCounters in their collect callbacks: each
 * scrape resets them and adds the current total, which only grows (until the process restarts,
 * which Prometheus takes as a counter reset). Gauges come from one snapshot per scrape (lag from
 * AdminCore.listConsumers, the newest ID and table size in one query, the push sessions).
 */
export function createMetrics(app: MetricsSource, options: MetricsOptions = {}): StreamMetrics {
  const store = app.store;
  if (!store) throw new Error('Metrics need the app to have opened the active store');
  const lagLimit = options.lagLimit ?? METRICS_LAG_LIMIT;
  const timeoutMs = options.timeoutMs ?? METRICS_TIMEOUT_MS;
  const hub = async (): Promise<PushHub | null> => (app.push ? app.push.hub() : null);
  // The app's AdminCore when it serves ftn18es.admin; else one of our own on the same store.
  const admin = app.admin ?? new AdminCore(store, { hub });
  const counters = store.counters;
  const registry = new Registry();
  let snapshot: Snapshot | null = null;

  for (const def of TOTALS) {
    new Counter({
      name: def.name,
      help: def.help,
      registers: [registry],
      collect(this: Counter) {
        this.reset();
        this.inc(def.read(counters));
      },
    });
  }
  for (const def of COORDINATION_TOTALS) {
    new Counter({
      name: def.name,
      help: def.help,
      registers: [registry],
      collect(this: Counter) {
        this.reset();
        if (snapshot) this.inc(def.read(snapshot.coordination));
      },
    });
  }
  for (const def of PER_CONSUMER) {
    new Counter<'consumer'>({
      name: def.name,
      help: def.help,
      labelNames: ['consumer'],
      registers: [registry],
      collect(this: Counter<'consumer'>) {
        this.reset();
        for (const [consumer, c] of counters.consumers) this.inc({ consumer }, def.read(c));
      },
    });
  }
  for (const def of [...gaugeDefs(lagLimit), ...horizonDefs]) {
    new Gauge({
      name: def.name,
      help: def.help,
      labelNames: def.labels,
      registers: [registry],
      collect(this: Gauge) {
        this.reset();
        if (snapshot) def.fill((labels, value) => this.set(labels, value), snapshot);
      },
    });
  }

  const auth = options.auth;
  if (auth) {
    new Counter<'reason'>({
      name: 'evtstream_auth_failures_total',
      help: 'Authentications refused: wrong or unknown credentials (reason "invalid"), or from an address over the limit of failures (reason "limited", DefenseRejected).',
      labelNames: ['reason'],
      registers: [registry],
      collect(this: Counter<'reason'>) {
        this.reset();
        this.inc({ reason: 'invalid' }, auth.counts.invalid);
        this.inc({ reason: 'limited' }, auth.counts.limited);
      },
    });
  }
  new Counter<'table'>({
    name: 'evtstream_horizon_stalls_total',
    help: "Times delivery was held back by open writer transactions longer than the store's stall_warn_ms (each logged as a warning).",
    labelNames: ['table'],
    registers: [registry],
    collect(this: Counter<'table'>) {
      this.reset();
      for (const h of snapshot?.horizons ?? []) this.inc({ table: h.table }, h.stalls);
    },
  });
  const build = new Gauge<'version' | 'node_version' | 'database'>({
    name: 'evtstream_build_info',
    help: 'Always 1; the labels say what runs: our version, Node.js, the kind of the active database.',
    labelNames: ['version', 'node_version', 'database'],
    registers: [registry],
  });
  build.set(
    { version: PACKAGE_VERSION, node_version: process.version, database: store.dialect.name },
    1,
  );
  if (app.archiver) registerLifecycle(registry, ARCHIVER_DEFS, app.archiver.counters);
  if (app.discarder) registerLifecycle(registry, DISCARDER_DEFS, app.discarder.counters);
  // Measured from now on: what nobody scrapes costs the event path nothing.
  const latency = counters.trackLatency();

  const withProcess = options.processMetrics ?? true;
  let served: Registry | null = null;

  const read = async (): Promise<string> => {
    // listConsumers probes the horizon of the store's table; the others are probed here, so
    // that how long each is held back is as of now.
    const others = store.horizonTables().filter((t) => t !== store.eventTable);
    const [consumers, figures, pushHub, owners] = await Promise.all([
      admin.listConsumers(lagLimit),
      admin.tableRange(),
      hub(),
      store.consumerOwners(),
      ...others.map((t) => store.horizon(t)),
    ]);
    const now = Date.now();
    snapshot = {
      consumers,
      newestId: Number(figures.newest),
      activeEvents: figures.count,
      activeEventsAgeS: figures.countAgeMs / 1000,
      reliable: pushHub?.reliableSessions() ?? [],
      live: pushHub?.liveSessions ?? 0,
      horizons: [store.eventTable, ...others].map((table) => {
        const h = store.horizonOf(table);
        return { table, heldSeconds: h.heldForMs(now) / 1000, stalls: h.stalls };
      }),
      standby: pushHub?.stats().standby ?? 0,
      owners,
      coordination: store.coordinator().stats(),
    };
    // prom-client runs every collect callback synchronously when rendering starts, so this
    // snapshot is what all the gauges show. Registry.merge registers the same metric objects in
    // a new registry: built once.
    served ??= withProcess ? Registry.merge([registry, processMetrics()]) : registry;
    const text = await served.metrics();
    return text + HISTOGRAMS.map((def) => `\n${renderHistogram(def, def.read(latency))}`).join('');
  };

  let running: { p: Promise<string>; since: number } | null = null;
  return {
    registry,
    scrape(): Promise<string> {
      // Concurrent scrapes share one reading; one stuck past the timeout is left behind, so a
      // database that comes back is read again.
      if (!running || Date.now() - running.since > timeoutMs) {
        const job = { p: read(), since: Date.now() };
        running = job;
        void job.p
          .finally(() => {
            if (running === job) running = null;
          })
          .catch(() => undefined);
      }
      return withTimeout(running.p, timeoutMs);
    },
  };
}
