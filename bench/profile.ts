/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, as `npm run bench -- --cpu-prof DIR` writes
 * them): where a server's busy time went, by area (our code, each package, Node's own
 * JavaScript, garbage collection, native code) and by function (self time).
 *
 *   npx tsx bench/profile.ts DIR/*.cpuprofile [--top N]
 *
 * Profiles named <db>-<scenario>-<side>-<run>.cpuprofile are merged over runs: one section per
 * <db>-<scenario>-<side>. Start-up (loading modules, compiling the specs' schemas, migrations)
 * is left out: everything before the first sample taken inside a request handler of the
 * executor. Prints markdown.
 */
import fs from 'fs';
import path from 'path';
import { parseArgs } from 'util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Microseconds of self time per key. */
type Tally = Map<string, number>;

export interface Group {
  files: number;
  /** Start-up time left out. */
  startupUs: number;
  totalUs: number;
  idleUs: number;
  areas: Tally;
  functions: Tally;
}

const add = (t: Tally, key: string, us: number): void => {
  t.set(key, (t.get(key) ?? 0) + us);
};

/** Where a frame's code lives: "ours: dist/<dir>", a package, "node internals", or a V8 pseudo-frame. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'garbage collection';
    if (functionName === '(program)') return 'native (V8, libuv, addons)';
    if (functionName === '(idle)') return 'idle';
    return 'native (V8, libuv, addons)';
  }
  if (url.startsWith('node:')) return 'node internals';
  const file = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
  if (pkg) return pkg[1]!.startsWith('.cache') ? 'benchmark harness' : pkg[1]!;
  const dist = /\/dist\/([^/]+)\//.exec(file);
  if (dist) return `ours: ${dist[1]}`;
  return `other: ${path.basename(file)}`;
}

function frameName(frame: CallFrame): string {
  const where = frame.url
    ? `${frame.url.replace(/^.*\/(node_modules|dist)\//, '').replace(/^node:/, 'node:')}:${frame.lineNumber + 1}`
    : '';
  return `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

/** futoin-executor's entries for a request (also our executor's overrides of them). */
const REQUEST_ENTRY = /^(_?handle(WS|HTTP)Request(Common)?|_handleWSRequest)$/;

/**
 * Index of the first sample whose stack is inside a request handler: the end of start-up. 0 when
 * no sample is (a profile of something else than a server under load: nothing is left out).
 */
function firstRequestSample(profile: CpuProfile): number {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inRequest = new Map<number, boolean>();
  const isIn = (id: number): boolean => {
    let v = inRequest.get(id);
    if (v === undefined) {
      const up = parent.get(id);
      v =
        REQUEST_ENTRY.test(byId.get(id)?.callFrame.functionName ?? '') ||
        (up !== undefined && isIn(up));
      inRequest.set(id, v);
    }
    return v;
  };
  return Math.max(0, profile.samples.findIndex(isIn));
}

function addProfile(group: Group, profile: CpuProfile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  group.files++;
  const first = firstRequestSample(profile);
  for (let i = 0; i < first; i++) group.startupUs += Math.max(0, profile.timeDeltas[i] ?? 0);
  for (let i = first; i < profile.samples.length; i++) {
    const frame = byId.get(profile.samples[i]!);
    const us = profile.timeDeltas[i] ?? 0;
    if (!frame || us <= 0) continue;
    group.totalUs += us;
    const area = areaOf(frame);
    if (area === 'idle') {
      group.idleUs += us;
      continue;
    }
    add(group.areas, area, us);
    add(group.functions, frameName(frame), us);
  }
}

const pct = (part: number, whole: number): string =>
  whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-';

function top(t: Tally, n: number): [string, number][] {
  return [...t.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

export function report(name: string, g: Group, n: number): string {
  const busy = g.totalUs - g.idleUs;
  const lines = [
    `### ${name}`,
    '',
    `${g.files} profile(s): ${(g.totalUs / 1e6).toFixed(2)} s sampled after start-up ` +
      `(${(g.startupUs / 1e6).toFixed(2)} s of start-up left out), main thread busy ` +
      `${(busy / 1e6).toFixed(2)} s (${pct(busy, g.totalUs)}); shares below are of busy time.`,
    '',
    '| area | self time |',
    '|---|--:|',
    ...top(g.areas, n).map(([k, us]) => `| ${k} | ${pct(us, busy)} |`),
    '',
    '| function (self time) | share |',
    '|---|--:|',
    ...top(g.functions, n).map(
      ([k, us]) => `| \`${k.replace(/\|/g, '\\|')}\` | ${pct(us, busy)} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { top: { type: 'string', default: '12' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  const n = Number(values.top);
  if (values.help || positionals.length === 0 || !(n > 0)) {
    console.log('Usage: npx tsx bench/profile.ts FILE.cpuprofile... [--top N]');
    return values.help ? 0 : 2;
  }
  const groups = summarise(
    positionals.map((file) => ({
      file,
      profile: JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile,
    })),
  );
  for (const [name, g] of [...groups.entries()].sort()) console.log(report(name, g, n));
  return 0;
}

/** Profiles grouped by file name without the run number: <db>-<scenario>-<side>. */
export function summarise(profiles: { file: string; profile: CpuProfile }[]): Map<string, Group> {
  const groups = new Map<string, Group>();
  for (const { file, profile } of profiles) {
    const name = path.basename(file).replace(/(-\d+)?\.cpuprofile$/, '');
    let g = groups.get(name);
    if (!g) {
      g = {
        files: 0,
        startupUs: 0,
        totalUs: 0,
        idleUs: 0,
        areas: new Map(),
        functions: new Map(),
      };
      groups.set(name, g);
    }
    addProfile(g, profile);
  }
  return groups;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
