/**
 * Wire-level benchmark: our service against the reference (futoin-eventstream 1.3.9), each in
 * its own process on a fresh database of the same kind, driven by the same futoin-invoker
 * client. `npm run bench -- --help` lists the options; bench/README.md explains the scenarios.
 */
import os from 'os';
import path from 'path';
import { parseArgs } from 'util';
import {
  addEvents,
  BenchClient,
  noop,
  pointerCounters,
  pollDrain,
  pushCatchUp,
  pushLatency,
  type Outcome,
} from './client';
import { DB_KINDS, FreshDb, isDbKind, POOL_SIZE, rawInsert, unavailable, type DbKind } from './db';
import {
  describeMachine,
  table,
  Summary,
  writeResults,
  type RunRecord,
  type ScenarioKey,
  type Settings,
} from './report';
import { fanout, FANOUT_SIZES, LIVE_SIZES, trickle } from './rates';
import { startServer } from './servers/launch';
import { ensureBuilt } from './servers/ours';
import type { ServerProcess, Side } from './servers/process';

const ALL_SCENARIOS: readonly ScenarioKey[] = [
  'add1',
  'add16ws',
  'add16http',
  'poll',
  'push',
  'latency',
  'noop',
  'raw',
  'memory',
  'trickle',
  'fanout',
  'live',
];
const SIDES: readonly Side[] = ['ours', 'reference'];
/** A scenario run that takes longer than this fails. */
const SCENARIO_TIMEOUT_MS = 15 * 60_000;

const HELP = `Usage: npm run bench -- [options]

Starts our service (node bin/evtstream.js serve) and the reference (futoin-eventstream 1.3.9
DBGenService + DBPushService on a NodeExecutor), each in its own process on a fresh database
per scenario, drives both with the same futoin-invoker client and prints a comparison table.

Options:
  --db KINDS         sqlite, postgresql, mysql or a comma list (default sqlite). PostgreSQL
                     and MySQL need EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL (or EVT_BENCH_*):
                     eval "$(.ci/databases.sh start)" starts throw-away servers
  --scenarios LIST   comma list of ${ALL_SCENARIOS.join(',')}
                     (default: all)
  --scale X          multiplies the event counts (default 1; 0.1 for a quick run)
  --runs N           runs of each scenario; figures are medians (default 3)
  --only SIDE        ours or reference: run one side only (debugging)
  --out FILE         write the report as markdown to FILE and as JSON beside it
  --save             write them to bench/results/<date>-<db>.md (and .json)
  --cpu-prof DIR     run each server under node --cpu-prof, one profile per run in DIR
                     (<db>-<scenario>-<side>-<run>.cpuprofile); summarise them with
                     npx tsx bench/profile.ts DIR/*.cpuprofile. Profiling slows the
                     servers down: don't compare its figures with unprofiled ones
  -h, --help         show this help

Exit code: 0 when every run delivered exactly the expected events in order (targets missed
are reported, not failed), 1 when any run failed, 2 on a command-line mistake.
`;

class UsageError extends Error {}

interface Options {
  settings: Settings;
  out: string | null;
  /** Where each server writes its CPU profile, or null. */
  cpuProfDir: string | null;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      db: { type: 'string', default: 'sqlite' },
      scenarios: { type: 'string' },
      scale: { type: 'string', default: '1' },
      runs: { type: 'string', default: '3' },
      only: { type: 'string' },
      out: { type: 'string' },
      save: { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;

  const dbs = values.db.split(',').map((s) => s.trim());
  for (const d of dbs) {
    if (!isDbKind(d)) throw new UsageError(`--db: ${d} is not one of ${DB_KINDS.join(', ')}`);
  }
  const scenarios = values.scenarios
    ? values.scenarios.split(',').map((s) => s.trim())
    : [...ALL_SCENARIOS];
  for (const s of scenarios) {
    if (!(ALL_SCENARIOS as readonly string[]).includes(s)) {
      throw new UsageError(`--scenarios: ${s} is not one of ${ALL_SCENARIOS.join(', ')}`);
    }
  }
  const scale = Number(values.scale);
  if (!(scale > 0)) throw new UsageError(`--scale must be a positive number, not ${values.scale}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new UsageError(`--runs must be a positive integer, not ${values.runs}`);
  }
  const only = values.only ?? null;
  if (only !== null && only !== 'ours' && only !== 'reference') {
    throw new UsageError(`--only must be ours or reference, not ${only}`);
  }
  const kinds = dbs as DbKind[];
  let out = values.out ?? null;
  if (!out && values.save) {
    const date = new Date().toISOString().slice(0, 10);
    out = path.join(__dirname, 'results', `${date}-${kinds.join('-')}.md`);
  }
  const n = (base: number, min: number): number => Math.max(min, Math.round(base * scale));
  return {
    out,
    cpuProfDir: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : null,
    settings: {
      dbs: kinds,
      scenarios: ALL_SCENARIOS.filter((s) => scenarios.includes(s)),
      scale,
      runs,
      only,
      poolSize: POOL_SIZE,
      sizes: {
        add1: n(5_000, 20),
        add16: n(20_000, 32),
        poll: n(20_000, 100),
        push: n(20_000, 100),
        latency: n(500, 20),
        noop1: n(5_000, 20),
        noop16: n(20_000, 32),
        rawSingle: n(5_000, 20),
        rawBatched: n(20_000, 100),
        trickle: n(2_000, 100),
        fanout: n(1_000, 50),
        live: n(1_000, 50),
      },
    },
  };
}

type ServerScenario = (client: BenchClient, db: FreshDb, server: ServerProcess) => Promise<Outcome>;

function serverScenarios(
  sizes: Record<string, number>,
): Partial<Record<ScenarioKey, ServerScenario>> {
  const size = (k: string): number => sizes[k] ?? 0;
  return {
    add1: (c, db) => addEvents(c, db, size('add1'), 1, 'ws'),
    add16ws: (c, db) => addEvents(c, db, size('add16'), 16, 'ws'),
    add16http: (c, db) => addEvents(c, db, size('add16'), 16, 'http'),
    poll: (c, db) => pollDrain(c, db, size('poll')),
    push: (c, db) => pushCatchUp(c, db, size('push')),
    latency: (c) => pushLatency(c, size('latency'), 10),
    trickle: (c, _db, server) => trickle(c, server, size('trickle')),
    fanout: (_c, _db, server) =>
      fanout(
        server,
        FANOUT_SIZES,
        size('fanout'),
        'reliable',
        server.side === 'ours' ? pointerCounters : undefined,
      ),
    live: (_c, _db, server) => fanout(server, LIVE_SIZES, size('live'), 'live'),
    noop: async (c) => {
      const one = await noop(c, size('noop1'), 1);
      const many = await noop(c, size('noop16'), 16);
      const manyHttp = await noop(c, size('noop16'), 16, 'http');
      return {
        metrics: {
          rate1: one.metrics['rate'] ?? NaN,
          rate16: many.metrics['rate'] ?? NaN,
          rate16http: manyHttp.metrics['rate'] ?? NaN,
        },
        check: !one.check.ok ? one.check : !many.check.ok ? many.check : manyHttp.check,
      };
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** One scenario against one server: fresh database, fresh server, fresh client. */
async function runOnServer(
  kind: DbKind,
  run: number,
  scenario: ScenarioKey,
  side: Side,
  body: ServerScenario,
  cpuProfDir: string | null,
): Promise<RunRecord> {
  const started = performance.now();
  const record = (
    outcome: Outcome,
    server: ServerProcess | null,
    peakRssKiB: number | null = null,
  ): RunRecord => {
    const stderr = server?.stderrTail();
    return {
      db: kind,
      run,
      scenario,
      source: side,
      metrics: outcome.metrics,
      check: outcome.check,
      peakRssKiB,
      ...(stderr ? { stderr } : {}),
      seconds: (performance.now() - started) / 1000,
    };
  };
  const db = await FreshDb.create(kind);
  let server: ServerProcess | null = null;
  let client: BenchClient | null = null;
  try {
    const nodeArgs = cpuProfDir
      ? [
          '--cpu-prof',
          '--cpu-prof-dir',
          cpuProfDir,
          '--cpu-prof-name',
          `${kind}-${scenario}-${side}-${run}.cpuprofile`,
        ]
      : [];
    server = await startServer(side, db, nodeArgs);
    client = new BenchClient(server);
    let outcome: Outcome;
    try {
      outcome = await withTimeout(body(client, db, server), SCENARIO_TIMEOUT_MS, scenario);
    } catch (e) {
      const exited = server.exited ? ` (server exited: ${server.exited})` : '';
      outcome = { metrics: {}, check: { ok: false, detail: `error: ${errorText(e)}${exited}` } };
    }
    return record(outcome, server, server.peakRssKiB());
  } catch (e) {
    return record({ metrics: {}, check: { ok: false, detail: `error: ${errorText(e)}` } }, server);
  } finally {
    client?.close();
    await server?.stop();
    await db.drop().catch((e: unknown) => console.error(`dropping ${db.name}: ${errorText(e)}`));
  }
}

async function runRaw(
  kind: DbKind,
  run: number,
  sizes: Record<string, number>,
): Promise<RunRecord> {
  const started = performance.now();
  let outcome: Outcome;
  try {
    const r = await rawInsert(kind, sizes['rawSingle'] ?? 0, sizes['rawBatched'] ?? 0);
    outcome = {
      metrics: { single: r.single, batched: r.batched },
      check:
        r.stored === r.expected
          ? { ok: true, detail: `${r.stored} rows stored` }
          : { ok: false, detail: `${r.stored} rows stored of ${r.expected}` },
    };
  } catch (e) {
    outcome = { metrics: {}, check: { ok: false, detail: `error: ${errorText(e)}` } };
  }
  return {
    db: kind,
    run,
    scenario: 'raw',
    source: 'database',
    ...outcome,
    seconds: (performance.now() - started) / 1000,
  };
}

function progress(r: RunRecord): string {
  const metrics = Object.entries(r.metrics)
    .filter(([k]) => !k.startsWith('call_'))
    .map(
      ([k, v]) =>
        `${k} ${Number.isInteger(v) || Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2)}`,
    )
    .join(', ');
  const rss = r.peakRssKiB ? `, VmHWM ${(r.peakRssKiB / 1024).toFixed(1)} MiB` : '';
  const check = r.check.ok ? '✓' : `✗ ${r.check.detail}`;
  return `  ${r.scenario} ${r.source}: ${metrics || '-'}${rss} ${check} (${r.seconds.toFixed(1)} s)`;
}

async function main(): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error(`${errorText(e)}\n\n${HELP}`);
    return 2;
  }
  if (!options) {
    console.log(HELP);
    return 0;
  }
  const { settings } = options;
  for (const kind of settings.dbs) {
    const why = unavailable(kind);
    if (why) {
      console.error(why);
      return 2;
    }
  }
  const sides = SIDES.filter((s) => !settings.only || s === settings.only);
  const scenarios = serverScenarios(settings.sizes);
  const wanted = new Set(settings.scenarios);
  const onServers = settings.scenarios.filter((s) => scenarios[s]);
  if (wanted.has('memory') && !onServers.length) {
    console.error('memory is the servers’ peak over the other scenarios: select some of them too');
    return 2;
  }
  if (sides.includes('ours') && onServers.length) ensureBuilt((l) => console.log(l));

  const machine = describeMachine();
  for (const kind of settings.dbs) {
    const db = await FreshDb.create(kind);
    try {
      machine.databases[kind] = await db.version();
    } finally {
      await db.drop();
    }
  }
  console.log(
    `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; load ${machine.loadAverageAtStart.join(' ')}`,
  );
  console.log(`sizes: ${JSON.stringify(settings.sizes)}`);

  const date = new Date();
  const summaries: Summary[] = [];
  for (const kind of settings.dbs) {
    const records: RunRecord[] = [];
    for (let run = 1; run <= settings.runs; run++) {
      console.log(`[${kind}] run ${run}/${settings.runs}`);
      for (const scenario of onServers) {
        // Alternate which side goes first, so slow drift of the machine hits both alike.
        const order = run % 2 ? sides : [...sides].reverse();
        for (const side of order) {
          const r = await runOnServer(
            kind,
            run,
            scenario,
            side,
            scenarios[scenario]!,
            options.cpuProfDir,
          );
          records.push(r);
          console.log(progress(r));
        }
      }
      if (wanted.has('raw')) {
        const r = await runRaw(kind, run, settings.sizes);
        records.push(r);
        console.log(progress(r));
      }
    }
    const summary = new Summary(kind, records);
    summaries.push(summary);
    console.log(`\n${kind}\n${table(summary, wanted)}\n`);
  }
  machine.loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);

  const failures = summaries.flatMap((s) => s.failures().map((r) => ({ s, r })));
  for (const { s, r } of failures) {
    console.log(`✗ ${s.db} run ${r.run} ${r.scenario} ${r.source}: ${r.check.detail}`);
    if (r.stderr) console.log(`  server stderr:\n${r.stderr.replace(/^/gm, '    ')}`);
  }
  if (options.out) {
    const files = writeResults(options.out, machine, settings, summaries, date);
    console.log(`Wrote ${files.join(' and ')}`);
  }
  console.log(
    failures.length
      ? `${failures.length} run(s) failed`
      : 'Every run delivered exactly the expected events, in order.',
  );
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
