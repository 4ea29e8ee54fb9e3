/**
 * What logging costs the event path, text against JSON lines, at info and at debug level.
 *
 * At info the event path writes no log line (sessions starting and ending, failures and
 * warnings do); at debug every push batch delivered is a line with its consumer, session, seq
 * and event ID, so with a receiver attached and events added one at a time it is about one line
 * per event. Variants, each `evtstream serve` in its own process on a fresh database, stderr
 * read by this process (as a log shipper reads a pipe):
 *
 *   text/info (the default), json/info, text/debug, json/debug
 *
 * Per run, each on a fresh database and server: addEvent from 16 WebSocket callers (no receiver);
 * a reliable receiver attached while one caller adds events one after another (each pushed on
 * its own: the per-event worst case of debug logs); a push catch-up of stored events. Figures: the server's CPU time per
 * event (from /proc, steadier than throughput on a shared machine), events per second, and log
 * bytes per event. Rounds rotate the order of the variants; the table shows medians and ratios
 * to text/info. First, in this process, what one line costs the logger alone: a push batch's
 * debug line formatted and written to /dev/null, N times per format, and the same call at a
 * level that drops it (what every debug call costs a service logging at info).
 *
 *   npx tsx bench/log-cost.ts [--db sqlite|postgresql|mysql] [--rounds 3] [--add 8000]
 *                             [--live 2000] [--push 40000] [--lines 200000]
 *
 * `--rounds 0` measures the logger alone (no servers, no database).
 */
import fs from 'fs';
import path from 'path';
import { parseArgs } from 'util';
import { consoleLogger, type LogFormat, type LogLevel } from '../src/common/log';
import { addEvents, BenchClient, CREDENTIALS, pushCatchUp, pushLatency } from './client';
import { FreshDb, isDbKind, unavailable, type DbKind } from './db';
import { ensureBuilt } from './servers/ours';
import { childEnv, ServerProcess } from './servers/process';

const ROOT = path.resolve(__dirname, '..');
const VARIANTS = ['text/info', 'json/info', 'text/debug', 'json/debug'] as const;
type Variant = (typeof VARIANTS)[number];
const CALLERS = 16;

interface Phase {
  /** Events per second. */
  rate: number;
  /** Server CPU per event, microseconds. */
  cpu: number;
  /** Log bytes per event. */
  logBytes: number;
}
type RunResult = Record<'add' | 'live' | 'push', Phase>;

type PhaseName = keyof RunResult;
const PHASES: readonly PhaseName[] = ['add', 'live', 'push'];

/** One phase of a variant on a fresh database and server (each phase reads its own events). */
async function runPhase(
  kind: DbKind,
  variant: Variant,
  name: PhaseName,
  count: number,
): Promise<Phase> {
  const [format, level] = variant.split('/') as [string, string];
  const db = await FreshDb.create(kind);
  let server: ServerProcess | null = null;
  let client: BenchClient | null = null;
  try {
    server = await ServerProcess.start(
      'ours',
      [
        path.join(ROOT, 'bin', 'evtstream.js'),
        'serve',
        '--port',
        '0',
        '--db',
        db.ourUrl,
        '--log-format',
        format,
        '--log-level',
        level,
      ],
      childEnv({ EVTSTREAM_USERS: CREDENTIALS }),
    );
    const c = new BenchClient(server);
    client = c;
    const work = {
      add: () => addEvents(c, db, count, CALLERS, 'ws'),
      live: () => pushLatency(c, count, 0),
      push: () => pushCatchUp(c, db, count),
    }[name];
    const c0 = server.cpuSeconds();
    const b0 = server.stderrBytes;
    const t0 = performance.now();
    const out = await work();
    const seconds = (performance.now() - t0) / 1000;
    if (!out.check.ok) throw new Error(`${name}: check failed: ${out.check.detail}`);
    return {
      rate: out.metrics['rate'] ?? count / seconds,
      cpu: ((server.cpuSeconds() - c0) / count) * 1e6,
      logBytes: (server.stderrBytes - b0) / count,
    };
  } finally {
    client?.close();
    await server?.stop();
    await db.drop();
  }
}

async function runOnce(
  kind: DbKind,
  variant: Variant,
  counts: Record<PhaseName, number>,
): Promise<RunResult> {
  const result: Partial<RunResult> = {};
  for (const name of PHASES) result[name] = await runPhase(kind, variant, name, counts[name]);
  return result as RunResult;
}

/** Nanoseconds of CPU per call of `log.debug('Push: delivered', fields)`, over `n` calls. */
function lineCost(format: LogFormat, level: LogLevel, n: number): number {
  const fd = fs.openSync('/dev/null', 'w');
  try {
    const log = consoleLogger(level, 'evtstream', format, (line) => fs.writeSync(fd, line));
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      log.debug('Push: delivered', {
        consumer: 'alice:ORDERS',
        session: 'r12',
        seq: i,
        event_id: String(1_000_000 + i),
        events: 100,
      });
    }
    const used = process.cpuUsage(t0);
    return ((used.user + used.system) * 1000) / n;
  } finally {
    fs.closeSync(fd);
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite' },
      rounds: { type: 'string', default: '3' },
      add: { type: 'string', default: '8000' },
      live: { type: 'string', default: '2000' },
      push: { type: 'string', default: '40000' },
      lines: { type: 'string', default: '200000' },
    },
  });
  const lines = Number(values.lines);
  if (!Number.isInteger(lines) || lines < 1)
    throw new Error(`--lines: 1 or more, not ${values.lines}`);
  const costs = (['text', 'json'] as const).map((format) => {
    lineCost(format, 'debug', Math.min(lines, 20_000)); // warm-up
    const runs = [1, 2, 3].map(() => ({
      written: lineCost(format, 'debug', lines),
      dropped: lineCost(format, 'info', lines),
    }));
    return {
      format,
      written: median(runs.map((r) => r.written)),
      dropped: median(runs.map((r) => r.dropped)),
    };
  });
  console.log(`\nOne debug line of a push batch, ${lines} calls, median of 3 (CPU ns per call):\n`);
  console.log('| format | written (to /dev/null) | dropped (level info) |');
  console.log('|---|---:|---:|');
  for (const c of costs)
    console.log(`| ${c.format} | ${Math.round(c.written)} | ${Math.round(c.dropped)} |`);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 0)
    throw new Error(`--rounds: 0 or more, not ${values.rounds}`);
  if (rounds === 0) return;
  const kind = values.db;
  if (!isDbKind(kind)) throw new Error(`--db: sqlite, postgresql or mysql, not ${kind}`);
  const why = unavailable(kind);
  if (why) throw new Error(why);
  ensureBuilt((line) => console.error(line));
  const counts = { add: Number(values.add), live: Number(values.live), push: Number(values.push) };
  const results = new Map<Variant, RunResult[]>(VARIANTS.map((v) => [v, []]));
  const t0 = Date.now();
  // Not counted: the first server start pays for cold caches.
  await runOnce(kind, 'text/info', { add: 1000, live: 200, push: 2000 });
  for (let r = 0; r < rounds; r++) {
    const order = VARIANTS.map((_v, i) => VARIANTS[(i + r) % VARIANTS.length]!);
    for (const variant of order) {
      const res = await runOnce(kind, variant, counts);
      results.get(variant)!.push(res);
      console.error(
        `round ${r + 1} ${variant}: ` +
          (['add', 'live', 'push'] as const)
            .map(
              (p) =>
                `${p} ${res[p].cpu.toFixed(1)} µs CPU/event, ${res[p].logBytes.toFixed(1)} B log/event`,
            )
            .join('; '),
      );
    }
  }
  const med = (v: Variant, f: (x: RunResult) => number): number => median(results.get(v)!.map(f));
  const cols: { head: string; f: (x: RunResult) => number; digits: number; ratio: boolean }[] = [
    { head: 'addEvent ×16: CPU µs/event', f: (x) => x.add.cpu, digits: 1, ratio: true },
    { head: 'add + push 1 by 1: CPU µs/event', f: (x) => x.live.cpu, digits: 1, ratio: true },
    { head: '… log B/event', f: (x) => x.live.logBytes, digits: 0, ratio: false },
    { head: 'push catch-up: CPU µs/event', f: (x) => x.push.cpu, digits: 2, ratio: true },
    { head: '… events/s', f: (x) => x.push.rate, digits: 0, ratio: true },
    { head: '… log B/event', f: (x) => x.push.logBytes, digits: 2, ratio: false },
  ];
  console.log(
    `\n${kind}, ${rounds} rounds; addEvent: ${counts.add} events by ${CALLERS} WebSocket callers; ` +
      `add + push 1 by 1: ${counts.live} events added one after another to a reliable receiver; ` +
      `push catch-up: a receiver reading ${counts.push} stored events; ` +
      `medians, ratio to text/info in brackets (${Math.round((Date.now() - t0) / 1000)} s)\n`,
  );
  console.log(`| variant | ${cols.map((c) => c.head).join(' | ')} |`);
  console.log(`|---|${cols.map(() => '---:').join('|')}|`);
  for (const v of VARIANTS) {
    const cells = cols.map((c) => {
      const x = med(v, c.f);
      const n = c.digits ? x.toFixed(c.digits) : Math.round(x).toLocaleString('en-US');
      return c.ratio ? `${n} (${(x / med('text/info', c.f)).toFixed(2)})` : n;
    });
    console.log(`| ${v} | ${cells.join(' | ')} |`);
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
