/**
 * DBServiceApp, the all-in-one set-up, configured the way the reference's is (futoin-database
 * AutoConfig variables), on every database with a warehouse of another kind; and the same event
 * lifecycle from the command line: `evtstream serve --dwh URL --discard`.
 */
import { expect } from 'chai';
import os from 'os';
import path from 'path';
import type { L2Face, XferBuilder } from 'futoin-database';
import { AdvancedCCM } from 'futoin-invoker';
import { DBServiceApp } from '../../src/app/DBServiceApp';
import type { DBGenFace } from '../../src/generation/DBGenFace';
import { GenFace } from '../../src/common/faces/GenFace';
import type { PollFace } from '../../src/common/faces/PollFace';
import type { EventStore, StoredEvent } from '../../src/storage/store';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import { loadDatabaseModules } from '../../src/storage/preload';
import type { Dialect } from '../../src/storage/sql';
import { requireFreshDist, killChildren, startCliServer } from '../support/cli';
import { DbFixture, describeDatabases, futoinDbEnv, hangingUpServer, testLog } from '../support/db';
import { clientCcm, steps, TEST_CREDENTIALS } from '../support/service';
import { sleep, waitFor, waitForValue } from '../support/wait';

/** Bound of a wait (ms) where no other is given: archiving to a warehouse takes its time. */
const ARCHIVE_WAIT_MS = 60_000;

const MIXED: Record<Dialect, Dialect> = {
  sqlite: 'postgresql',
  postgresql: 'mysql',
  mysql: 'sqlite',
};
const LAST_POSSIBLE_ID = '999999999999999999';

const readAll = (store: EventStore, table: string): Promise<StoredEvent[]> =>
  store.readEvents({ after: '0', upTo: LAST_POSSIBLE_ID, limit: 1_000_000, want: null, table });

interface PolledEvent {
  id: string;
  type: string;
  data: unknown;
}

/** A fresh database of `dialect` for one suite (the suite is skipped when there is no server). */
function useDatabase(dialect: Dialect): DbFixture {
  const wfx = new DbFixture(dialect);
  before(async function () {
    if (!wfx.available) {
      if (process.env['CI'] === 'true') throw new Error(`No ${dialect} server (CI=true)`);
      this.skip();
    }
    await wfx.create();
  });
  after(() => wfx.drop());
  return wfx;
}

describeDatabases('DBServiceApp', (fx) => {
  const wfx = useDatabase(MIXED[fx.dialect]);
  let app: DBServiceApp | null = null;
  let history: EventStore;

  before(async function () {
    this.timeout(60_000);
    // As the reference takes its configuration: DB_EVT_* and DB_EVTDWH_*.
    const databaseConfig: Record<string, string> = { ...futoinDbEnv(fx.config) };
    for (const [k, v] of Object.entries(futoinDbEnv(wfx.config))) {
      databaseConfig[k.replace(/^DB_EVT_/, 'DB_EVTDWH_')] = v;
    }
    app = await DBServiceApp.start({
      databaseConfig,
      enableArchiver: true,
      // A long period: the test runs the passes itself.
      enableDiscarder: true,
      discarderOptions: { poll_period_ms: 3_600_000 },
      log: testLog,
    });
    history = await wfx.openStore();
  });
  after(() => app?.close());

  const call = <T>(body: (as: Parameters<Parameters<typeof steps>[0]>[0]) => void): Promise<T> =>
    steps<T>(body);

  let ids: string[] = [];

  it('adds events with #evtgen, standalone and in the caller’s #db.evt transaction', async () => {
    const ccm = app!.ccm();
    await call((as) => ccm.iface<PollFace>('#evtpoll').registerConsumer(as, 'APP'));
    const first = await call<string>((as) =>
      ccm.iface<DBGenFace>('#evtgen').addEvent(as, 'ORDER_PLACED', { order: 1, total: '9.99' }),
    );
    await call((as) => {
      const db = ccm.iface<L2Face>('#db.evt');
      const xfer: XferBuilder = db.newXfer();
      ccm.iface<DBGenFace>('#evtgen').addXferEvent(xfer, 'ORDER_PAID', { order: 1 });
      xfer.execute(as);
    });
    const events = await readAll(app!.store!, 'evt_queue');
    expect(events.map((e) => e.type)).to.deep.equal(['ORDER_PLACED', 'ORDER_PAID']);
    expect(events[0]!.id).to.equal(first);
    ids = events.map((e) => e.id);
  });

  it('serves them to a reliable consumer with #evtpoll', async () => {
    const poll = app!.ccm().iface<PollFace>('#evtpoll');
    const got = await call<PolledEvent[]>((as) => poll.pollEvents(as, 'APP', null, null));
    expect(got.map((e) => [e.id, e.type, e.data])).to.deep.equal([
      [ids[0], 'ORDER_PLACED', { order: 1, total: '9.99' }],
      [ids[1], 'ORDER_PAID', { order: 1 }],
    ]);
  });

  it('archives them to the warehouse of another kind', async function () {
    this.timeout(60_000);
    // The archiver creates evt_history (its warehouse migrations) once it runs: start() does
    // not wait for that.
    await waitFor(
      'the archiver to copy both events',
      async () => (await readAll(history, 'evt_history').catch(() => [])).length >= ids.length,
      ARCHIVE_WAIT_MS,
    );
    const copied = await readAll(history, 'evt_history');
    expect(copied.map((e) => [e.id, e.type])).to.deep.equal([
      [ids[0], 'ORDER_PLACED'],
      [ids[1], 'ORDER_PAID'],
    ]);
  });

  it('discards nothing a registered consumer has not acknowledged', async () => {
    // APP polled from the start but acknowledged nothing yet (its pointer is still 0).
    const pass = await app!.discarder!.runPass();
    expect(pass.deleted).to.equal(0);
    expect(await readAll(app!.store!, 'evt_queue')).to.have.length(2);
  });

  it('discards what every consumer acknowledged, keeping the newest event', async function () {
    this.timeout(30_000);
    const poll = app!.ccm().iface<PollFace>('#evtpoll');
    // Polling after the last event acknowledges both.
    const more = await call<PolledEvent[]>((as) => poll.pollEvents(as, 'APP', ids[1], null));
    expect(more).to.deep.equal([]);
    // The archiver acknowledges asynchronously, after its warehouse transaction committed.
    let deleted = 0;
    await waitFor(
      'the discarder to delete the first event',
      async () => {
        deleted += (await app!.discarder!.runPass()).deleted;
        return deleted >= 1;
      },
      ARCHIVE_WAIT_MS,
    );
    expect(deleted).to.equal(1);
    expect((await readAll(app!.store!, 'evt_queue')).map((e) => e.id)).to.deep.equal([ids[1]]);
    expect(await readAll(history, 'evt_history')).to.have.length(2);
  });

  it('close() stops everything once, and the databases can go', async function () {
    this.timeout(30_000);
    const a = app!;
    const closing = a.close();
    expect(a.close()).to.equal(closing);
    await closing;
    app = null;
    await a.archiver!.whenStopped();
    let failed = '';
    await a
      .store!.db.query('SELECT 1')
      .catch((err: Error) => (failed = err.message || String(err)));
    expect(failed, 'the store is closed').to.not.equal('');
  });
});

describeDatabases('DBServiceApp on a CCM with #db.evt already registered', (fx) => {
  let ccm: AdvancedCCM;
  let app: DBServiceApp | undefined;

  before(async function () {
    this.timeout(60_000);
    ccm = new AdvancedCCM();
    await steps((as) => {
      registerFutoinDb(as, ccm, 'evt', fx.config, testLog);
      app = new DBServiceApp(as, { ccm, log: testLog });
    });
  });
  after(() => app?.close());

  it('serves on that database (migrating it) with gen and push/poll faces', async () => {
    const id = await steps<string>((as) =>
      ccm.iface<DBGenFace>('#evtgen').addEvent(as, 'HELLO', { n: 1 }),
    );
    const poll = ccm.iface<PollFace>('#evtpoll');
    await steps((as) => poll.registerConsumer(as, 'C'));
    const got = await steps<PolledEvent[]>((as) => poll.pollEvents(as, 'C', null, ['HELLO']));
    expect(got.map((e) => [e.id, e.type, e.data])).to.deep.equal([[id, 'HELLO', { n: 1 }]]);
  });

  it('closes when the CCM closes', async function () {
    this.timeout(30_000);
    const executorClosed = new Promise<void>((resolve) => app!.executor().once('close', resolve));
    ccm.close();
    await executorClosed;
    await app!.close();
    app = undefined;
  });
});

describeDatabases('evtstream serve --dwh --discard', (fx) => {
  const wfx = useDatabase(MIXED[fx.dialect]);
  before(requireFreshDist);
  after(killChildren);

  it('archives every event and discards what all consumers have', async function () {
    this.timeout(120_000);
    const server = await startCliServer(
      ['--db', fx.url, '--dwh', wfx.url, '--discard', '--discard-every', '100ms'],
      { env: { EVTSTREAM_USERS: TEST_CREDENTIALS, EVTSTREAM_LOG: 'info' } },
    );
    expect(server.child.stdout + server.child.stderr).to.match(
      /archiving to .*discarding delivered events/,
    );
    const ccm = clientCcm();
    try {
      await steps((as) =>
        GenFace.register(
          as,
          ccm,
          'gen',
          server.wsUrl.replace(/^ws/, 'secure+ws'),
          TEST_CREDENTIALS,
        ),
      );
      const gen = ccm.iface<GenFace>('gen');
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        ids.push(await steps<string>((as) => gen.addEvent(as, 'CLI_EV', { i })));
      }
      const history = await wfx.openStore();
      const active = await fx.openStore();
      // With the archiver as the only consumer, everything it copied goes but the newest event.
      await waitFor(
        'the archive to fill and the active store to shrink to one event',
        async () =>
          (await readAll(history, 'evt_history')).length === ids.length &&
          (await readAll(active, 'evt_queue')).length === 1,
        ARCHIVE_WAIT_MS,
      );
      expect((await readAll(history, 'evt_history')).map((e) => e.id)).to.deep.equal(ids);
      expect((await readAll(active, 'evt_queue')).map((e) => e.id)).to.deep.equal([ids.at(-1)]);
    } finally {
      ccm.close();
    }
    const status = await server.child.stop('SIGTERM');
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
  });
});

describeDatabases(
  'DBServiceApp with the warehouse down at start',
  (fx) => {
    it('the discarder deletes nothing the archiver has not archived yet', async function () {
      this.timeout(60_000);
      // Delivered to the only other consumer: without the archiver, all but the newest would go.
      const store = await fx.openStore();
      const ids = await store.addEvents(
        Array.from({ length: 5 }, (_v, i) => ({ type: 'KEEP_ME', data: String(i) })),
      );
      await store.registerConsumer('u:DONE');
      await store.advanceConsumer('u:DONE', ids[4]!);
      const app = await DBServiceApp.start({
        database: fx.config,
        // Cannot be opened: the archiver keeps retrying and never registers by itself.
        warehouse: {
          dialect: 'sqlite',
          file: path.join(os.tmpdir(), `evt-missing-${process.pid}`, 'no', 'warehouse.sqlite'),
        },
        enableArchiver: true,
        enableDiscarder: true,
        discarderOptions: { poll_period_ms: 3_600_000 },
        log: { ...testLog, warn: () => undefined, error: () => undefined },
        notExpectedHandler: () => undefined,
      });
      try {
        const pass = await app.discarder!.runPass();
        expect(pass.deleted).to.equal(0);
        expect((await readAll(store, 'evt_queue')).map((e) => e.id)).to.deep.equal(ids);
        expect(await store.consumerPointer('-internal:ARCHIVER')).to.equal('0');
      } finally {
        await app.close();
      }
    });
  },
  ['sqlite'],
);

describeDatabases('DBServiceApp with a history table the warehouse lacks', (fx) => {
  const wfx = useDatabase(MIXED[fx.dialect]);

  it('serves on; the archiver reports InvalidConfig once and stops; the discarder keeps events for it', async function () {
    this.timeout(60_000);
    const reported: string[] = [];
    const app = await DBServiceApp.start({
      database: fx.config,
      warehouse: wfx.config,
      enableArchiver: true,
      // A retry loop would show many errors at once.
      archiverOptions: { history_table: 'evt_archive', reconnectMinMS: 10, reconnectMaxMS: 20 },
      enableDiscarder: true,
      discarderOptions: { poll_period_ms: 3_600_000 },
      log: { ...testLog, error: () => undefined },
      notExpectedHandler: (code, info) => reported.push(`${String(code)}: ${String(info)}`),
    });
    try {
      await waitFor("the archiver's error", () => reported.length > 0, 20_000);
      await app.archiver!.whenStopped();
      // Time itself: a retry loop would report more errors meanwhile.
      await sleep(1_000);
      expect(reported).to.have.length(1);
      expect(reported[0]).to.match(
        /^InvalidConfig: The history table "evt_archive" does not exist/,
      );

      const ccm = app.ccm();
      const poll = ccm.iface<PollFace>('#evtpoll');
      await steps((as) => poll.registerConsumer(as, 'ON'));
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(
          await steps<string>((as) =>
            ccm.iface<DBGenFace>('#evtgen').addEvent(as, 'STILL_SERVING', { i }),
          ),
        );
      }
      const got = await steps<PolledEvent[]>((as) => poll.pollEvents(as, 'ON', null, null));
      expect(got.map((e) => e.id)).to.deep.equal(ids);
      // ON has them all; the archiver, registered at start, has none: nothing goes.
      await steps((as) => poll.pollEvents(as, 'ON', ids[2], null));
      expect((await app.discarder!.runPass()).deleted).to.equal(0);
      expect((await readAll(app.store!, 'evt_queue')).map((e) => e.id)).to.deep.equal(ids);
    } finally {
      await app.close();
    }
  });
});

describeDatabases('DBServiceApp failing to start', (fx) => {
  // Loaded already, as in a running process.
  before(() => loadDatabaseModules('postgresql', fx.dialect));

  it('rejects with the cause, everything closed, at once when the active database fails (a warehouse configured)', async function () {
    this.timeout(30_000);
    // The active store fails 0.3 s in; the warehouse's connection, to be made after it, never
    // is. close() used to wait for that one as well, until its limit of 5 s.
    const server = await hangingUpServer(300);
    let failure = '';
    let ms = 0;
    try {
      const startedAt = Date.now();
      await DBServiceApp.start({
        database: { dialect: 'postgresql', host: '127.0.0.1', port: server.port, user: 'u' },
        warehouse: fx.config,
        enableArchiver: true,
        log: { ...testLog, warn: () => undefined, error: () => undefined },
        notExpectedHandler: () => undefined,
      }).then(
        (app) => app.close(),
        (err: Error) => (failure = String(err)),
      );
      ms = Date.now() - startedAt;
    } finally {
      await server.close();
    }
    // A failed start takes some 0.3 s; the old wait took close()'s limit of 5 s at least.
    expect(ms, 'ms from start() to its rejection (close included)').to.be.below(5_000);
    expect(failure, 'the failure').to.match(/Connection terminated/);
  });
});

// The delivery horizon waits for the transactions open on the whole server (PostgreSQL's
// snapshot xmin, MariaDB's INNODB_TRX). A node paused inside an archive transaction, its
// warehouse on the event database's server, held delivery back on every node until it ran
// again (the cluster test's SIGSTOP, now and then). Breaking change it catches: the warehouse
// connection opened without the bound the store's has (boundIdleTransactions).
describeDatabases(
  'DBServiceApp with coordination and its warehouse on the same server',
  (fx) => {
    const wfx = useDatabase(fx.dialect);

    it('has the server roll back an archive transaction left idle for 2 × fence_ms (a paused node)', async function () {
      this.timeout(60_000);
      // Closed before the suite drops its databases.
      const app = await DBServiceApp.start({
        database: fx.config,
        warehouse: wfx.config,
        enableArchiver: true,
        // The server ends a transaction idle for 2 × fence_ms: 1 s.
        coordination: { fence_ms: 500, heartbeat_ms: 100 },
        log: testLog,
      });
      try {
        const db = await waitForValue(
          'the archiver’s warehouse connection',
          () => app.archiver!.warehouseDb,
          (d) => d !== null,
        );
        let failure: unknown = null;
        await db!
          .transaction(async (tx) => {
            await tx.query('SELECT 1 AS one');
            // Paused past the bound: the server ends the transaction meanwhile.
            await sleep(3_000);
            await tx.query('SELECT 1 AS one');
          })
          .catch((err: unknown) => (failure = err));
        expect(failure, 'the transaction outlived the bound').to.be.an('error');
        // The pool goes on with a new connection.
        expect(await db!.query<{ one: number }>('SELECT 1 AS one')).to.have.length(1);
      } finally {
        await app.close();
      }
    });
  },
  ['postgresql', 'mysql'],
);
