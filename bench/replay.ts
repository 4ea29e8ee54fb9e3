/**
 * Replay throughput: a reliable consumer catching up on events the discarder deleted, read from
 * the warehouse, against the same catch-up read from the active table, in the same run, by push
 * and by poll (our service only: the reference has no replay).
 *
 *   npx tsx bench/replay.ts [--db sqlite,postgresql,mysql] [--events 20000] [--runs 1]
 *
 * Each run: a fresh active database and a fresh warehouse of the same kind, `evtstream serve
 * --db ACTIVE --dwh WAREHOUSE` in its own process, `--events` events stored directly and copied
 * by its archiver. First new consumers catch up from the active table (a push receiver, then a
 * poller); then every event but the newest is deleted from the active table, as the discarder
 * deletes what the archiver has, and new consumers catch up again: from the warehouse, then the
 * one event left in the active table. The client is bench/client.ts (push 1.1 over WebSocket,
 * poll 1.0: 64 KiB responses). Every catch-up is checked: every event once, in ID order.
 */
import { parseArgs } from 'util';
import { BenchClient, pollExpected, pushExpected, type Check, type Outcome } from './client';
import { FreshDb, isDbKind, unavailable, type DbKind } from './db';
import { ensureBuilt, startOurs } from './servers/ours';
import type { ServerProcess } from './servers/process';

/** A run fails when the archiver copies nothing for this long. */
const NO_PROGRESS_MS = 60_000;

const HELP = `Usage: npx tsx bench/replay.ts [options]

  --db KINDS     sqlite, postgresql, mysql or a comma list (default sqlite,postgresql);
                 PostgreSQL/MySQL need EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL (or EVT_BENCH_*)
  --events N     events per run (default 20000)
  --runs N       runs; the table shows medians (default 1)
  -h, --help     this help
`;

type Figure = 'pushActive' | 'pushWarehouse' | 'pollActive' | 'pollWarehouse';

interface RunResult {
  rates: Record<Figure, number>;
  checks: Check[];
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

async function waitArchived(dwh: FreshDb, count: number): Promise<void> {
  const c = await dwh.connect();
  try {
    let seen = -1;
    let progressAt = performance.now();
    for (;;) {
      // The archiver creates evt_history at its start.
      const n = await c.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM evt_history').then(
        (rows) => Number(rows[0]?.n),
        () => 0,
      );
      if (n >= count) return;
      if (n > seen) {
        seen = n;
        progressAt = performance.now();
      } else if (performance.now() - progressAt > NO_PROGRESS_MS) {
        throw new Error(`the archiver stalled at ${n} of ${count} events`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await c.close();
  }
}

/** Deletes every event but the newest from the active table, as the discarder would. */
async function discard(active: FreshDb): Promise<void> {
  const c = await active.connect();
  try {
    const [row] = await c.query<{ m: unknown }>('SELECT MAX(id) AS m FROM evt_queue');
    await c.query('DELETE FROM evt_queue WHERE id < ?', [String(row?.m)]);
  } finally {
    await c.close();
  }
}

async function oneRun(kind: DbKind, events: number): Promise<RunResult> {
  const active = await FreshDb.create(kind);
  const dwh = await FreshDb.create(kind);
  let server: ServerProcess | null = null;
  const client: BenchClient[] = [];
  try {
    server = await startOurs(active, [], ['--dwh', dwh.ourUrl]);
    const expected = await active.seed(events);
    await waitArchived(dwh, expected.length);
    const catchUp = async (how: 'push' | 'poll', component: string): Promise<Outcome> => {
      const c = new BenchClient(server!);
      client.push(c);
      return how === 'push'
        ? pushExpected(c, component, expected)
        : pollExpected(c, component, expected);
    };
    const pushActive = await catchUp('push', 'PUSH_ACTIVE');
    const pollActive = await catchUp('poll', 'POLL_ACTIVE');
    await discard(active);
    const pushWarehouse = await catchUp('push', 'PUSH_DWH');
    const pollWarehouse = await catchUp('poll', 'POLL_DWH');
    const outcomes = { pushActive, pushWarehouse, pollActive, pollWarehouse };
    const rates = Object.fromEntries(
      Object.entries(outcomes).map(([k, o]) => [k, o.metrics['rate'] ?? NaN]),
    ) as Record<Figure, number>;
    return { rates, checks: Object.values(outcomes).map((o) => o.check) };
  } finally {
    for (const c of client) c.close();
    await server?.stop();
    await active.drop();
    await dwh.drop();
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite,postgresql' },
      events: { type: 'string', default: '20000' },
      runs: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    say(HELP);
    return;
  }
  const kinds = values.db.split(',').map((k) => k.trim());
  for (const k of kinds) if (!isDbKind(k)) throw new Error(`--db: unknown kind ${k}`);
  const events = Number(values.events);
  const runs = Number(values.runs);
  ensureBuilt(say);
  const rows: string[] = [];
  let failed = false;
  for (const kind of kinds as DbKind[]) {
    const why = unavailable(kind);
    if (why) {
      say(`skipped ${why}`);
      continue;
    }
    const results: RunResult[] = [];
    for (let i = 1; i <= runs; i++) {
      const r = await oneRun(kind, events);
      results.push(r);
      const bad = r.checks.filter((c) => !c.ok);
      failed ||= bad.length > 0;
      say(
        `[${kind}] run ${i}/${runs}: push ${fmt(r.rates.pushActive)} active / ${fmt(r.rates.pushWarehouse)} warehouse, ` +
          `poll ${fmt(r.rates.pollActive)} / ${fmt(r.rates.pollWarehouse)} events/s ` +
          (bad.length ? `✗ ${bad.map((c) => c.detail).join('; ')}` : `✓ ${r.checks[0]?.detail}`),
      );
    }
    const m = (f: Figure): number => median(results.map((r) => r.rates[f]));
    rows.push(
      `| ${kind} | push | ${fmt(m('pushActive'))} | ${fmt(m('pushWarehouse'))} | ${(m('pushWarehouse') / m('pushActive')).toFixed(2)}× |`,
      `| ${kind} | poll | ${fmt(m('pollActive'))} | ${fmt(m('pollWarehouse'))} | ${(m('pollWarehouse') / m('pollActive')).toFixed(2)}× |`,
    );
  }
  say('');
  say(`${events} events per catch-up, medians of ${runs} run(s), events/s:`);
  say('');
  say(
    '| database | how | from the active table | from the warehouse | ratio (warehouse / active) |',
  );
  say('| --- | --- | ---: | ---: | ---: |');
  for (const r of rows) say(r);
  if (failed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
