/**
 * The examples as a user runs them: `evtstream serve` in a child process on each database, then
 * examples/*.ts in child processes pointed at it. The events add-event and xfer-event add must be
 * exactly what poll-consumer receives.
 */
import { expect } from 'chai';
import { describeDatabases } from '../support/db';
import fs from 'fs';
import os from 'os';
import path from 'path';
import {
  Child,
  ROOT,
  dbEvtEnv,
  requireFreshDist,
  killChildren,
  runExample,
  startCliServer,
  type CliServer,
  type RunResult,
} from '../support/cli';

const USERS = 'alice:alice-secret';
const ADMINS = 'root:root-secret';

function expectSuccess(r: RunResult): void {
  expect(r.code, r.child.describe()).to.equal(0);
  expect(r.stderr, r.child.describe()).to.equal('');
}

describeDatabases('examples against evtstream serve', (fx) => {
  let server: CliServer;
  let clientEnv: Record<string, string>;
  /** IDs of the events the examples added, by type. */
  const added: { USER_CREATED: string[]; ACCOUNT_OPENED: string[] } = {
    USER_CREATED: [],
    ACCOUNT_OPENED: [],
  };
  let account = '';

  before(async function () {
    this.timeout(240_000);
    requireFreshDist();
    server = await startCliServer(['--db', fx.url], {
      env: { EVTSTREAM_USERS: USERS, EVTSTREAM_ADMINS: ADMINS, EVTSTREAM_LOG: 'warn' },
    });
    clientEnv = {
      EVTSTREAM_URL: `secure+ws://127.0.0.1:${server.port}/`,
      EVTSTREAM_CREDENTIALS: USERS,
    };
  });
  after(killChildren);

  it('every example refuses to start without EVTSTREAM_CREDENTIALS', async function () {
    this.timeout(60_000);
    for (const name of [
      'add-event',
      'xfer-event',
      'poll-consumer',
      'push-consumer',
      'exactly-once-consumer',
      'live-consumer',
      'archiver',
      'admin',
    ]) {
      const r = await runExample(name, { env: { EVTSTREAM_URL: clientEnv['EVTSTREAM_URL'] } });
      expect(r.code, r.child.describe()).to.equal(1);
      expect(r.stderr).to.match(/Set EVTSTREAM_CREDENTIALS to "(user|name):secret"/);
      expect(r.stdout).to.equal('');
    }
  });

  it('add-event adds three USER_CREATED events and prints their IDs', async function () {
    this.timeout(60_000);
    const r = await runExample('add-event', { env: clientEnv });
    expectSuccess(r);
    const lines = [...r.stdout.matchAll(/^added USER_CREATED event ([1-9]\d*) for (\w+)$/gm)];
    expect(lines.map((m) => m[2])).to.deep.equal(['ada', 'alan', 'grace']);
    added.USER_CREATED = lines.map((m) => m[1] ?? '');
    expect(r.stdout).to.include(`added 3 events to ${clientEnv['EVTSTREAM_URL']}`);
  });

  it('add-event with a wrong secret fails with SecurityError and exit code 1', async function () {
    this.timeout(60_000);
    const r = await runExample('add-event', {
      env: { ...clientEnv, EVTSTREAM_CREDENTIALS: 'alice:wrong' },
    });
    expect(r.code, r.child.describe()).to.equal(1);
    expect(r.stderr).to.include('addEvent failed: SecurityError');
  });

  it('xfer-event commits a row with its event, and a failed transaction leaves neither', async function () {
    this.timeout(60_000);
    const r = await runExample('xfer-event', { env: { ...clientEnv, ...dbEvtEnv(fx.config) } });
    expectSuccess(r);
    const committed =
      /^committed: account (acc-[0-9a-f]+) and its ACCOUNT_OPENED event ([1-9]\d*)$/m.exec(
        r.stdout,
      );
    expect(committed, r.stdout).to.not.equal(null);
    account = committed?.[1] ?? '';
    added.ACCOUNT_OPENED = [committed?.[2] ?? ''];
    expect(r.stdout).to.match(/^rolled back: the second transaction failed with Duplicate$/m);
    expect(r.stdout).to.match(/^after the rollback: still one account row and one event/m);
  });

  it('poll-consumer receives exactly those events, in order, then stops', async function () {
    this.timeout(60_000);
    const expected = [...added.USER_CREATED, ...added.ACCOUNT_OPENED];
    expect(expected).to.have.length(4);
    const r = await runExample('poll-consumer', {
      env: {
        ...clientEnv,
        EVTSTREAM_COMPONENT: 'EXAMPLES',
        EVTSTREAM_MAX_EVENTS: String(expected.length),
      },
    });
    expectSuccess(r);
    expect(r.stdout).to.include(`consumer "EXAMPLES" registered at ${clientEnv['EVTSTREAM_URL']}`);
    const events = [...r.stdout.matchAll(/^event ([1-9]\d*) (\w+) (\S+) (.*)$/gm)].map((m) => ({
      id: m[1],
      type: m[2],
      data: JSON.parse(m[4] ?? 'null') as Record<string, unknown>,
    }));
    expect(events.map((e) => e.id)).to.deep.equal(expected);
    expect(events.map((e) => e.type)).to.deep.equal([
      'USER_CREATED',
      'USER_CREATED',
      'USER_CREATED',
      'ACCOUNT_OPENED',
    ]);
    expect(events[0]?.data).to.include({ login: 'ada', name: 'Ada Lovelace' });
    // The event of the rolled-back transaction (owner Mallory) never reached the stream.
    expect(events[3]?.data).to.deep.equal({
      account,
      owner: 'Ada',
      balance: 100,
      note: 'Welcome! 🎉',
    });
    expect(r.stdout).to.include(`stopped (received 4 events): 4 events, last_id ${expected[3]}`);
  });

  it('poll-consumer acknowledged them: the next run of the component gets nothing new', async function () {
    this.timeout(60_000);
    const r = await runExample('poll-consumer', {
      env: { ...clientEnv, EVTSTREAM_COMPONENT: 'EXAMPLES', EVTSTREAM_IDLE_EXIT_MS: '1000' },
    });
    expectSuccess(r);
    expect(r.stdout).not.to.match(/^event /m);
    expect(r.stdout).to.include('stopped (no events for 1000 ms): 0 events, last_id none');
  });

  it('admin lists the consumer, moves it to the start, and poll-consumer gets it all again', async function () {
    this.timeout(60_000);
    const expected = [...added.USER_CREATED, ...added.ACCOUNT_OPENED];
    const env = { ...clientEnv, EVTSTREAM_CREDENTIALS: ADMINS };
    const r = await runExample('admin', {
      env: { ...env, EVTSTREAM_RESET: 'alice:EXAMPLES', EVTSTREAM_RESET_TO: 'start' },
    });
    expectSuccess(r);
    expect(r.stdout).to.match(new RegExp(`^newest event ${expected[3]}, \\d+ active events`, 'm'));
    expect(r.stdout).to.include(`consumer alice:EXAMPLES poll at ${expected[3]}, 0 events behind`);
    expect(r.stdout).to.include(`moved alice:EXAMPLES from ${expected[3]} to 0`);

    const replay = await runExample('poll-consumer', {
      env: { ...clientEnv, EVTSTREAM_COMPONENT: 'EXAMPLES', EVTSTREAM_MAX_EVENTS: '4' },
    });
    expectSuccess(replay);
    const ids = [...replay.stdout.matchAll(/^event ([1-9]\d*) /gm)].map((m) => m[1]);
    expect(ids).to.deep.equal(expected);

    // A user without the admin right is refused.
    const refused = await runExample('admin', { env: clientEnv });
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include('failed: SecurityError');
  });

  it('push-consumer gets the same events pushed, in order, then stops', async function () {
    this.timeout(60_000);
    const expected = [...added.USER_CREATED, ...added.ACCOUNT_OPENED];
    const r = await runExample('push-consumer', {
      env: {
        ...clientEnv,
        EVTSTREAM_COMPONENT: 'PUSHED',
        EVTSTREAM_MAX_EVENTS: String(expected.length),
      },
    });
    expectSuccess(r);
    expect(r.stdout).to.include(`consumer "PUSHED" receiving from ${clientEnv['EVTSTREAM_URL']}`);
    const ids = [...r.stdout.matchAll(/^event ([1-9]\d*) /gm)].map((m) => m[1]);
    expect(ids).to.deep.equal(expected);
    expect(r.stdout).to.include('stopped (received 4 events): 4 events');
  });

  it('exactly-once-consumer applies each event once, also when the service sends them again', async function () {
    this.timeout(60_000);
    const expected = [...added.USER_CREATED, ...added.ACCOUNT_OPENED];
    const consumerDb =
      fx.dialect === 'sqlite'
        ? `sqlite:${path.join(os.tmpdir(), `evt_x1_${process.pid}.sqlite`)}`
        : fx.url;
    const env = {
      ...clientEnv,
      EVTSTREAM_COMPONENT: 'DIRECTORY',
      EVTSTREAM_CONSUMER_DB: consumerDb,
      EVTSTREAM_MAX_EVENTS: String(expected.length),
    };
    try {
      const first = await runExample('exactly-once-consumer', { env });
      expectSuccess(first);
      const applied = [...first.stdout.matchAll(/^applied ([1-9]\d*) (\w+)$/gm)].map((m) => m[1]);
      expect(applied).to.deep.equal(expected);
      expect(first.stdout).to.include(`position ${expected[3]}`);
      expect(first.stdout).to.include(`stopped (received 4 events): 4 events received`);

      // Replayed from the start: delivered again, applied never twice.
      const reset = await runExample('admin', {
        env: {
          ...clientEnv,
          EVTSTREAM_CREDENTIALS: ADMINS,
          EVTSTREAM_RESET: 'alice:DIRECTORY',
          EVTSTREAM_RESET_TO: 'start',
        },
      });
      expectSuccess(reset);
      const again = await runExample('exactly-once-consumer', { env });
      expectSuccess(again);
      expect(again.stdout).not.to.match(/^applied /m);
      expect(again.stdout).to.include(`stopped (received 4 events): 4 events received`);
    } finally {
      if (fx.dialect === 'sqlite') fs.rmSync(consumerDb.slice('sqlite:'.length), { force: true });
    }
  });

  it('live-consumer gets events added while it listens, and only those', async function () {
    this.timeout(60_000);
    const live = new Child(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'examples', 'live-consumer.ts')],
      {
        env: { ...clientEnv, EVTSTREAM_MAX_EVENTS: '3' },
      },
    );
    await live.waitForOutput(/^live consumer receiving from /m);
    const add = await runExample('add-event', { env: clientEnv });
    expectSuccess(add);
    const newIds = [...add.stdout.matchAll(/^added USER_CREATED event ([1-9]\d*) /gm)].map(
      (m) => m[1],
    );
    const status = await live.wait();
    expect(status.code, live.describe()).to.equal(0);
    const got = [...live.stdout.matchAll(/^live ([1-9]\d*) USER_CREATED /gm)].map((m) => m[1]);
    expect(got).to.deep.equal(newIds);
  });

  it('the server stops on SIGTERM with exit code 0 and logged no error', async function () {
    this.timeout(30_000);
    const status = await server.child.stop('SIGTERM');
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    expect(server.child.stderr, server.child.describe()).not.to.include('ERROR');
  });
});
