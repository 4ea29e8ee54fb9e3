/**
 * What an admin's look costs on a big active table: a /metrics scrape and a `stats` call
 * (ftn18es.admin, what `evtstream stats --url` makes) against our `serve` on an empty table,
 * then on the same service once `--events` rows (a million by default) are stored. Each look is
 * made `--looks` times, 200 ms apart, after one first look; the figures are the client's
 * wall-clock time per call. The count of the table is checked against the rows stored (the
 * figure may be up to its stated age old, never wrong for its age).
 *
 * With `--catchup` (SQLite), the memory of a catch-up: a fresh service idles for 2 s (its
 * VmHWM then), then one reliable receiver attaches and is pushed every stored event (checked:
 * each once, in order), and its VmHWM after is set against the idle one. `--node-args` lists
 * variants of Node.js options for the server, `;` between variants ('' is none).
 *
 *   npx tsx bench/big-table.ts [--db sqlite,postgresql,mysql|none] [--events 1000000] [--looks 20]
 *                              [--catchup] [--node-args ';--max-semi-space-size=4']
 */
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import {
  ADMIN_CREDENTIALS,
  BenchClient,
  delay,
  metricValue,
  percentile,
  pushExpected,
  scrapeMetrics,
} from './client';
import { FreshDb, isDbKind, unavailable, type DbKind } from './db';
import { ensureBuilt, startOurs } from './servers/ours';
import type { ServerProcess } from './servers/process';

interface Look {
  first: number;
  p50: number;
  max: number;
}

interface Row {
  kind: DbKind;
  rows: number;
  scrape: Look;
  stats: Look;
  /** The counts the service gave at the end, and their stated age. */
  scraped: number;
  scrapedAgeS: number;
  statsCount: number;
  statsAgeS: number;
}

async function stats(server: ServerProcess): Promise<{ ms: number; r: Record<string, unknown> }> {
  const t0 = performance.now();
  const rsp = await fetch(server.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/futoin+json' },
    body: JSON.stringify({ f: 'ftn18es.admin:1.1:stats', p: {}, sec: ADMIN_CREDENTIALS }),
  });
  const body = (await rsp.json()) as { r?: Record<string, unknown>; e?: string };
  const ms = performance.now() - t0;
  if (!body.r) throw new Error(`stats failed: ${JSON.stringify(body)}`);
  return { ms, r: body.r };
}

async function looks(n: number, one: () => Promise<number>): Promise<Look> {
  const first = await one();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    await delay(200);
    times.push(await one());
  }
  times.sort((a, b) => a - b);
  return { first, p50: percentile(times, 50), max: times[times.length - 1]! };
}

async function measure(kind: DbKind, server: ServerProcess, rows: number, n: number): Promise<Row> {
  let scraped = NaN;
  let scrapedAgeS = NaN;
  const scrape = await looks(n, async () => {
    const { text, ms } = await scrapeMetrics(server);
    scraped = metricValue(text, 'evtstream_active_events');
    scrapedAgeS = metricValue(text, 'evtstream_active_events_age_seconds');
    return ms;
  });
  let statsCount = NaN;
  let statsAgeS = NaN;
  const stat = await looks(n, async () => {
    const { ms, r } = await stats(server);
    const figures = r['stats'] as Record<string, unknown>;
    statsCount = Number(figures['active_events']);
    statsAgeS = Number(figures['active_events_age_s'] ?? 0);
    return ms;
  });
  return { kind, rows, scrape, stats: stat, scraped, scrapedAgeS, statsCount, statsAgeS };
}

interface CatchUp {
  nodeArgs: string;
  idleMiB: number;
  peakMiB: number;
  rate: number;
  ok: boolean;
  detail: string;
}

const mib = (kib: number | null): number => (kib ?? NaN) / 1024;

async function catchUp(events: number, nodeArgs: string[]): Promise<CatchUp> {
  const db = await FreshDb.create('sqlite', 'evtbig');
  const server = await startOurs(db, nodeArgs);
  const client = new BenchClient(server);
  try {
    const ids = await db.seed(events, 1000);
    await delay(2_000);
    const idleMiB = mib(server.peakRssKiB());
    const outcome = await pushExpected(client, 'CATCHUP', ids);
    return {
      nodeArgs: nodeArgs.join(' ') || '(none)',
      idleMiB,
      peakMiB: mib(server.peakRssKiB()),
      rate: outcome.metrics['rate'] ?? NaN,
      ok: outcome.check.ok,
      detail: outcome.check.detail,
    };
  } finally {
    client.close();
    await server.stop();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite,postgresql,mysql' },
      events: { type: 'string', default: '1000000' },
      looks: { type: 'string', default: '20' },
      catchup: { type: 'boolean', default: false },
      'node-args': { type: 'string', default: '' },
    },
  });
  // 'none': no looks (with --catchup, the catch-up alone).
  const names = values.db.split(',').filter((k) => k !== '' && k !== 'none');
  const unknown = names.filter((k) => !isDbKind(k));
  if (unknown.length)
    throw new Error(`--db: ${unknown.join(', ')} is not sqlite, postgresql, mysql or none`);
  const kinds = names.filter(isDbKind);
  const events = Number(values.events);
  const n = Number(values.looks);
  ensureBuilt((l) => console.log(l));
  const out: Row[] = [];
  for (const kind of kinds) {
    const why = unavailable(kind);
    if (why) {
      console.log(`${kind}: skipped (${why})`);
      continue;
    }
    const db = await FreshDb.create(kind, 'evtbig');
    const server = await startOurs(db);
    try {
      out.push(await measure(kind, server, 0, n));
      const t0 = performance.now();
      await db.seed(events, 1000);
      console.log(`${kind}: ${events} events stored in ${Math.round(performance.now() - t0)} ms`);
      out.push(await measure(kind, server, events, n));
    } finally {
      await server.stop();
      await db.drop();
    }
  }
  const catchUps: CatchUp[] = [];
  if (values.catchup) {
    for (const variant of values['node-args'].split(';')) {
      const args = variant.split(' ').filter(Boolean);
      catchUps.push(await catchUp(events, args));
      console.log(`catch-up with ${args.join(' ') || 'no options'}: done`);
    }
  }
  const f = (x: number): string => x.toFixed(1);
  console.log(
    '\n| database | events | /metrics first | p50 | max | stats first | p50 | max | counted (age) |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of out) {
    console.log(
      `| ${r.kind} | ${r.rows} | ${f(r.scrape.first)} | ${f(r.scrape.p50)} | ${f(r.scrape.max)} | ` +
        `${f(r.stats.first)} | ${f(r.stats.p50)} | ${f(r.stats.max)} | ` +
        `${r.scraped} (${r.scrapedAgeS} s), ${r.statsCount} (${r.statsAgeS} s) |`,
    );
    if (r.scraped !== r.rows || r.statsCount !== r.rows) {
      console.log(`  ${r.kind}: a count differs from the ${r.rows} rows stored`);
      process.exitCode = 1;
    }
  }
  if (catchUps.length) {
    console.log(
      '\n| node options | VmHWM idle, MiB | after catch-up, MiB | ratio | events/s | check |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | --- |');
    for (const c of catchUps) {
      console.log(
        `| ${c.nodeArgs} | ${f(c.idleMiB)} | ${f(c.peakMiB)} | ${(c.peakMiB / c.idleMiB).toFixed(2)} | ` +
          `${Math.round(c.rate)} | ${c.ok ? 'ok' : c.detail} |`,
      );
      if (!c.ok) process.exitCode = 1;
    }
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
