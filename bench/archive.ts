/**
 * Archiving throughput: events per second from the active store into the warehouse's
 * evt_history, OUR DBEventArchiver against the REFERENCE's (futoin-eventstream 1.3.9), in the
 * same run, on databases of the same kind.
 *
 *   npx tsx bench/archive.ts [--db sqlite,postgresql] [--events 20000] [--runs 3] [--cross]
 *
 * Each run of a side: a fresh active database and a fresh warehouse database (same kind), the
 * side's push service in its own process (bench/servers: `evtstream serve`, or the reference's
 * DBGenService + DBPushService), `--events` events stored directly, then the side's archiver in
 * this process, timed from its 'ready' (push session accepted) to the last event archived. Our
 * archiver gets the warehouse as a ConnectionConfig and applies its migrations at start (before
 * 'ready'); the reference archiver gets `#db.evtdwh` from futoin-database's AutoConfig, with
 * the reference's own evt_history schema (sql/dwh/<kind>) applied beforehand. SQLite on both
 * sides: WAL, synchronous=NORMAL. Every run is checked: the warehouse must hold exactly the
 * stored IDs. `--cross` adds each archiver against the other side's service.
 */
import fs from 'fs';
import path from 'path';
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import AutoConfig from 'futoin-database/AutoConfig';
import { AdvancedCCM } from 'futoin-invoker';
import { consoleLogger } from '../src/common/log';
import { DBEventArchiver } from '../src/maintenance/DBEventArchiver';
import { parseDbUrl } from '../src/storage/config';
import { cmpIds, CREDENTIALS, run, type Endpoint } from './client';
import { FreshDb, isDbKind, unavailable, type DbKind } from './db';
import { startServer } from './servers/launch';
import { ensureBuilt } from './servers/ours';
import type { ServerProcess, Side } from './servers/process';

/** The reference's archiver: untyped CommonJS, typed here from its source. */
interface RefArchiver {
  start(endpoint: unknown, credentials?: string | null, options?: Record<string, unknown>): void;
  stop(): void;
  on(event: string, handler: (...args: unknown[]) => void): void;
  once(event: string, handler: (...args: unknown[]) => void): void;
}
/* eslint-disable @typescript-eslint/no-require-imports -- see RefArchiver */
const RefDBEventArchiver = require('futoin-eventstream/DBEventArchiver') as new (
  db_ccm: AdvancedCCM,
) => RefArchiver;
/* eslint-enable @typescript-eslint/no-require-imports */

const REF_DWH_DIR = path.join(
  path.dirname(require.resolve('futoin-eventstream/package.json')),
  'sql',
  'dwh',
);
/** A run fails when no event is archived for this long. */
const NO_PROGRESS_MS = 60_000;

const HELP = `Usage: npx tsx bench/archive.ts [options]

  --db KINDS     sqlite, postgresql, mysql or a comma list (default sqlite,postgresql);
                 PostgreSQL/MySQL need EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL (or EVT_BENCH_*)
  --events N     events to archive per run (default 20000)
  --runs N       runs per side; the table shows medians (default 3)
  --cross        also each archiver against the other side's push service
  -h, --help     this help
`;

type Archiver = Side;

interface Pairing {
  archiver: Archiver;
  service: Side;
}

interface Result {
  rate: number;
  ok: boolean;
  detail: string;
}

/** V18.1__History.sql -> [18, 1]: Flyway order puts V18.1 before V18.1.1. */
function flywayOrder(a: string, b: string): number {
  const v = (f: string): number[] => (/^V([0-9.]+)__/.exec(f)?.[1] ?? '').split('.').map(Number);
  const [va, vb] = [v(a), v(b)];
  for (let i = 0; i < Math.max(va.length, vb.length); i++) {
    const d = (va[i] ?? -1) - (vb[i] ?? -1);
    if (d) return d;
  }
  return 0;
}

/** The reference's evt_history, created as its Flyway migrations would. */
async function referenceSchema(dwh: FreshDb): Promise<void> {
  const dir = path.join(REF_DWH_DIR, dwh.kind);
  const c = await dwh.connect();
  try {
    for (const file of fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .sort(flywayOrder)) {
      for (const statement of fs.readFileSync(path.join(dir, file), 'utf8').split(';')) {
        const code = statement.replace(/--[^\n]*/g, '').trim();
        if (code) await c.query(code);
      }
    }
  } finally {
    await c.close();
  }
}

/** `#db.evtdwh` AutoConfig variables for the warehouse (its `#db.evt` ones, renamed). */
function dwhEnv(dwh: FreshDb): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(dwh.referenceEnv)) {
    env[k.replace(/^DB_EVT_/, 'DB_EVTDWH_')] = v;
  }
  return env;
}

/**
 * Runs an archiver until `expected` are archived; resolves with the seconds from its 'ready'.
 * `progress(n)` is how many events a 'processedEvents' reported.
 */
function timeArchiver(
  archiver: Pick<RefArchiver, 'on' | 'once'>,
  start: () => void,
  total: number,
  progress: (arg: unknown) => number,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let t0 = 0;
    let done = 0;
    let watchdog = setTimeout(() => reject(new Error('never ready')), NO_PROGRESS_MS);
    const bump = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(
        () => reject(new Error(`stalled at ${done} of ${total} events`)),
        NO_PROGRESS_MS,
      );
    };
    archiver.once('ready', () => {
      t0 = performance.now();
      bump();
    });
    archiver.on('processedEvents', (arg: unknown) => {
      done += progress(arg);
      bump();
      if (done >= total) {
        clearTimeout(watchdog);
        resolve((performance.now() - t0) / 1000);
      }
    });
    archiver.on('workerError', (...args: unknown[]) => {
      // After the last event, the stop's own disconnection is no news.
      if (done < total)
        process.stderr.write(`  workerError ${args.slice(0, 2).map(String).join(' ')}\n`);
    });
    start();
  });
}

async function archiveWithOurs(endpoint: Endpoint, dwh: FreshDb, total: number): Promise<number> {
  const ccm = new AdvancedCCM();
  const archiver = new DBEventArchiver(ccm, {
    warehouse: parseDbUrl(dwh.ourUrl),
    log: consoleLogger('warn', 'archiver'),
  });
  try {
    return await timeArchiver(
      archiver,
      () => archiver.start(endpoint.wsUrl, CREDENTIALS),
      total,
      // 'processedEvents' carries the count of an insert (as the reference's); a batch delivered
      // again would count twice, so the warehouse check afterwards is what proves completeness.
      (count) => count as number,
    );
  } finally {
    archiver.stop();
    ccm.close();
    await archiver.whenStopped();
  }
}

async function archiveWithReference(
  endpoint: Endpoint,
  dwh: FreshDb,
  total: number,
): Promise<number> {
  await referenceSchema(dwh);
  const ccm = new AdvancedCCM();
  const raw = dwh.kind === 'sqlite' ? { pragmas: ['journal_mode=WAL', 'synchronous=NORMAL'] } : {};
  await run((as) => AutoConfig(as, ccm, { evtdwh: { raw } }, dwhEnv(dwh)));
  const archiver = new RefDBEventArchiver(ccm);
  try {
    return await timeArchiver(
      archiver,
      () => archiver.start(endpoint.wsUrl, CREDENTIALS),
      total,
      // The reference reports the rows of each INSERT.
      (count) => Number(count),
    );
  } finally {
    archiver.stop();
    ccm.close();
  }
}

/** The warehouse must hold exactly `expected`. */
async function check(dwh: FreshDb, expected: readonly string[]): Promise<Result['detail'] | null> {
  const c = await dwh.connect();
  try {
    const rows = await c.query<{ id: unknown }>('SELECT id FROM evt_history ORDER BY id');
    const got = rows.map((r) => String(r.id)).sort(cmpIds);
    if (got.length === expected.length && got.every((id, i) => id === expected[i])) return null;
    const want = new Set(expected);
    const missing = expected.length - got.filter((id) => want.has(id)).length;
    return `${got.length} rows for ${expected.length} events: ${missing} missing, ${got.length - new Set(got).size} duplicated`;
  } finally {
    await c.close();
  }
}

async function runOnce(kind: DbKind, pairing: Pairing, total: number): Promise<Result> {
  const active = await FreshDb.create(kind);
  const dwh = await FreshDb.create(kind);
  let server: ServerProcess | null = null;
  try {
    server = await startServer(pairing.service, active);
    const expected = (await active.seed(total)).sort(cmpIds);
    const seconds =
      pairing.archiver === 'ours'
        ? await archiveWithOurs(server, dwh, total)
        : await archiveWithReference(server, dwh, total);
    const wrong = await check(dwh, expected);
    return {
      rate: total / seconds,
      ok: !wrong,
      detail: wrong ?? `${total} events, each once`,
    };
  } catch (e) {
    return { rate: NaN, ok: false, detail: e instanceof Error ? e.message : String(e) };
  } finally {
    await server?.stop();
    await active.drop().catch(() => undefined);
    await dwh.drop().catch(() => undefined);
  }
}

function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const fmt = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
const label = (p: Pairing): string =>
  `${p.archiver === 'ours' ? 'our' : 'reference'} archiver, ${p.service === 'ours' ? 'our' : 'reference'} service`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite,postgresql' },
      events: { type: 'string', default: '20000' },
      runs: { type: 'string', default: '3' },
      cross: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const kinds = values.db.split(',').map((s) => s.trim());
  const total = Number(values.events);
  const runs = Number(values.runs);
  if (!kinds.every(isDbKind) || !(Number.isInteger(total) && total > 0) || !(runs >= 1)) {
    console.error(HELP);
    return 2;
  }
  for (const kind of kinds) {
    const why = unavailable(kind);
    if (why) {
      console.error(why);
      return 2;
    }
  }
  ensureBuilt((l) => console.log(l));

  const pairings: Pairing[] = [
    { archiver: 'ours', service: 'ours' },
    { archiver: 'reference', service: 'reference' },
  ];
  if (values.cross) {
    pairings.push(
      { archiver: 'ours', service: 'reference' },
      { archiver: 'reference', service: 'ours' },
    );
  }

  let failures = 0;
  const lines = [
    `| database | ${pairings.map(label).join(' | ')} | ratio (ours / reference) |`,
    `| --- | ${pairings.map(() => '---:').join(' | ')} | ---: |`,
  ];
  for (const kind of kinds) {
    const rates = new Map<Pairing, number[]>(pairings.map((p) => [p, []]));
    for (let r = 1; r <= runs; r++) {
      // Alternate the order, so slow drift of the machine hits both alike.
      const order = r % 2 ? pairings : [...pairings].reverse();
      for (const p of order) {
        const res = await runOnce(kind, p, total);
        rates.get(p)!.push(res.rate);
        if (!res.ok) failures++;
        console.log(
          `[${kind}] run ${r}/${runs} ${label(p)}: ${fmt(res.rate)} events/s ${res.ok ? '✓' : '✗'} ${res.detail}`,
        );
      }
    }
    const medians = pairings.map((p) => median(rates.get(p)!));
    const ratio = (medians[0] ?? NaN) / (medians[1] ?? NaN);
    lines.push(
      `| ${kind} | ${medians.map(fmt).join(' | ')} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '-'} |`,
    );
  }
  console.log(
    `\nArchiving ${total.toLocaleString('en-US')} stored events, events/s (median of ${runs}):\n`,
  );
  console.log(lines.join('\n'));
  console.log(
    failures ? `\n${failures} run(s) failed` : '\nEvery warehouse held exactly the stored IDs.',
  );
  return failures ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
