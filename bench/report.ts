/**
 * The benchmark's results: medians over runs, the comparison table (scenario | ours | reference |
 * ratio | target | ok | delivery), the machine it ran on, and the markdown/JSON files.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { Check } from './client';
import type { DbKind } from './db';
import { FANOUT_SIZES, LIVE_SIZES, TRICKLE_RATE } from './rates';
import type { Side } from './servers/process';

export type ScenarioKey =
  | 'add1'
  | 'add16ws'
  | 'add16http'
  | 'poll'
  | 'push'
  | 'latency'
  | 'noop'
  | 'raw'
  | 'memory'
  | 'trickle'
  | 'fanout'
  | 'live';

/** Where a figure came from: a server, or the database alone (raw insert rates). */
export type Source = Side | 'database';

/** One scenario run against one server (or the database alone). */
export interface RunRecord {
  db: DbKind;
  run: number;
  scenario: ScenarioKey;
  source: Source;
  metrics: Record<string, number>;
  check: Check;
  /** The server's peak RSS (VmHWM) in KiB at the end of the scenario. */
  peakRssKiB?: number | null;
  /** The last lines the server wrote to stderr, when it wrote any (warnings and errors). */
  stderr?: string;
  seconds: number;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  databases: Partial<Record<DbKind, string>>;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]
      ? `${cpus[0].model.trim()}${cpus[0].speed ? ` @ ${cpus[0].speed} MHz` : ''}`
      : 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    databases: {},
  };
}

function median(values: number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

/** Medians over runs and the checks, for one database. */
export class Summary {
  constructor(
    readonly db: DbKind,
    readonly records: RunRecord[],
  ) {}

  private of(scenario: ScenarioKey, source: Source): RunRecord[] {
    return this.records.filter((r) => r.scenario === scenario && r.source === source);
  }

  /** The median of one metric over the runs that produced it. */
  metric(scenario: ScenarioKey, source: Source, name: string): number | undefined {
    return median(
      this.of(scenario, source)
        .map((r) => r.metrics[name])
        .filter((v): v is number => v !== undefined),
    );
  }

  /** Median over runs of each server's highest VmHWM over the scenarios of that run, in MiB. */
  peakMiB(side: Side): number | undefined {
    const byRun = new Map<number, number>();
    for (const r of this.records) {
      if (r.source !== side || !r.peakRssKiB) continue;
      byRun.set(r.run, Math.max(byRun.get(r.run) ?? 0, r.peakRssKiB));
    }
    return median([...byRun.values()].map((k) => k / 1024));
  }

  /** "✓" when every run of the scenario delivered exactly what it should, else who failed. */
  delivery(scenario: ScenarioKey): string {
    const runs = this.records.filter((r) => r.scenario === scenario);
    if (!runs.length) return '';
    const failed = [...new Set(runs.filter((r) => !r.check.ok).map((r) => r.source))];
    const n = runs.length;
    return failed.length ? `✗ ${failed.join(', ')}` : `✓ ${n}/${n}`;
  }

  failures(): RunRecord[] {
    return this.records.filter((r) => !r.check.ok);
  }
}

type Fmt = (v: number) => string;
const int: Fmt = (v) => Math.round(v).toLocaleString('en-US');
const ms: Fmt = (v) => (Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1));
const mib: Fmt = (v) => v.toFixed(1);
const pct: Fmt = (v) => `${Math.round(v * 100)}%`;

interface RowDef {
  scenario: ScenarioKey;
  label: string;
  unit: string;
  fmt: Fmt;
  /** The figure of a source, if it has one. */
  get: (s: Summary, source: Source) => number | undefined;
  /** For rows measuring the database alone: its figure goes into the "ours" column. */
  databaseOnly?: boolean;
  /** Whether the target is met; undefined when that needs the reference's figure and there is none. */
  target?: { text: string; met: (ours: number, ref: number | undefined) => boolean | undefined };
  /** No delivery check of its own (a figure derived from other rows). */
  noCheck?: boolean;
  /** Another scenario the row needs. */
  needs?: ScenarioKey;
}

const m =
  (scenario: ScenarioKey, name: string) =>
  (s: Summary, source: Source): number | undefined =>
    s.metric(scenario, source, name);

const ratioAtLeast = (x: number) => (ours: number, ref: number | undefined) =>
  ref ? ours / ref >= x : undefined;

/**
 * A rate scenario's latency counts only at the pace it asks for: each addEvent waits for the one
 * before, so a server that cannot keep up slows the events down (and its latency looks better).
 */
const reached = {
  text: `ours ≥ ${Math.round(TRICKLE_RATE * 0.95)}/s`,
  met: (ours: number) => ours >= TRICKLE_RATE * 0.95,
};

/** A fan-out of `n` sessions (`what`): its latency p99, the events/s it reached, CPU per delivery. */
function sessionRows(scenario: 'fanout' | 'live', n: number, what: string): RowDef[] {
  return [
    {
      scenario,
      label: `fan-out to ${what}, latency p99`,
      unit: 'ms',
      fmt: ms,
      get: m(scenario, `n${n}_p99`),
      target: { text: 'ours < 50 ms', met: (ours) => ours < 50 },
    },
    {
      scenario,
      label: `fan-out to ${what}, events/s reached`,
      unit: 'events/s',
      fmt: int,
      get: m(scenario, `n${n}_events_per_s`),
      target: reached,
    },
    {
      scenario,
      label: `fan-out to ${what}, server CPU per delivery`,
      unit: 'ms',
      fmt: ms,
      get: m(scenario, `n${n}_cpu_ms`),
    },
  ];
}

export const ROWS: RowDef[] = [
  {
    scenario: 'add1',
    label: 'addEvent, 1 caller, WS',
    unit: 'events/s',
    fmt: int,
    get: m('add1', 'rate'),
    target: { text: '≥ 1.5×', met: ratioAtLeast(1.5) },
  },
  {
    scenario: 'add1',
    label: 'addEvent 1 caller ÷ no-op call rate',
    unit: '',
    fmt: pct,
    get: (s, src) => {
      const add = s.metric('add1', src, 'rate');
      const noop = s.metric('noop', src, 'rate1');
      return add !== undefined && noop ? add / noop : undefined;
    },
    target: { text: 'ours ≥ 80%', met: (ours) => ours >= 0.8 },
    noCheck: true,
    needs: 'noop',
  },
  {
    scenario: 'add16ws',
    label: 'addEvent, 16 callers, WS',
    unit: 'events/s',
    fmt: int,
    get: m('add16ws', 'rate'),
    target: { text: '≥ 3×', met: ratioAtLeast(3) },
  },
  {
    scenario: 'add16http',
    label: 'addEvent, 16 callers, HTTP',
    unit: 'events/s',
    fmt: int,
    get: m('add16http', 'rate'),
    target: { text: '≥ 3×', met: ratioAtLeast(3) },
  },
  {
    scenario: 'poll',
    label: 'poll drain (pollEvents loop)',
    unit: 'events/s',
    fmt: int,
    get: m('poll', 'rate'),
    target: { text: '≥ 3×', met: ratioAtLeast(3) },
  },
  {
    scenario: 'poll',
    label: 'poll drain, calls',
    unit: 'calls',
    fmt: int,
    get: m('poll', 'calls'),
  },
  {
    scenario: 'push',
    label: 'push catch-up (reliable receiver)',
    unit: 'events/s',
    fmt: int,
    get: m('push', 'rate'),
    target: { text: '≥ 3×', met: ratioAtLeast(3) },
  },
  {
    scenario: 'latency',
    label: 'push latency p50 (addEvent → onEvents)',
    unit: 'ms',
    fmt: ms,
    get: m('latency', 'p50'),
    target: { text: 'ours < 5 ms', met: (ours) => ours < 5 },
  },
  {
    scenario: 'latency',
    label: 'push latency p99',
    unit: 'ms',
    fmt: ms,
    get: m('latency', 'p99'),
    target: { text: 'ours < 20 ms', met: (ours) => ours < 20 },
  },
  {
    scenario: 'latency',
    label: 'push latency max',
    unit: 'ms',
    fmt: ms,
    get: m('latency', 'max'),
  },
  {
    scenario: 'noop',
    label: 'limit: no-op call (ping), 1 caller, WS',
    unit: 'calls/s',
    fmt: int,
    get: m('noop', 'rate1'),
  },
  {
    scenario: 'noop',
    label: 'limit: no-op call (ping), 16 callers, WS',
    unit: 'calls/s',
    fmt: int,
    get: m('noop', 'rate16'),
  },
  {
    scenario: 'noop',
    label: 'limit: no-op call (ping), 16 callers, HTTP',
    unit: 'calls/s',
    fmt: int,
    get: m('noop', 'rate16http'),
  },
  {
    scenario: 'raw',
    label: 'limit: database insert from Node, 1 row/transaction',
    unit: 'rows/s',
    fmt: int,
    get: m('raw', 'single'),
    databaseOnly: true,
  },
  {
    scenario: 'raw',
    label: 'limit: database insert from Node, 100 rows/transaction',
    unit: 'rows/s',
    fmt: int,
    get: m('raw', 'batched'),
    databaseOnly: true,
  },
  {
    scenario: 'trickle',
    label: `trickle ${TRICKLE_RATE}/s, ping alone (the RPC floor): server CPU per call`,
    unit: 'ms',
    fmt: ms,
    get: m('trickle', 'ping_cpu_ms'),
  },
  ...(['none', 'poll', 'push'] as const).map((phase): RowDef => ({
    scenario: 'trickle',
    label: `trickle ${TRICKLE_RATE}/s, ${phase === 'none' ? 'no' : `one ${phase}`} consumer: server CPU per event`,
    unit: 'ms',
    fmt: ms,
    get: m('trickle', `${phase}_cpu_ms`),
    target: { text: 'ours ≤ 0.3 ms', met: (ours) => ours <= 0.3 },
  })),
  {
    scenario: 'trickle',
    label: `trickle ${TRICKLE_RATE}/s, push latency p99`,
    unit: 'ms',
    fmt: ms,
    get: m('trickle', 'push_p99'),
  },
  ...FANOUT_SIZES.flatMap((n): RowDef[] => [
    ...sessionRows('fanout', n, `${n} reliable session${n === 1 ? '' : 's'}`),
    {
      scenario: 'fanout',
      label: `fan-out to ${n} reliable session${n === 1 ? '' : 's'}, pointer commits`,
      unit: 'commits/s',
      fmt: int,
      get: m('fanout', `n${n}_commits_per_s`),
    },
  ]),
  ...LIVE_SIZES.flatMap((n) => sessionRows('live', n, `${n} LIVE sessions`)),
  {
    scenario: 'memory',
    label: 'peak memory of the server process (VmHWM)',
    unit: 'MiB',
    fmt: mib,
    get: (s, src) => (src === 'database' ? undefined : s.peakMiB(src)),
    target: { text: '≤ 1×', met: (ours, ref) => (ref ? ours <= ref : undefined) },
    noCheck: true,
  },
];

/** The comparison table of one database, as aligned markdown. */
export function table(summary: Summary, scenarios: ReadonlySet<ScenarioKey>): string {
  const header = ['scenario', 'unit', 'ours', 'reference', 'ratio', 'target', 'ok', 'delivery'];
  const rows: string[][] = [];
  for (const def of ROWS) {
    if (!scenarios.has(def.scenario) || (def.needs && !scenarios.has(def.needs))) continue;
    const ours = def.get(summary, def.databaseOnly ? 'database' : 'ours');
    const ref = def.databaseOnly ? undefined : def.get(summary, 'reference');
    const show = (v: number | undefined): string => (v === undefined ? '—' : def.fmt(v));
    const ratio = ours !== undefined && ref ? `${(ours / ref).toFixed(2)}×` : '—';
    const met = def.target && ours !== undefined ? def.target.met(ours, ref) : undefined;
    const ok = !def.target ? '' : met === undefined ? '?' : met ? '✓' : '✗';
    rows.push([
      def.label,
      def.unit,
      show(ours),
      def.databaseOnly ? '(database)' : show(ref),
      ratio,
      def.target?.text ?? '',
      ok,
      def.noCheck ? '' : summary.delivery(def.scenario),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]!].length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i >= 2 && i <= 4 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export interface Settings {
  dbs: DbKind[];
  scenarios: ScenarioKey[];
  scale: number;
  runs: number;
  only: Side | null;
  sizes: Record<string, number>;
  poolSize: number;
}

function machineText(machine: Machine): string {
  const dbs = Object.entries(machine.databases)
    .map(([k, v]) => `  - ${k}: ${v}`)
    .join('\n');
  return [
    `- CPU: ${machine.cpu}, ${machine.cores} cores; memory ${machine.memoryGiB} GiB`,
    `- OS: ${machine.os}; Node ${machine.node}`,
    `- load average (1, 5, 15 min) at start: ${machine.loadAverageAtStart.join(', ')}` +
      (machine.loadAverageAtEnd ? `; at end: ${machine.loadAverageAtEnd.join(', ')}` : ''),
    `- databases:\n${dbs}`,
  ].join('\n');
}

function settingsText(s: Settings): string {
  const sizes = Object.entries(s.sizes)
    .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`)
    .join(', ');
  return [
    `- runs: ${s.runs} (figures are medians), scale ${s.scale}${s.only ? `, only ${s.only}` : ''}`,
    `- sizes: ${sizes}`,
    `- each server on a fresh database per scenario, in its own \`node\` process; ours:` +
      ` \`node bin/evtstream.js serve\` (SQLite \`?synchronous=normal\`, WAL; PostgreSQL/MySQL` +
      ` pool \`?max=${s.poolSize}\`); reference: futoin-eventstream 1.3.9 DBGenService +` +
      ` DBPushService on a futoin-executor NodeExecutor (prodMode, secureChannel), futoin-database` +
      ` AutoConfig (SQLite: one connection, PRAGMA journal_mode=WAL, synchronous=NORMAL;` +
      ` PostgreSQL/MySQL: DB_EVT_MAXCONN=${s.poolSize}), its default push settings`,
    `- one client (futoin-invoker AdvancedCCM, official specs, unlimited limit zone): gen 1.1,` +
      ` poll 1.0 (the reference serves polling only through push 1.1, which inherits poll 1.0),` +
      ` push 1.1 + receiver 1.1; every face on its own connection; ratio = ours ÷ reference`,
  ].join('\n');
}

function failuresText(summaries: Summary[]): string {
  const lines: string[] = [];
  for (const s of summaries) {
    for (const r of s.failures()) {
      lines.push(`- ${s.db} run ${r.run} ${r.scenario} ${r.source}: ${r.check.detail}`);
    }
  }
  return lines.join('\n');
}

function perRunText(summaries: Summary[]): string {
  const lines: string[] = [];
  for (const s of summaries) {
    for (const r of s.records) {
      const metrics = Object.entries(r.metrics)
        .map(
          ([k, v]) =>
            `${k}=${Number.isInteger(v) || Math.abs(v) >= 100 ? Math.round(v) : v.toFixed(2)}`,
        )
        .join(' ');
      const rss = r.peakRssKiB ? ` VmHWM=${(r.peakRssKiB / 1024).toFixed(1)}MiB` : '';
      lines.push(
        `| ${s.db} | ${r.run} | ${r.scenario} | ${r.source} | ${metrics}${rss} | ${r.check.ok ? '✓' : '✗'} | ${r.seconds.toFixed(1)} |`,
      );
    }
  }
  return [
    '| db | run | scenario | source | metrics | delivery | s |',
    '|----|----:|----------|--------|---------|----------|--:|',
    ...lines,
  ].join('\n');
}

/** The whole report, as markdown. */
export function markdown(
  machine: Machine,
  settings: Settings,
  summaries: Summary[],
  date: Date,
): string {
  const scenarios = new Set(settings.scenarios);
  const parts = [
    `# ftn18-eventstream benchmark, ${date.toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
    '## Machine',
    '',
    machineText(machine),
    '',
    '## Settings',
    '',
    settingsText(settings),
  ];
  for (const s of summaries) {
    parts.push('', `## ${s.db}`, '', table(s, scenarios));
  }
  const failures = failuresText(summaries);
  parts.push(
    '',
    '## Delivery checks',
    '',
    failures || 'Every run delivered exactly the expected events, in order.',
  );
  parts.push('', '## Every run', '', perRunText(summaries), '');
  return parts.join('\n');
}

/** Writes `file` (markdown) and the same name with .json (everything measured). */
export function writeResults(
  file: string,
  machine: Machine,
  settings: Settings,
  summaries: Summary[],
  date: Date,
): string[] {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, markdown(machine, settings, summaries, date));
  const json = file.replace(/\.md$/, '') + '.json';
  const data = {
    date: date.toISOString(),
    machine,
    settings,
    results: summaries.map((s) => ({
      db: s.db,
      rows: ROWS.filter(
        (d) =>
          settings.scenarios.includes(d.scenario) &&
          (!d.needs || settings.scenarios.includes(d.needs)),
      ).map((d) => ({
        scenario: d.scenario,
        label: d.label,
        unit: d.unit,
        ours: d.get(s, d.databaseOnly ? 'database' : 'ours') ?? null,
        reference: d.databaseOnly ? null : (d.get(s, 'reference') ?? null),
        target: d.target?.text ?? null,
      })),
      records: s.records,
    })),
  };
  fs.writeFileSync(json, `${JSON.stringify(data, null, 2)}\n`);
  return [file, json];
}
