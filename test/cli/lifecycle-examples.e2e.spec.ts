/**
 * The event lifecycle examples as a user runs them, on each database with a warehouse of another
 * kind: examples/archiver.ts against `evtstream serve`, examples/discarder.ts on the same
 * database, then examples/app.ts (DBServiceApp) serving, archiving and discarding in one process.
 * What they print is checked against `evtstream events`, the databases themselves and each other.
 */
import fs from 'fs';
import { expect } from 'chai';
import type { Dialect } from '../../src/storage/sql';
import {
  Child,
  ROOT,
  dbEvtEnv,
  requireFreshDist,
  killChildren,
  runCli,
  runExample,
  startCliServer,
  type CliServer,
  type RunResult,
} from '../support/cli';
import { DbFixture, describeDatabases } from '../support/db';
import { waitFor } from '../support/wait';
import path from 'path';

const USER = 'alice';
const USERS = 'alice:alice-secret';
const MIXED: Record<Dialect, Dialect> = {
  sqlite: 'postgresql',
  postgresql: 'mysql',
  mysql: 'sqlite',
};

function expectSuccess(r: RunResult): void {
  expect(r.code, r.child.describe()).to.equal(0);
  expect(r.stderr, r.child.describe()).to.equal('');
}

interface ListedEvent {
  id: string;
  type: string;
  data: unknown;
}

/** `evtstream events ARGS --json`: the events listed. */
async function listEvents(args: string[]): Promise<ListedEvent[]> {
  const r = await runCli(['events', '--json', '--log-level', 'warn', ...args]);
  expectSuccess(r);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ListedEvent);
}

describeDatabases('event lifecycle examples', (fx) => {
  const wfx = new DbFixture(MIXED[fx.dialect]);
  let server: CliServer;
  let clientEnv: Record<string, string>;
  /** The events add-event added. */
  let ids: string[] = [];

  before(async function () {
    this.timeout(240_000);
    if (!wfx.available) {
      if (process.env['CI'] === 'true') throw new Error(`No ${wfx.dialect} server (CI=true)`);
      this.skip();
    }
    await wfx.create();
    requireFreshDist();
    server = await startCliServer(['--db', fx.url], {
      env: { EVTSTREAM_USERS: USERS, EVTSTREAM_LOG: 'warn' },
    });
    clientEnv = {
      EVTSTREAM_URL: `secure+ws://127.0.0.1:${server.port}/`,
      EVTSTREAM_CREDENTIALS: USERS,
      EVTSTREAM_LOG: 'warn',
    };
    const add = await runExample('add-event', { env: clientEnv });
    expectSuccess(add);
    ids = [...add.stdout.matchAll(/^added USER_CREATED event ([1-9]\d*) /gm)].map((m) => m[1]!);
    expect(ids).to.have.length(3);
  });
  after(async () => {
    await killChildren();
    await wfx.drop();
  });

  it('archiver copies every event into the warehouse of another kind, then stops', async function () {
    this.timeout(60_000);
    const r = await runExample('archiver', {
      env: { ...clientEnv, EVTSTREAM_DWH: wfx.url, EVTSTREAM_MAX_EVENTS: '3' },
    });
    expectSuccess(r);
    expect(r.stdout).to.include(`archiving ${clientEnv['EVTSTREAM_URL']} into `);
    expect(r.stdout).to.include(`archived 3 events up to ${ids[2]}`);
    expect(r.stdout).to.include('stopped (archived 3 events): 3 events archived');
    const copied = await listEvents(['--dwh', wfx.url]);
    expect(copied.map((e) => [e.id, e.type])).to.deep.equal(ids.map((id) => [id, 'USER_CREATED']));
  });

  it('discarder keeps what keep_for protects, then discards all but the newest', async function () {
    this.timeout(60_000);
    // The archiver (consumer alice:ARCHIVER, the only one) acknowledged all three: the service
    // stores that once the last push was answered.
    const store = await fx.openStore();
    try {
      await waitFor(
        'the archiver position to reach the last event',
        async () => (await store.consumerPointer(`${USER}:ARCHIVER`)) === ids[2],
        60_000,
      );
    } finally {
      await store.close();
    }
    const env = { ...dbEvtEnv(fx.config), EVTSTREAM_PASSES: '1', EVTSTREAM_LOG: 'warn' };

    const kept = await runExample('discarder', { env: { ...env, EVTSTREAM_KEEP_FOR: '1h' } });
    expectSuccess(kept);
    expect(kept.stdout).to.include(
      'discarding every 600000 ms, keeping events younger than 3600000 ms',
    );
    expect(kept.stdout).to.include('pass 1: 0 events deleted in 0 batches');
    expect((await listEvents(['--db', fx.url])).map((e) => e.id)).to.deep.equal(ids);

    const r = await runExample('discarder', { env });
    expectSuccess(r);
    expect(r.stdout).to.include(`discarded 2 events up to ${ids[1]}`);
    expect(r.stdout).to.include('pass 1: 2 events deleted in 1 batches');
    expect(r.stdout).to.include('stopped (1 passes): 2 events discarded in 1 passes');
    expect((await listEvents(['--db', fx.url])).map((e) => e.id)).to.deep.equal([ids[2]]);
    // The history is whole.
    expect((await listEvents(['--dwh', wfx.url])).map((e) => e.id)).to.deep.equal(ids);
  });

  it('the server stops on SIGTERM with exit code 0', async function () {
    this.timeout(30_000);
    const status = await server.child.stop('SIGTERM');
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
  });

  it('app refuses to start without EVTSTREAM_USERS', async function () {
    this.timeout(30_000);
    const r = await runExample('app', { env: { EVTSTREAM_DB: fx.url } });
    expect(r.code, r.child.describe()).to.equal(1);
    expect(r.stderr).to.include('Set EVTSTREAM_USERS');
  });

  it('app serves consumers, archives and commits an order with its event', async function () {
    this.timeout(90_000);
    const app = new Child(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'examples', 'app.ts')],
      {
        env: {
          EVTSTREAM_DB: fx.url,
          EVTSTREAM_DWH: wfx.url,
          EVTSTREAM_USERS: USERS,
          EVTSTREAM_PORT: '0',
          EVTSTREAM_LOG: 'warn',
        },
      },
    );
    const [, port] = await app.waitForOutput(
      /^listening on http:\/\/127\.0\.0\.1:(\d+)\/ \(WebSocket ws:\/\/127\.0\.0\.1:\d+\/\), archiving$/m,
      60_000,
    );
    expect(app.stdout).to.include('placed an order with its ORDER_PLACED event');

    // A new consumer elsewhere gets the whole history: what the discarder deleted, replayed
    // from the warehouse, the event it kept, then the order.
    const poll = await runExample('poll-consumer', {
      env: {
        ...clientEnv,
        EVTSTREAM_URL: `secure+ws://127.0.0.1:${port}/`,
        EVTSTREAM_COMPONENT: 'ORDERS',
        EVTSTREAM_MAX_EVENTS: '4',
      },
    });
    expectSuccess(poll);
    const got = [...poll.stdout.matchAll(/^event ([1-9]\d*) (\w+) \S+ (.*)$/gm)];
    expect(got.map((m) => m[2])).to.deep.equal([
      'USER_CREATED',
      'USER_CREATED',
      'USER_CREATED',
      'ORDER_PLACED',
    ]);
    expect(got.slice(0, 3).map((m) => m[1])).to.deep.equal(ids);
    const order = JSON.parse(got[3]![3]!) as { order: string; total: number };
    expect(order.total).to.equal(42);
    expect(order.order).to.match(/^ord-[0-9a-f]{8}$/);

    // Its archiver (the consumer -internal:ARCHIVER) copies the order to the warehouse.
    let history: ListedEvent[] = [];
    await waitFor(
      () => `4 events in the warehouse (have ${history.length})`,
      async () => (history = await listEvents(['--dwh', wfx.url])).length === 4,
      60_000,
    );
    expect(history.map((e) => e.id)).to.deep.equal([...ids, got[3]![1]]);
    expect(history[3]!.data).to.deep.equal(order);

    const status = await app.stop('SIGTERM');
    expect(status, app.describe()).to.deep.equal({ code: 0, signal: null });
    expect(app.stdout).to.match(/^stopped$/m);
    expect(app.stderr, app.describe()).to.equal('');
    if (fx.dialect === 'sqlite') {
      // Every connection closed cleanly: SQLite removes the WAL file with the last one.
      expect(fs.existsSync(`${fx.config.file ?? ''}-wal`), 'WAL file left behind').to.equal(false);
    }
  });
});
