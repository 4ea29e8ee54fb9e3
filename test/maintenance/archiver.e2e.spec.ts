/**
 * DBEventArchiver against our real service and real databases: the warehouse of each test is a
 * second fresh database, often of another kind than the active store. Whatever happens — new
 * events arriving during the copy, a batch failing inside its warehouse transaction, the
 * archiver stopped with batches in flight, the warehouse server unreachable — the warehouse ends
 * with exactly the committed events, none twice, and the archiver's pointer in the active store
 * never runs ahead of the warehouse.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { expect } from 'chai';
import AutoConfig from 'futoin-database/AutoConfig';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import { SPEC_DIRS_ALL } from '../../src/common/constants';
import { DBPollService } from '../../src/delivery/poll/DBPollService';
import { DBEventArchiver, type ArchiverStartOptions } from '../../src/maintenance/DBEventArchiver';
import type { Logger } from '../../src/common/log';
import { describeConnection, type ConnectionConfig } from '../../src/storage/config';
import type { WarehouseSource } from '../../src/storage/history';
import { openClient } from '../../src/storage/open';
import type { Dialect } from '../../src/storage/sql';
import { EventStore, type StoredEvent } from '../../src/storage/store';
import { DbFixture, describeDatabases, futoinDbEnv, testLog } from '../support/db';
import { startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { sqlFor } from '../support/sql';
import { sleep, waitFor, withTimeout } from '../support/wait';
import { RecordingClient, TcpProxy } from './support';

/** Bound of a wait (ms) where no other is given: archiving to a warehouse takes its time. */
const ARCHIVE_WAIT_MS = 60_000;

/** A warehouse of another kind than the active store, so every pairing of kinds is used. */
const MIXED: Record<Dialect, Dialect> = {
  sqlite: 'postgresql',
  postgresql: 'mysql',
  mysql: 'sqlite',
};
/** A warehouse on a server, for the test that takes the server away. */
const NETWORKED: Record<Dialect, 'postgresql' | 'mysql'> = {
  sqlite: 'postgresql',
  postgresql: 'mysql',
  mysql: 'postgresql',
};

const LAST_POSSIBLE_ID = '999999999999999999';

/** A history table of the user's own, made as the migrations make evt_history. */
const ARCHIVE_TABLE_DDL: Record<Dialect, string> = {
  sqlite:
    'CREATE TABLE evt_archive (id INTEGER NOT NULL PRIMARY KEY, type VARCHAR(16) NOT NULL, ' +
    'data TEXT NOT NULL, ts TIMESTAMP NOT NULL)',
  postgresql:
    'CREATE TABLE evt_archive (id BIGINT NOT NULL PRIMARY KEY, type VARCHAR(16) NOT NULL, ' +
    'data JSON NOT NULL, ts TIMESTAMP NOT NULL)',
  mysql:
    'CREATE TABLE evt_archive (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, ' +
    'type VARCHAR(16) NOT NULL, data LONGTEXT NOT NULL, ts DATETIME NOT NULL) ' +
    'ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci',
};

/** Deferred clean-ups of one test, run after it (last first), also when it failed. */
function useCleanup(): (fn: () => unknown) => void {
  let fns: (() => unknown)[] = [];
  afterEach(async function () {
    this.timeout(60_000);
    const todo = fns.reverse();
    fns = [];
    for (const fn of todo) await fn();
  });
  return (fn) => fns.push(fn);
}

/** What an archiver reported. */
interface Seen {
  ready: number;
  processed: number;
  newEvents: number;
  receiverErrors: string[];
  workerErrors: string[];
}

function watch(archiver: DBEventArchiver): Seen {
  const seen: Seen = { ready: 0, processed: 0, newEvents: 0, receiverErrors: [], workerErrors: [] };
  archiver.on('ready', () => seen.ready++);
  archiver.on('newEvents', (events) => (seen.newEvents += events.length));
  archiver.on('processedEvents', (events) => (seen.processed += events.length));
  archiver.on('receiverError', (code, info) => seen.receiverErrors.push(`${code}: ${info ?? ''}`));
  archiver.on('workerError', (code, info) => seen.workerErrors.push(`${code}: ${info ?? ''}`));
  return seen;
}

/** The futoin-database AutoConfig variables of `#db.evtdwh` for a connection. */
function dwhEnv(config: ConnectionConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(futoinDbEnv(config))) {
    env[k.replace(/^DB_EVT_/, 'DB_EVTDWH_')] = v;
  }
  return env;
}

const readAll = (store: EventStore, table: string): Promise<StoredEvent[]> =>
  store.readEvents({ after: '0', upTo: LAST_POSSIBLE_ID, limit: 10_000_000, want: null, table });

async function idsOf(store: EventStore, table: string): Promise<string[]> {
  const d = sqlFor(store.dialect.name);
  const rows = await store.db.query<{ id: string }>(
    // Ordered by the column, not by its text alias.
    `SELECT ${d.idText('t.id')} AS id FROM ${d.quote(table)} t ORDER BY t.id`,
  );
  return rows.map((r) => r.id);
}

const count = async (store: EventStore, table: string): Promise<number> => {
  const [row] = await store.db.query<{ n: unknown }>(
    `SELECT COUNT(*) AS n FROM ${sqlFor(store.dialect.name).quote(table)}`,
  );
  return Number(row?.n);
};

describeDatabases('DBEventArchiver', (fx) => {
  let service: StreamService;
  const defer = useCleanup();

  before(async () => {
    service = await startService(fx);
  });
  after(() => service?.close());

  let serial = 0;
  /** Stores `n` events directly, `batch` per transaction; resolves with their IDs. */
  const addEvents = async (n: number, batch = 250, type = 'ARCH'): Promise<string[]> => {
    const ids: string[] = [];
    for (let done = 0; done < n; done += batch) {
      const events = Array.from({ length: Math.min(batch, n - done) }, () => {
        const i = ++serial;
        return {
          type: i % 3 === 0 ? `${type}_B` : type,
          data: JSON.stringify({
            i,
            s: 'ünïcode 😀 "quoted" \\ /',
            n: [1, 2.5, -3, null, true],
            big: 9007199254740991,
            nested: { a: { b: [i] } },
          }),
        };
      });
      ids.push(...(await service.store.addEvents(events)));
    }
    return ids;
  };

  /** A fresh warehouse database of `dialect` (the test is skipped when there is no server). */
  async function warehouseDb(ctx: Mocha.Context, dialect: Dialect): Promise<DbFixture> {
    const wfx = new DbFixture(dialect);
    if (!wfx.available) {
      if (process.env['CI'] === 'true') throw new Error(`No ${dialect} server (CI=true)`);
      ctx.skip();
    }
    await wfx.create();
    defer(() => wfx.drop());
    return wfx;
  }

  /** A store on the warehouse to read evt_history with (the archiver creates the table). */
  async function reader(wfx: DbFixture): Promise<EventStore> {
    const store = await EventStore.open(wfx.config, { log: testLog });
    defer(() => store.close());
    return store;
  }

  /** An archiver writing to `warehouse` (by default, the `#db.evtdwh` of `ccm`). */
  function archiverOn(
    warehouse: WarehouseSource | null,
    ccm = new AdvancedCCM(),
    log: Logger = testLog,
  ): { archiver: DBEventArchiver; seen: Seen } {
    const archiver = new DBEventArchiver(ccm, {
      log,
      ...(warehouse ? { warehouse } : {}),
    });
    const seen = watch(archiver);
    defer(async () => {
      archiver.stop();
      ccm.close();
      await archiver.whenStopped();
    });
    return { archiver, seen };
  }

  /** Waits until the warehouse holds as many events as the active store. */
  async function caughtUp(history: EventStore, seen: Seen, ms = 120_000): Promise<void> {
    // The archiver creates the table before it receives anything.
    await waitFor(
      () => `ready (${JSON.stringify(seen)})`,
      () => seen.ready > 0,
      ms,
    );
    let have = 0;
    let want = 0;
    await waitFor(
      () => `the warehouse to catch up (${have} of ${want}; ${JSON.stringify(seen)})`,
      async () => {
        want = await count(service.store, 'evt_queue');
        have = await count(history, 'evt_history');
        return have >= want;
      },
      ms,
    );
  }

  /** The warehouse holds exactly the committed events, each once and equal to its original. */
  async function expectExactCopy(history: EventStore): Promise<void> {
    const active = await readAll(service.store, 'evt_queue');
    const copied = await readAll(history, 'evt_history');
    expect(copied.length, 'events in the warehouse').to.equal(active.length);
    expect(copied.map((e) => e.id)).to.deep.equal(active.map((e) => e.id));
    const ids = await idsOf(history, 'evt_history');
    expect(new Set(ids).size, 'distinct IDs').to.equal(ids.length);
    expect(ids.length).to.equal(active.length);
    // Every event, not a sample: type, JSON text and UTC timestamp as stored in the active store.
    for (let i = 0; i < active.length; i++) {
      const a = active[i]!;
      const c = copied[i]!;
      if (a.type !== c.type || a.data !== c.data || a.ts !== c.ts) {
        expect(c, `event ${a.id}`).to.deep.equal(a);
      }
    }
  }

  const pointer = (component: string): Promise<string | null> =>
    service.store.consumerPointer(`${TEST_USER}:${component}`);

  it('archives 20,000 events while new ones arrive, each exactly once, in multi-statement transactions', async function () {
    this.timeout(300_000);
    const wfx = await warehouseDb(this, MIXED[fx.dialect]);
    const client = new RecordingClient(await openClient(wfx.config, testLog));
    defer(() => client.close());
    const history = await reader(wfx);
    await addEvents(5_000, 500);
    const { archiver, seen } = archiverOn(client);
    archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ARCH_BULK' });
    // The rest arrives while the backlog is being archived.
    await waitFor('the first archived batch', () => seen.processed > 0, ARCHIVE_WAIT_MS);
    const added = await addEvents(15_000, 250);
    await caughtUp(history, seen);
    await expectExactCopy(history);
    expect(seen.receiverErrors).to.deep.equal([]);
    // The backlog came in batches of 1000: two INSERTs of 500 rows, in one transaction each.
    expect(Math.max(...client.committed), 'INSERTs in one transaction').to.equal(2);
    await waitFor(
      'the pointer to reach the last event',
      async () => (await pointer('ARCH_BULK')) === added[added.length - 1],
      ARCHIVE_WAIT_MS,
    );
  });

  it('archives events of 1 MiB (batches of up to 8 MiB) exactly', async function () {
    this.timeout(180_000);
    const wfx = await warehouseDb(this, MIXED[fx.dialect]);
    const history = await reader(wfx);
    const big = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 20; i++) {
      await service.store.addEvents([{ type: 'ARCH_BIG', data: JSON.stringify({ i, big }) }]);
    }
    const { archiver, seen } = archiverOn(wfx.config);
    archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ARCH_BIG' });
    await caughtUp(history, seen);
    await expectExactCopy(history);
  });

  it('a batch failing inside its transaction, or an archiver stopped with batches in flight, loses and duplicates nothing', async function () {
    this.timeout(300_000);
    const wfx = await warehouseDb(this, fx.dialect);
    const client = new RecordingClient(await openClient(wfx.config, testLog));
    defer(() => client.close());
    const history = await reader(wfx);
    await addEvents(20_000, 1000);

    // 1. The first three multi-statement batches fail after their first INSERT.
    client.failAfterFirstInsert = 3;
    const first = archiverOn(client);
    first.archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ARCH_KILL' });
    await waitFor(
      () => `3 injected failures (${client.failures})`,
      () => client.failures === 3,
      ARCHIVE_WAIT_MS,
    );
    expect(client.leaked, 'rows of a failed transaction stored anyway').to.equal(0);
    // The archiver counts a failure once the rejection reaches it, a moment after the client.
    await waitFor(
      () => `3 failed batches counted (${first.archiver.counters.writeFailures})`,
      () => first.archiver.counters.writeFailures === 3,
    );

    // 2. Stopped in the middle of a warehouse transaction, once it copied 8,000 events: that
    // transaction commits, but its batch is never acknowledged. A new archiver takes over.
    let stoppedAt = 0;
    client.beforeCommit = () => {
      if (stoppedAt || client.committed.length < 8) return;
      stoppedAt = Date.now();
      first.archiver.stop();
    };
    await waitFor('the first archiver to be stopped', () => stoppedAt > 0, ARCHIVE_WAIT_MS);
    await first.archiver.whenStopped();
    const before = new Set(await idsOf(history, 'evt_history'));
    const second = archiverOn(wfx.config);
    const again: string[] = [];
    second.archiver.on('processedEvents', (events) => {
      for (const e of events) if (before.has(e.id)) again.push(e.id);
    });
    second.archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ARCH_KILL' });
    await addEvents(2_000, 100);
    await caughtUp(history, second.seen);
    await expectExactCopy(history);
    expect(first.seen.receiverErrors.length, 'failures reported').to.be.at.least(3);
    expect(again.length, 'events of the unacknowledged batch, delivered again').to.be.above(0);

    // 3. Everything delivered again (a new component starts at the beginning): nothing changes.
    second.archiver.stop();
    await second.archiver.whenStopped();
    const replay = archiverOn(wfx.config);
    replay.archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ARCH_REPLAY' });
    const last = (await idsOf(service.store, 'evt_queue')).pop();
    await waitFor(
      () => `the replay to finish (${JSON.stringify(replay.seen)})`,
      async () => (await pointer('ARCH_REPLAY')) === last,
      120_000,
    );
    expect(replay.seen.processed).to.be.at.least(22_000);
    await expectExactCopy(history);
  });

  it('retries while the warehouse server is unreachable; its pointer waits; nothing is lost', async function () {
    this.timeout(300_000);
    const wfx = await warehouseDb(this, NETWORKED[fx.dialect]);
    const history = await reader(wfx);
    // The archiver reaches the warehouse through a proxy this test closes and opens again:
    // the shared database server itself is never stopped.
    const proxy = new TcpProxy(
      wfx.config.host ?? '127.0.0.1',
      wfx.config.port ?? (wfx.dialect === 'postgresql' ? 5432 : 3306),
    );
    await proxy.open();
    defer(() => proxy.close());
    const { archiver, seen } = archiverOn({ ...wfx.config, host: '127.0.0.1', port: proxy.port });
    archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ARCH_DOWN' });
    await addEvents(2_000, 200);
    await caughtUp(history, seen);

    await proxy.close();
    await addEvents(500, 50);
    // The pointer may still move for a batch committed just before the cut: read it once
    // failures have been reported for a while.
    await waitFor('failed writes', () => seen.receiverErrors.length >= 2, 60_000);
    const downAt = seen.receiverErrors.length;
    await waitFor('more failed writes', () => seen.receiverErrors.length >= downAt + 1, 60_000);
    const held = await pointer('ARCH_DOWN');
    const stored = await count(history, 'evt_history');
    await addEvents(500, 50);
    await waitFor('more failed writes', () => seen.receiverErrors.length >= downAt + 3, 60_000);
    expect(await pointer('ARCH_DOWN'), 'the pointer while the warehouse is down').to.equal(held);
    expect(await count(history, 'evt_history'), 'rows while the warehouse is down').to.equal(
      stored,
    );
    const archived = await idsOf(history, 'evt_history');
    expect(archived, 'the pointer never passes what the warehouse holds').to.include(held);

    await proxy.open();
    await caughtUp(history, seen);
    await expectExactCopy(history);
    const last = (await idsOf(service.store, 'evt_queue')).pop();
    await waitFor(
      'the pointer to catch up',
      async () => (await pointer('ARCH_DOWN')) === last,
      ARCHIVE_WAIT_MS,
    );
  });

  it('a history table the warehouse lacks is one clear InvalidConfig, not retried, nothing acknowledged; it archives once the table is there', async function () {
    this.timeout(180_000);
    const wfx = await warehouseDb(this, MIXED[fx.dialect]);
    const history = await reader(wfx);
    const where = describeConnection(wfx.config);
    let ids = await addEvents(30, 10, 'ARCH_NOTAB');
    const logged: string[] = [];
    const { archiver, seen } = archiverOn(wfx.config, undefined, {
      ...testLog,
      error: (msg: string) => logged.push(msg),
    });
    const options: ArchiverStartOptions = {
      component: 'ARCH_NOTAB',
      history_table: 'evt_archive',
      want: ['ARCH_NOTAB', 'ARCH_NOTAB_B'],
      // A retry loop would show many errors at once.
      reconnectMinMS: 10,
      reconnectMaxMS: 20,
    };
    /** Starts the archiver and waits until it reports its next workerError and stops. */
    const failedStart = async (): Promise<string> => {
      const before = seen.workerErrors.length;
      archiver.start(service.wsUrl, TEST_CREDENTIALS, options);
      await waitFor(
        () => `a workerError (${JSON.stringify(seen)})`,
        () => seen.workerErrors.length > before,
        30_000,
      );
      // It stops by itself; any retry would add errors meanwhile (time itself, since a retry
      // would come after a backoff).
      await archiver.whenStopped();
      await sleep(1_000);
      expect(seen.workerErrors, 'workerErrors').to.have.length(before + 1);
      expect(logged, 'errors logged').to.have.length(before + 1);
      expect(logged[before]).to.include(seen.workerErrors[before]!.replace(/^InvalidConfig: /, ''));
      return seen.workerErrors[before]!;
    };

    // 1. No such table.
    expect(await failedStart()).to.equal(
      `InvalidConfig: The history table "evt_archive" does not exist in ${where}: ` +
        'create it (columns id, type, data, ts, like evt_history), or archive to another table',
    );
    expect(seen.ready, 'ready').to.equal(0);
    expect(seen.newEvents, 'events received').to.equal(0);
    // What /metrics shows: stopped, one error, nothing archived.
    expect(archiver.counters).to.deep.include({
      running: false,
      workerErrors: 1,
      events: 0,
      lastId: null,
      lastSuccessMs: 0,
    });
    expect(seen.receiverErrors).to.deep.equal([]);
    expect(await pointer('ARCH_NOTAB'), 'the consumer, never registered').to.equal(null);
    expect(await count(history, 'evt_history'), 'rows in evt_history').to.equal(0);
    // The service serves on.
    ids = [...ids, ...(await addEvents(30, 10, 'ARCH_NOTAB'))];

    // 2. A table without all the columns.
    await history.db.execute(
      'CREATE TABLE evt_archive (id BIGINT NOT NULL PRIMARY KEY, type VARCHAR(16) NOT NULL)',
    );
    expect(await failedStart()).to.equal(
      `InvalidConfig: The history table "evt_archive" in ${where} has no column data, ts: ` +
        'it needs id, type, data, ts, like evt_history',
    );
    expect(await count(history, 'evt_archive'), 'rows in evt_archive').to.equal(0);

    // 3. Created as it must be: started again, the archiver copies everything.
    await history.db.execute('DROP TABLE evt_archive');
    await history.db.execute(ARCHIVE_TABLE_DDL[wfx.dialect]);
    archiver.start(service.wsUrl, TEST_CREDENTIALS, options);
    await waitFor(
      () => `evt_archive to fill (${JSON.stringify(seen)})`,
      async () => (await count(history, 'evt_archive')) >= ids.length,
      ARCHIVE_WAIT_MS,
    );
    expect(await idsOf(history, 'evt_archive')).to.deep.equal(ids);
    expect(seen.workerErrors, 'no more errors').to.have.length(2);
    expect(seen.receiverErrors).to.deep.equal([]);
    await waitFor('the last batch counted', () => archiver.counters.lastId === ids[ids.length - 1]);
    expect(archiver.counters).to.deep.include({
      running: true,
      workerErrors: 2,
      writeFailures: 0,
      events: ids.length,
    });
    expect(archiver.counters.batches).to.be.within(1, ids.length);
    expect(archiver.counters.lastSuccessMs).to.be.within(Date.now() - 60_000, Date.now());
  });

  it('polls when the endpoint is HTTP (no bi-directional channel) and archives everything', async function () {
    this.timeout(180_000);
    const wfx = await warehouseDb(this, fx.dialect);
    const history = await reader(wfx);
    await addEvents(3_000, 500);
    const { archiver, seen } = archiverOn(wfx.config);
    archiver.start(service.url, TEST_CREDENTIALS, { component: 'ARCH_POLL' });
    await addEvents(3_000, 100);
    await caughtUp(history, seen);
    await expectExactCopy(history);
    expect(seen.ready).to.be.at.least(1);
    expect(await service.sessions(), 'push sessions').to.equal(0);
    // Acknowledged by the next poll, once archived.
    const last = (await idsOf(service.store, 'evt_queue')).pop();
    await waitFor(
      'the acknowledgement',
      async () => (await pointer('ARCH_POLL')) === last,
      ARCHIVE_WAIT_MS,
    );
  });

  it('switches to polling when the service does not push', async function () {
    this.timeout(120_000);
    const wfx = await warehouseDb(this, MIXED[fx.dialect]);
    const history = await reader(wfx);
    // An in-process service offering futoin.evt.poll only.
    const pollCcm = new AdvancedCCM();
    const pollOnly = new Executor(pollCcm, { specDirs: SPEC_DIRS_ALL });
    defer(() => {
      pollOnly.close();
      pollCcm.close();
    });
    await steps((as) => {
      DBPollService.register(as, pollOnly, { store: service.store });
    });
    await addEvents(1_000, 250);
    const { archiver, seen } = archiverOn(wfx.config);
    archiver.start(pollOnly, null, { component: 'ARCH_NOPUSH' });
    await caughtUp(history, seen);
    await expectExactCopy(history);
    expect(seen.workerErrors[0]).to.match(/^UnknownInterface/);
  });

  it('takes #db.evtdwh from futoin-database, emits its events, and stops when the CCM closes', async function () {
    this.timeout(120_000);
    const wfx = await warehouseDb(this, MIXED[fx.dialect]);
    const history = await reader(wfx);
    const ccm = new AdvancedCCM();
    await steps((as) => AutoConfig(as, ccm, { evtdwh: {} }, dwhEnv(wfx.config)));
    const { archiver, seen } = archiverOn(null, ccm);
    expect(DBEventArchiver.COMPONENT).to.equal('ARCHIVER');
    const ready = new Promise<void>((resolve) => archiver.once('ready', () => resolve()));
    archiver.start(service.wsUrl, TEST_CREDENTIALS);
    await ready;
    await addEvents(300, 30);
    await caughtUp(history, seen);
    await expectExactCopy(history);
    await waitFor(
      'processedEvents',
      () => seen.processed >= 300 && seen.newEvents >= 300,
      ARCHIVE_WAIT_MS,
    );
    expect(await pointer('ARCHIVER')).to.not.equal(null);
    expect(() => archiver.start(service.wsUrl, TEST_CREDENTIALS)).to.throw(/already started/);

    ccm.close();
    await archiver.whenStopped();
    await waitFor(
      'the push session to end',
      async () => (await service.sessions()) === 0,
      ARCHIVE_WAIT_MS,
    );
  });

  for (const mode of ['push', 'poll'] as const) {
    it(`an archiver process exits by itself once stopped (${mode})`, async function () {
      this.timeout(120_000);
      const wfx = await warehouseDb(this, MIXED[fx.dialect]);
      await addEvents(200, 100);
      const component = `ARCH_EXIT_${mode.toUpperCase()}`;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(__dirname, 'fixtures', 'archiver-process.ts')],
        {
          cwd: path.join(__dirname, '..', '..'),
          env: {
            ...process.env,
            ...dwhEnv(wfx.config),
            EVT_URL: mode === 'push' ? service.wsUrl : service.url,
            EVT_CREDENTIALS: TEST_CREDENTIALS,
            EVT_COMPONENT: component,
            EVT_MODE: mode,
            EVT_COUNT: '200',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      defer(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.once('exit', (code) => resolve(code)),
      );
      await waitFor(
        () => `the child to stop (stderr: ${err})`,
        () => out.includes('stopped'),
        ARCHIVE_WAIT_MS,
      );
      const code = await withTimeout(
        exited,
        () => `the exit after stop (stdout: ${out}, stderr: ${err})`,
      );
      expect(code, `exit after stop (stdout: ${out}, stderr: ${err})`).to.equal(0);
      expect(out).to.match(/archived \d+/);
    });
  }
});

describe('DBEventArchiver options', () => {
  const file = path.join(os.tmpdir(), `evt_t_${process.pid}_archiver_options.sqlite`);
  const warehouse: ConnectionConfig = { dialect: 'sqlite', file };
  let ccm: AdvancedCCM;
  beforeEach(() => {
    ccm = new AdvancedCCM();
  });
  afterEach(() => ccm.close());
  after(() => {
    for (const ext of ['', '-wal', '-shm']) fs.rmSync(`${file}${ext}`, { force: true });
  });

  it('needs #db.evtdwh or options.warehouse', () => {
    expect(() => new DBEventArchiver(ccm)).to.throw(/#db\.evtdwh/);
  });

  it('refuses what cannot work, at start()', () => {
    const archiver = new DBEventArchiver(ccm, { warehouse, log: testLog });
    const bad: [unknown, ArchiverStartOptions][] = [
      ['http://127.0.0.1:1/', { mode: 'push' }],
      ['ftp://127.0.0.1:1/', {}],
      ['ws://127.0.0.1:1/', { component: 'LIVE' }],
      ['ws://127.0.0.1:1/', { history_table: 'evt history' }],
      ['ws://127.0.0.1:1/', { mode: 'pull' as 'poll' }],
      ['ws://127.0.0.1:1/', { pollMinMS: 0 }],
    ];
    for (const [endpoint, options] of bad) {
      expect(() => archiver.start(endpoint, null, options), JSON.stringify(options)).to.throw();
    }
  });

  it('keeps retrying an unreachable service, reporting workerError, until stopped', async () => {
    const archiver = new DBEventArchiver(ccm, { warehouse, log: testLog });
    const seen = watch(archiver);
    archiver.start('ws://127.0.0.1:1/', 'a:b', { reconnectMinMS: 10, reconnectMaxMS: 20 });
    await waitFor('workerErrors', () => seen.workerErrors.length >= 3, 20_000);
    expect(seen.ready).to.equal(0);
    archiver.stop();
    await archiver.whenStopped();
  });
});
