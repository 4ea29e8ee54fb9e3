/**
 * Exactly-once effects across crashes: a consumer process (fixtures/transactional-consumer.ts,
 * a TransactionalReceiver on the plain driver) applies each event as a row with a unique key in
 * its own database — SQLite, PostgreSQL and MariaDB in turn — while our service pushes 10,000
 * events to it. It is killed with SIGKILL 20 times: by itself right after a commit, before its
 * answer (the service then sends the batch again); by itself in the middle of a batch, rows
 * inserted and not committed; and from outside, at whatever point it is. Each time a new process
 * takes over. Afterwards the table holds every event exactly once, in the order of the events.
 */
import { expect } from 'chai';
import path from 'path';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import type { StreamService } from '../../src/app/service';
import type { EventId } from '../../src/common/ids';
import { Child, killChildren } from '../support/cli';
import { DbFixture, describeDatabases } from '../support/db';
import { startService, TEST_CREDENTIALS } from '../support/service';
import { sleep } from '../support/wait';
import { appliedDdl, openSqlite } from './consumer-db';

const FIXTURE = path.join(__dirname, 'fixtures', 'transactional-consumer.ts');
const EVENTS = 10_000;
const KILLS = 20;
/** Bound of waiting for one consumer process to reach a point. */
const RUN_WAIT_MS = 60_000;

/** Where each run dies: by itself after the commit or mid-batch, or killed from outside. */
type KillMode = 'committed' | 'handler' | 'outside';
const MODES: readonly KillMode[] = ['committed', 'handler', 'outside'];

/** A seeded generator, so that a failing schedule can be replayed (EVT_EXACTLY_ONCE_SEED). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs one statement on the consumer's database with its plain driver. */
async function onConsumerDb<T>(fx: DbFixture, sql: string): Promise<T[]> {
  if (fx.dialect === 'postgresql') {
    const c = new Client({ connectionString: fx.url });
    await c.connect();
    try {
      return (await c.query(sql)).rows as T[];
    } finally {
      await c.end();
    }
  }
  if (fx.dialect === 'mysql') {
    const c = await mysql.createConnection(fx.url);
    try {
      const [rows] = await c.query(sql);
      return (Array.isArray(rows) ? rows : []) as T[];
    } finally {
      await c.end();
    }
  }
  const db = await openSqlite(fx.config.file ?? '');
  try {
    return await new Promise<T[]>((resolve, reject) =>
      db.all(sql, [], (err, rows) => (err ? reject(err) : resolve(rows as T[]))),
    );
  } finally {
    await new Promise((resolve) => db.close(resolve));
  }
}

/** The highest position an `applied <id>` line of the run reported, '0' if none. */
const appliedUpTo = (run: Child): number =>
  Math.max(0, ...[...run.stdout.matchAll(/^applied (\d+)$/gm)].map((m) => Number(m[1])));

describeDatabases('exactly-once effects: the consumer killed 20 times in 10,000 events', (fx) => {
  const serviceDb = new DbFixture('sqlite');
  let service: StreamService;
  const seed = Number(process.env['EVT_EXACTLY_ONCE_SEED'] ?? Date.now() % 1_000_000);

  before(async function () {
    this.timeout(60_000);
    await serviceDb.create();
    service = await startService(serviceDb);
    await onConsumerDb(fx, appliedDdl(fx.dialect, 'applied'));
  });
  after(async function () {
    this.timeout(60_000);
    await killChildren();
    await service?.close();
    await serviceDb.drop();
  });

  function consumer(env: Record<string, string>): Child {
    return new Child(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: {
        EVT_URL: service.wsUrl,
        EVT_CREDENTIALS: TEST_CREDENTIALS,
        EVT_COMPONENT: 'EXACT',
        EVT_DB_DIALECT: fx.dialect,
        EVT_DB: fx.dialect === 'sqlite' ? (fx.config.file ?? '') : fx.url,
        ...env,
      },
    });
  }

  it('has every event applied exactly once, in order', async function () {
    // Bounds a hang only: each step has its own wait; a loaded machine takes several times longer.
    this.timeout(600_000);
    const next = random(seed);
    const between = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
    const where = `seed ${seed} (EVT_EXACTLY_ONCE_SEED)`;
    const chunk = Math.ceil(EVENTS / (KILLS + 1));
    let written = 0;
    /** Adds the events up to `upTo` in small batches, a little apart, as a live stream. */
    const write = async (upTo: number): Promise<void> => {
      while (written < upTo) {
        const n = Math.min(between(1, 40), upTo - written);
        const ids = await service.store.addEvents(
          Array.from({ length: n }, (_, i) => ({
            type: 'APPLY',
            data: JSON.stringify({ n: written + i + 1 }),
          })),
        );
        expect(ids, 'the service numbers the events 1, 2, ...').to.deep.equal(
          Array.from({ length: n }, (_, i) => String(written + i + 1)),
        );
        written += n;
        // Pacing only: a stream the consumer takes in batches of many sizes.
        await sleep(between(0, 15));
      }
    };

    let writing: Promise<void> = Promise.resolve();
    let position = 0;
    const kills: Record<KillMode, number> = { committed: 0, handler: 0, outside: 0 };
    let redeliveredAfterCommitKill = 0;
    let previous: KillMode | null = null;
    for (let run = 1; run <= KILLS; run++) {
      const mode = MODES[run % MODES.length]!;
      // Somewhere in this run's part of the stream, after what is applied already.
      const target = Math.min(
        EVENTS - 1,
        Math.max(position + 1, between((run - 1) * chunk + 1, run * chunk)),
      );
      const child = consumer(
        mode === 'outside' ? {} : { EVT_KILL_POINT: mode, EVT_KILL_AT: String(target) },
      );
      const started = await child.waitForOutput(/^position (\d+)$/m, RUN_WAIT_MS);
      position = Number(started[1]);
      const upTo = Math.max(run * chunk, target);
      writing = writing.then(() => write(upTo));
      if (mode === 'outside') {
        await child.until(`applied ${target}`, () => appliedUpTo(child) >= target, RUN_WAIT_MS);
        child.kill();
      }
      const exit = await child.wait(RUN_WAIT_MS);
      expect(exit.signal, `run ${run} (${mode}), ${where}: ${child.describe()}`).to.equal(
        'SIGKILL',
      );
      kills[mode]++;
      if (previous === 'committed' && /^redelivered [1-9]\d*$/m.test(child.stdout)) {
        redeliveredAfterCommitKill++;
      }
      previous = mode;
      position = Math.max(position, appliedUpTo(child));
    }
    await writing;
    await write(EVENTS);
    const last = consumer({ EVT_LAST_ID: String(EVENTS) });
    const exit = await last.wait(RUN_WAIT_MS * 2);
    expect(exit.code, `the last run, ${where}: ${last.describe()}`).to.equal(0);
    expect(last.stdout).to.match(/^done$/m);

    const planned = (mode: KillMode): number =>
      Array.from({ length: KILLS }, (_, i) => MODES[(i + 1) % MODES.length]).filter(
        (m) => m === mode,
      ).length;
    expect(kills).to.deep.equal({
      committed: planned('committed'),
      handler: planned('handler'),
      outside: planned('outside'),
    });
    // Each run after a kill between commit and answer got that batch again (the service had not
    // seen it acknowledged), and applied none of it twice (the table below shows that).
    expect(redeliveredAfterCommitKill, where).to.equal(planned('committed'));
    const rows = await onConsumerDb<{ event_id: string }>(
      fx,
      'SELECT event_id FROM applied ORDER BY seq',
    );
    const applied: EventId[] = rows.map((r) => r.event_id);
    const expected = Array.from({ length: EVENTS }, (_, i) => String(i + 1));
    expect(applied.length, where).to.equal(EVENTS);
    expect(applied, where).to.deep.equal(expected);
    const [state] = await onConsumerDb<{ last_id: string }>(
      fx,
      "SELECT last_id FROM evt_consumer_state WHERE consumer = 'EXACT'",
    );
    expect(state?.last_id).to.equal(String(EVENTS));
  });
});
