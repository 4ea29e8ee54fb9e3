/**
 * What /metrics, the web console and tracing cost the event path.
 *
 * Both only do work when someone looks: the services bump plain counters either way, /metrics
 * reads them (and asks the database for lag) when scraped, and the console is static files plus
 * admin calls its page makes while open. This benchmark checks that claim against the wire:
 *
 *   A  off        `metrics: 'off', console: false`
 *   B  unwatched  metrics (admins) and console served, nobody looking
 *   C  scraped    as B, with an admin scraping /metrics every second throughout
 *
 * and, with `--variants untraced,off,sdk` (any list of the variants, the first the baseline),
 * what the OpenTelemetry instrumentation costs:
 *
 *   U  untraced   as A, with our spans turned off (setTracing(false))
 *   A  off        the instrumentation as shipped, no SDK: every span a no-op
 *   S  sdk        as A, with an SDK recording every span (exported to nowhere)
 *
 * Each run: a fresh database, our service in its own process (this script, re-run with
 * `--serve`: StreamService as `evtstream serve` sets it up, plus the variant's settings), then
 * the bench client (bench/client.ts) measures addEvent with 16 concurrent WebSocket callers and
 * a reliable push receiver catching up on stored events. Every run is checked as in
 * bench/run.ts. Rounds alternate the order of the variants (ABC, BCA, CAB, ...), so slow drift
 * on a shared machine spreads over all three; the table shows medians and ratios to A.
 *
 *   npx tsx bench/ops-cost.ts [--db sqlite|postgresql|mysql] [--rounds 3] [--add 16000]
 *                             [--push 150000]
 */
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import path from 'path';
import { parseArgs } from 'util';
import { StreamService } from '../src/app/service';
import { consoleLogger } from '../src/common/log';
import { setTracing } from '../src/common/tracing';
import { parseDbUrl } from '../src/storage/config';
import {
  addEvents,
  BENCH_SECRET,
  BENCH_USER,
  BenchClient,
  pushCatchUp,
  type Outcome,
} from './client';
import { FreshDb, isDbKind, unavailable, type DbKind } from './db';
import { childEnv, cpuSeconds, ServerProcess } from './servers/process';

type Variant = 'off' | 'unwatched' | 'scraped' | 'untraced' | 'sdk';
const VARIANTS: readonly Variant[] = ['off', 'unwatched', 'scraped', 'untraced', 'sdk'];
const DEFAULT_VARIANTS: readonly Variant[] = ['off', 'unwatched', 'scraped'];
const LABEL: Record<Variant, string> = {
  off: 'A: metrics off, no console',
  unwatched: 'B: metrics + console, unwatched',
  scraped: 'C: metrics scraped every 1 s',
  untraced: 'U: as A, spans turned off',
  sdk: 'S: as A, an SDK recording every span',
};

/** An SDK as a host application would install one, recording every span and dropping it. */
function installTracingSdk(): void {
  const discard: SpanExporter = {
    // 0: ExportResultCode.SUCCESS (of @opentelemetry/core, not a dependency of ours).
    export: (_spans, done) => done({ code: 0 }),
    shutdown: async () => undefined,
  };
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard)] }),
  );
}

const ADMIN = 'root';
const ADMIN_SECRET = 'root-secret';
const SCRAPE_EVERY_MS = 1000;
const CALLERS = 16;

/**
 * The service for one run, in this process (`--serve`): as `evtstream serve` starts it
 * (loopback counted as secure, warn-level log), with the bench user, an admin for /metrics,
 * and /metrics and the console on or off. Prints the line ServerProcess waits for.
 */
async function serve(url: string, variant: Variant): Promise<void> {
  const on = variant === 'unwatched' || variant === 'scraped';
  if (variant === 'untraced') setTracing(false);
  if (variant === 'sdk') installTracingSdk();
  const service = await StreamService.start({
    db: parseDbUrl(url),
    host: '127.0.0.1',
    port: 0,
    users: new Map([[BENCH_USER, BENCH_SECRET]]),
    admins: new Map([[ADMIN, ADMIN_SECRET]]),
    metrics: on ? 'admins' : 'off',
    console: on,
    log: consoleLogger('warn'),
    secureLoopback: true,
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void service.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`ops-cost listening on ${service.url} (WebSocket ${service.wsUrl})\n`);
}

const ADMIN_AUTH = `Basic ${Buffer.from(`${ADMIN}:${ADMIN_SECRET}`).toString('base64')}`;

/** One scrape as the admin; true when it answered 200 with our metrics. */
async function scrapeOnce(url: string): Promise<boolean> {
  try {
    const rsp = await fetch(new URL('/metrics', url), { headers: { authorization: ADMIN_AUTH } });
    const text = await rsp.text();
    return rsp.status === 200 && text.includes('evtstream_events_added_total');
  } catch {
    return false;
  }
}

/** Scrapes /metrics as the admin every second until stopped; counts good and bad answers. */
function scraper(url: string): { stop: () => Promise<{ ok: number; failed: number }> } {
  let ok = 0;
  let failed = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const next = Date.now() + SCRAPE_EVERY_MS;
      if (await scrapeOnce(url)) ok++;
      else failed++;
      while (running && Date.now() < next) await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

interface RunResult {
  /** Events per second. */
  add: number;
  push: number;
  /** The server's CPU time per event, in microseconds. */
  addCpu: number;
  pushCpu: number;
  /** C only: scrapes during the run, and the server's CPU per scrape when idle (ms). */
  scrapes: number;
  scrapeCpu: number;
}

/** Back-to-back scrapes on an idle server, to time what one costs it. */
const SCRAPES_TIMED = 20;

/** One run of a variant on a fresh database and server. */
async function runOnce(
  kind: DbKind,
  variant: Variant,
  addCount: number,
  pushCount: number,
): Promise<RunResult> {
  const db = await FreshDb.create(kind);
  let server: ServerProcess | null = null;
  let client: BenchClient | null = null;
  try {
    server = await ServerProcess.start(
      'ours',
      ['--import', 'tsx', path.resolve(__filename), '--serve', db.ourUrl, '--variant', variant],
      childEnv({}),
    );
    client = new BenchClient(server);
    const scraping = variant === 'scraped' ? scraper(server.url) : null;
    const pid = server.pid;
    let add: Outcome;
    let push: Outcome;
    let addCpu: number;
    let pushCpu: number;
    let scrapes: { ok: number; failed: number } | undefined;
    try {
      const c0 = cpuSeconds(pid);
      add = await addEvents(client, db, addCount, CALLERS, 'ws');
      const c1 = cpuSeconds(pid);
      push = await pushCatchUp(client, db, pushCount);
      const c2 = cpuSeconds(pid);
      addCpu = ((c1 - c0) / addCount) * 1e6;
      // The receiver catches up on everything stored: the added events and the seeded ones.
      pushCpu = ((c2 - c1) / (addCount + pushCount)) * 1e6;
    } finally {
      scrapes = await scraping?.stop();
    }
    if (scrapes && (scrapes.failed > 0 || scrapes.ok === 0)) {
      throw new Error(`scrapes: ${scrapes.ok} good, ${scrapes.failed} failed`);
    }
    for (const o of [add, push])
      if (!o.check.ok) throw new Error(`check failed: ${o.check.detail}`);
    let scrapeCpu = 0;
    if (scrapes) {
      // The same figures a scrape during the run read: a consumer, everything still stored.
      const c3 = cpuSeconds(pid);
      for (let i = 0; i < SCRAPES_TIMED; i++) {
        if (!(await scrapeOnce(server.url))) throw new Error('a timed scrape failed');
      }
      scrapeCpu = ((cpuSeconds(pid) - c3) / SCRAPES_TIMED) * 1000;
    }
    return {
      add: add.metrics['rate']!,
      push: push.metrics['rate']!,
      addCpu,
      pushCpu,
      scrapes: scrapes?.ok ?? 0,
      scrapeCpu,
    };
  } finally {
    client?.close();
    await server?.stop();
    await db.drop();
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      variant: { type: 'string', default: 'off' },
      db: { type: 'string', default: 'sqlite' },
      rounds: { type: 'string', default: '3' },
      add: { type: 'string', default: '16000' },
      push: { type: 'string', default: '150000' },
      variants: { type: 'string' },
    },
  });
  if (values.serve !== undefined) {
    const variant = VARIANTS.find((v) => v === values.variant);
    if (!variant) throw new Error(`Unknown --variant ${values.variant}`);
    return serve(values.serve, variant);
  }
  const kind = values.db;
  if (!isDbKind(kind)) throw new Error(`--db: sqlite, postgresql or mysql, not ${kind}`);
  const why = unavailable(kind);
  if (why) throw new Error(why);
  const rounds = Math.max(1, Number(values.rounds));
  const addCount = Number(values.add);
  const pushCount = Number(values.push);
  const variants: Variant[] = [];
  for (const name of values.variants?.split(',') ?? DEFAULT_VARIANTS) {
    const v = VARIANTS.find((x) => x === name.trim());
    if (!v) throw new Error(`--variants: ${name} is not one of ${VARIANTS.join(', ')}`);
    variants.push(v);
  }
  const baseline = variants[0]!;
  const results = new Map<Variant, RunResult[]>(variants.map((v) => [v, []]));
  const t0 = Date.now();
  // A run whose figures are not kept: the first server start pays for cold caches (the
  // TypeScript loader's, the file system's, the database's).
  const warm = await runOnce(kind, 'off', Math.min(addCount, 4000), Math.min(pushCount, 4000));
  console.error(`warm-up: add ${fmt(warm.add)}/s, push ${fmt(warm.push)}/s (not counted)`);
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round: ABC, BCA, CAB.
    const order = variants.map((_v, i) => variants[(i + r) % variants.length]!);
    for (const variant of order) {
      const res = await runOnce(kind, variant, addCount, pushCount);
      results.get(variant)!.push(res);
      console.error(
        `round ${r + 1} ${variant}: add ${fmt(res.add)}/s (${res.addCpu.toFixed(1)} µs CPU/event), ` +
          `push ${fmt(res.push)}/s (${res.pushCpu.toFixed(1)} µs CPU/event)` +
          (variant === 'scraped' ? `, ${res.scrapes} scrapes` : ''),
      );
    }
  }
  const med = (v: Variant, f: (x: RunResult) => number): number => median(results.get(v)!.map(f));
  const cols: { head: string; f: (x: RunResult) => number; digits: number }[] = [
    { head: 'addEvent, events/s', f: (x) => x.add, digits: 0 },
    { head: 'addEvent, server CPU µs/event', f: (x) => x.addCpu, digits: 1 },
    { head: 'push catch-up, events/s', f: (x) => x.push, digits: 0 },
    { head: 'push, server CPU µs/event', f: (x) => x.pushCpu, digits: 1 },
  ];
  console.log(
    `\n${kind}, ${rounds} rounds; addEvent: ${fmt(addCount)} events by ${CALLERS} WebSocket ` +
      `callers; push: a reliable receiver catching up on ${fmt(addCount + pushCount)} stored ` +
      `events; medians, ratio to ${LABEL[baseline].slice(0, 1)} in brackets (${Math.round((Date.now() - t0) / 1000)} s)\n`,
  );
  console.log(`| variant | ${cols.map((c) => c.head).join(' | ')} |`);
  console.log(`|---|${cols.map(() => '---:').join('|')}|`);
  for (const v of variants) {
    const cells = cols.map((c) => {
      const x = med(v, c.f);
      const n = c.digits ? x.toFixed(c.digits) : fmt(x);
      return `${n} (${(x / med(baseline, c.f)).toFixed(2)})`;
    });
    console.log(`| ${LABEL[v]} | ${cells.join(' | ')} |`);
  }
  console.log('\nEach run: add events/s, push events/s');
  for (const v of variants) {
    const rs = results.get(v)!;
    console.log(`- ${v}: ${rs.map((x) => `${fmt(x.add)} / ${fmt(x.push)}`).join(', ')}`);
  }
  const scraped = results.get('scraped');
  if (!scraped) return;
  console.log(`- scrapes per C run: ${scraped.map((x) => x.scrapes).join(', ')}`);
  console.log(
    `- server CPU per scrape (${SCRAPES_TIMED} back to back, idle, after each C run): ` +
      `${scraped.map((x) => `${x.scrapeCpu.toFixed(1)} ms`).join(', ')}`,
  );
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
