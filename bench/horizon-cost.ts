/**
 * What gap safety and cross-process wake-ups cost, measured in process on one database:
 *
 * - writers: 16 concurrent writers adding events one per statement (no group commit, so every
 *   event is its own transaction), while a reader follows them; with the horizon, and without
 *   it (readers then go by the newest visible ID: the `id > last_id` of the reference);
 * - readers: draining 20,000 stored events by polling (1000 per read), with and without the
 *   horizon;
 * - NOTIFY (PostgreSQL): the same 16 independent writers with every statement notifying (what
 *   a per-row trigger would do: each commit then takes the global notify lock), and 16
 *   concurrent addEvent callers through the service's group commit, which sends one NOTIFY per
 *   batch, against the same without any NOTIFY.
 *
 *   npx tsx bench/horizon-cost.ts [--db sqlite,postgresql,mysql] [--events N]
 *
 * Prints events/s for each and the ratio (after / before).
 */
import { parseArgs } from 'util';
import $as from 'futoin-asyncsteps';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import { DBGenService } from '../src/generation/DBGenService';
import { performance } from 'perf_hooks';
import { cmpIds, type EventId } from '../src/common/ids';
import { consoleLogger } from '../src/common/log';
import { parseDbUrl } from '../src/storage/config';
import { migrate } from '../src/storage/migrate';
import type { SqlRunner } from '../src/storage/sql';
import { EventStore } from '../src/storage/store';
import { FreshDb, isDbKind, unavailable, type DbKind } from './db';

const WRITERS = 16;
const log = consoleLogger('warn', 'bench');

/** The store as the reference reads: up to the newest visible ID, no matter who is still writing. */
class NaiveStore extends EventStore {
  override horizon(): Promise<EventId> {
    return this.newestEventId();
  }
}

async function openStore(kind: DbKind, db: FreshDb, naive: boolean): Promise<EventStore> {
  const config = parseDbUrl(db.ourUrl);
  const plain = await EventStore.open(config, { log });
  if (!naive) return plain;
  return new NaiveStore(plain.db, plain.dialect, { log });
}

/** The store without NOTIFY: its batches are written as statements of no transaction. */
class QuietStore extends EventStore {
  override async addEvents(events: Parameters<EventStore['addEvents']>[0]): Promise<EventId[]> {
    const runner: SqlRunner = {
      query: (s, p) => this.db.query(s, p),
      execute: (s, p) => this.db.execute(s, p),
    };
    return this.insertEventsInTx(runner, events);
  }
}

/** 16 concurrent callers of the generation service (group commit), `perCaller` events each. */
async function groupCommit(store: EventStore, perCaller: number): Promise<number> {
  const ccm = new AdvancedCCM();
  try {
    const gen = await new Promise<DBGenService>((resolve, reject) => {
      $as()
        .add(
          (as) => {
            const impl = DBGenService.register(as, new Executor(ccm), { store });
            as.add((_as) => resolve(impl));
          },
          (_as, err) => reject(new Error(err)),
        )
        .execute();
    });
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_v, w) => {
        for (let i = 0; i < perCaller; i++) await gen.addEventAsync('COST', { w, i });
      }),
    );
    return (WRITERS * perCaller) / ((performance.now() - t0) / 1000);
  } finally {
    ccm.close();
  }
}

/** 16 writers, `perWriter` single-event statements each, a reader following; events/s. */
async function writers(store: EventStore, perWriter: number, notify: boolean): Promise<number> {
  // addEvents notifies on PostgreSQL; insertEventsInTx outside a transaction writes the plain
  // single statement (no NOTIFY).
  const insert = (events: { type: string; data: string }[]): Promise<EventId[]> =>
    notify ? store.addEvents(events) : store.insertEventsInTx(store.db, events);
  let done = false;
  let readerLast: EventId = '0';
  const reader = (async () => {
    while (!done) {
      const h = await store.horizon();
      const rows = await store.readEvents({ after: readerLast, upTo: h, limit: 1000, want: null });
      if (rows.length > 0) readerLast = rows[rows.length - 1]!.id;
      else await new Promise((r) => setTimeout(r, 1));
    }
  })();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_v, w) => {
      for (let i = 0; i < perWriter; i++) {
        await insert([{ type: 'COST', data: JSON.stringify({ w, i }) }]);
      }
    }),
  );
  const ms = performance.now() - t0;
  done = true;
  await reader;
  return (WRITERS * perWriter) / (ms / 1000);
}

/** Drains everything stored, 1000 events per read up to the horizon; events/s. */
async function drain(store: EventStore): Promise<number> {
  let last: EventId = '0';
  let n = 0;
  const target = await store.horizon();
  const t0 = performance.now();
  while (cmpIds(last, target) < 0) {
    // As the service's readers do: probe only near the head.
    const h = await store.horizonAbove(last, 1000);
    const rows = await store.readEvents({ after: last, upTo: h, limit: 1000, want: null });
    if (rows.length === 0) break;
    n += rows.length;
    last = rows[rows.length - 1]!.id;
  }
  return n / ((performance.now() - t0) / 1000);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string', default: 'sqlite,postgresql,mysql' },
      events: { type: 'string', default: '8000' },
    },
  });
  const kinds = values.db.split(',').filter(isDbKind);
  const perWriter = Math.ceil(Number(values.events) / WRITERS);
  console.log('| database | measure | before | after | ratio |');
  console.log('|---|---|---:|---:|---:|');
  for (const kind of kinds) {
    const why = unavailable(kind);
    if (why) {
      console.log(`| ${kind} | skipped: ${why} | | | |`);
      continue;
    }
    const row = (what: string, before: number, after: number): void =>
      console.log(
        `| ${kind} | ${what} | ${fmt(before)} | ${fmt(after)} | ${(after / before).toFixed(2)}× |`,
      );
    const run = async <T>(naive: boolean, work: (s: EventStore) => Promise<T>): Promise<T> => {
      const db = await FreshDb.create(kind);
      const store = await openStore(kind, db, naive);
      try {
        await migrate(store.db, store.dialect, { kind: 'active' });
        return await work(store);
      } finally {
        await store.close();
        await db.drop();
      }
    };
    const wNaive = await run(true, (s) => writers(s, perWriter, false));
    const wSafe = await run(false, (s) => writers(s, perWriter, false));
    row('16 writers + a reader, events/s (no horizon → horizon)', wNaive, wSafe);
    const fill = async (s: EventStore): Promise<void> => {
      for (let i = 0; i < 20; i++)
        await s.addEvents(
          Array.from({ length: 1000 }, (_v, k) => ({ type: 'COST', data: `{"k":${k}}` })),
        );
    };
    const dNaive = await run(true, async (s) => (await fill(s), drain(s)));
    const dSafe = await run(false, async (s) => (await fill(s), drain(s)));
    row('poll drain of 20,000, events/s (no horizon → horizon)', dNaive, dSafe);
    if (kind === 'postgresql') {
      const wQuiet = await run(false, (s) => writers(s, perWriter, false));
      const wNotify = await run(false, (s) => writers(s, perWriter, true));
      row('16 independent writers, events/s (no NOTIFY → NOTIFY per statement)', wQuiet, wNotify);
      const gQuiet = await run(false, (s) =>
        groupCommit(new QuietStore(s.db, s.dialect, { log }), perWriter),
      );
      const gNotify = await run(false, (s) => groupCommit(s, perWriter));
      row(
        '16 addEvent callers, group commit, events/s (no NOTIFY → NOTIFY per batch)',
        gQuiet,
        gNotify,
      );
    }
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
