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
import type { PushHub } from '../delivery/push/hub';
import type { ConsumerCounts, StreamCounters } from '../storage/counters';
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
  reliable: { consumer: string; queued: number; inFlight: number }[];
  live: number;
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
  for (const def of gaugeDefs(lagLimit)) {
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

  const withProcess = options.processMetrics ?? true;
  let served: Registry | null = null;

  const read = async (): Promise<string> => {
    const [consumers, figures, pushHub, owners] = await Promise.all([
      admin.listConsumers(lagLimit),
      admin.tableRange(),
      hub(),
      store.consumerOwners(),
    ]);
    snapshot = {
      consumers,
      newestId: Number(figures.newest),
      activeEvents: figures.count,
      reliable: pushHub?.reliableSessions() ?? [],
      live: pushHub?.liveSessions ?? 0,
      standby: pushHub?.stats().standby ?? 0,
      owners,
      coordination: store.coordinator().stats(),
    };
    // prom-client runs every collect callback synchronously when rendering starts, so this
    // snapshot is what all the gauges show. Registry.merge registers the same metric objects in
    // a new registry: built once.
    served ??= withProcess ? Registry.merge([registry, processMetrics()]) : registry;
    return served.metrics();
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
