import os from 'os';
import { OptionChecks } from '../../common/options';

/** Defaults of a node's coordination with the other nodes over the database (CoordinationOptions). */
export const COORDINATION_DEFAULTS = Object.freeze({
  /** Take a database lock per consumer, so that one node at a time pushes it (false: alone). */
  enabled: true,
  /** How often the coordination connection is checked (and standbys try to take over). */
  heartbeat_ms: 1_000,
  /** A node that has not heard from the database for this long stops pushing at once. */
  fence_ms: 5_000,
  /** How long a receiver has to answer a ping when another receiver waits for its consumer. */
  probe_ms: 2_000,
});

/** Options of a node's coordination; COORDINATION_DEFAULTS has the defaults. */
export interface CoordinationOptions {
  enabled?: boolean;
  heartbeat_ms?: number;
  fence_ms?: number;
  probe_ms?: number;
  /**
   * This node's name, in logs, metrics and the consumer table's owner_node: unique among the
   * running nodes (a second node with a running node's name is refused). Default: the host name
   * and the process ID.
   */
  node?: string;
}

/** CoordinationOptions checked, with the defaults in. */
export interface CoordinationSettings {
  enabled: boolean;
  heartbeatMs: number;
  fenceMs: number;
  probeMs: number;
  /** As given; undefined: defaultNodeName() when the coordinator is made. */
  node: string | undefined;
}

/** Node names: what owner_node (128 characters) and a metric label hold. */
const NODE_RE = /^[A-Za-z0-9_.:@/-]{1,100}$/;

let defaultNames = 0;

/**
 * The host name and the process ID; a second coordinator in the same process (another store,
 * as in tests) gets a number after them, as node names must be unique among running nodes.
 */
export function defaultNodeName(): string {
  const n = ++defaultNames;
  return `${os.hostname().slice(0, 80)}-${process.pid}${n > 1 ? `-${n}` : ''}`;
}

/** Checks coordination options; throws on what cannot work. */
export function coordinationSettings(options: CoordinationOptions = {}): CoordinationSettings {
  const check = new OptionChecks('coordination');
  const d = COORDINATION_DEFAULTS;
  const settings: CoordinationSettings = {
    enabled: check.bool('enabled', options.enabled, d.enabled),
    heartbeatMs: check.ms('heartbeat_ms', options.heartbeat_ms, d.heartbeat_ms),
    fenceMs: check.ms('fence_ms', options.fence_ms, d.fence_ms),
    probeMs: check.ms('probe_ms', options.probe_ms, d.probe_ms),
    node: check.string(
      'node',
      options.node,
      'a node name (letters, digits and _ . : @ / -, at most 100)',
      (s) => NODE_RE.test(s),
    ),
  };
  // The fence must leave room for a few heartbeats, or one slow answer fences the node.
  if (settings.fenceMs < 2 * settings.heartbeatMs) {
    throw new RangeError(
      `coordination options fence_ms and heartbeat_ms must have fence_ms ≥ 2 × heartbeat_ms, got ${settings.fenceMs} and ${settings.heartbeatMs}`,
    );
  }
  return settings;
}

/**
 * How long a node that took a consumer over from another waits before it pushes: past the
 * moment the other one must have fenced itself (its last heartbeat was before its lock was
 * freed, and it stops fence_ms after that heartbeat), plus one heartbeat for clock rates and
 * timers.
 */
export const takeoverWaitMs = (s: Pick<CoordinationSettings, 'fenceMs' | 'heartbeatMs'>): number =>
  s.fenceMs + s.heartbeatMs;
