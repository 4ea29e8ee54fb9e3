/**
 * `evtstream consumers`, `consumer reset|drop|moves` and `stats`: directly on the database
 * (--db) on every database, and against a running `evtstream serve` as an admin (--url), where a
 * user without the admin right is refused.
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { ConsumerInfo, MoveRecord, StreamStats } from '../../src/ops/admin';
import type { EventStore } from '../../src/storage/store';
import { requireFreshDist, runCli, startCliServer, type CliServer } from '../support/cli';
import { describeDatabases } from '../support/db';

const lines = (stdout: string): string[] => stdout.split('\n').filter((l) => l !== '');
const jsonLines = <T>(stdout: string): T[] => lines(stdout).map((l) => JSON.parse(l) as T);

describeDatabases('evtstream consumers, consumer, stats', (fx) => {
  let store: EventStore;
  let ids: string[];

  before(async function () {
    this.timeout(240_000);
    requireFreshDist();
    store = await fx.openStore();
    ids = await store.addEvents(
      Array.from({ length: 10 }, (_v, i) => ({ type: i < 5 ? 'FIRST' : 'SECOND', data: `${i}` })),
    );
    await store.registerConsumer('alice:BEHIND');
    await store.advanceConsumer('alice:BEHIND', ids[3]!);
    await store.registerConsumer('bob:DONE');
    await store.advanceConsumer('bob:DONE', ids[9]!);
  });

  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '--db', fx.url]);
    expect(r.code, r.child.describe()).to.equal(0);
    return r.stdout;
  };

  it('lists consumers with their lag, as a table and as JSON lines', async () => {
    const table = lines(await cli('consumers'));
    expect(table[0]).to.match(
      /^CONSUMER\s+MODE\s+POINTER\s+LAG\s+LAG TIME\s+PARKED\s+LAST ACTIVITY$/,
    );
    expect(table[1]).to.match(
      new RegExp(`^alice:BEHIND\\s+idle\\s+${ids[3]}\\s+6\\s+\\S+\\s+-\\s+\\d{4}-`),
    );
    expect(table[2]).to.match(new RegExp(`^bob:DONE\\s+idle\\s+${ids[9]}\\s+0\\s+0s\\s+-\\s+`));

    const json = jsonLines<ConsumerInfo>(await cli('consumers', '--json', '--lag-limit', '4'));
    expect(json.map((c) => [c.ident, c.pointer, c.lag_events, c.lag_capped])).to.deep.equal([
      ['alice:BEHIND', ids[3], 4, true],
      ['bob:DONE', ids[9], 0, false],
    ]);
  });

  it('resets a consumer to an ID, the start, a time and the newest event, recording each', async () => {
    // A dry run says where it would go, and moves nothing.
    expect(await cli('consumer', 'reset', 'alice:BEHIND', '--to', ids[1]!, '--dry-run')).to.equal(
      `alice:BEHIND: the pointer would move from ${ids[3]} to ${ids[1]}; 8 events to deliver from there\n`,
    );
    expect(await store.consumerPointer('alice:BEHIND')).to.equal(ids[3]);
    expect(await cli('consumer', 'reset', 'alice:BEHIND', '--to', ids[1]!)).to.equal(
      `alice:BEHIND: pointer moved from ${ids[3]} to ${ids[1]}; 8 events to deliver from there\n`,
    );
    expect(await store.consumerPointer('alice:BEHIND')).to.equal(ids[1]);
    const start = JSON.parse(
      await cli(
        'consumer',
        'reset',
        'alice:BEHIND',
        '--to',
        'start',
        '--json',
        '--reason',
        'replay',
      ),
    ) as { from: string; pointer: string };
    expect(start).to.deep.equal({
      ident: 'alice:BEHIND',
      from: ids[1],
      pointer: '0',
      lag_events: 10,
      lag_capped: false,
    });
    // A time: every event is younger than an hour, so an hour ago is the start again; a time
    // ahead of them all is the newest.
    await cli('consumer', 'reset', 'alice:BEHIND', '--to', ids[5]!);
    await cli('consumer', 'reset', 'alice:BEHIND', '--to', '1h');
    expect(await store.consumerPointer('alice:BEHIND')).to.equal('0');
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await cli('consumer', 'reset', 'alice:BEHIND', '--to', later);
    expect(await store.consumerPointer('alice:BEHIND')).to.equal(ids[9]);
    await cli('consumer', 'reset', 'alice:BEHIND', '--to', 'newest');
    expect(await store.consumerPointer('alice:BEHIND')).to.equal(ids[9]);

    const moves = jsonLines<MoveRecord>(await cli('consumer', 'moves', 'alice:BEHIND', '--json'));
    expect(moves.map((m) => [m.from, m.to])).to.deep.equal([
      [ids[9], ids[9]],
      ['0', ids[9]],
      [ids[5], '0'],
      ['0', ids[5]],
      [ids[1], '0'],
      [ids[3], ids[1]],
    ]);
    expect(moves[4]).to.include({ reason: 'replay', action: 'move', applied: false });
    expect(moves[0]!.by).to.match(/^os:/);
    const table = lines(await cli('consumer', 'moves', '--limit', '2'));
    expect(table[0]).to.match(/^AT\s+CONSUMER\s+ACTION\s+FROM\s+TO\s+BY\s+REASON$/);
    expect(table).to.have.length(3);
  });

  it('sets max-attempts, lists parked events, replays and skips them, recording each', async () => {
    expect(
      await cli('consumer', 'max-attempts', 'alice:BEHIND', '3', '--reason', 'poison'),
    ).to.equal('alice:BEHIND: an event its receiver fails on 3 times in a row is parked\n');
    expect(await store.parkingRule('alice:BEHIND')).to.deep.equal({ maxAttempts: 3, streak: 0 });
    expect(await cli('consumer', 'parked')).to.equal('No parked events to resolve\n');
    for (const id of [ids[2]!, ids[6]!]) {
      await store.parkEvent('alice:BEHIND', {
        event: { id, type: 'FIRST', data: '2', ts: '2026-01-01T00:00:00Z' },
        attempts: 3,
        firstFailureMs: Date.now(),
        lastFailureMs: Date.now(),
        errorCode: 'InternalError',
        errorInfo: 'no such\ncustomer',
      });
    }
    const table = lines(await cli('consumer', 'parked', 'alice:BEHIND'));
    expect(table[0]).to.match(
      /^CONSUMER\s+EVENT\s+TYPE\s+STATE\s+ATTEMPTS\s+LAST FAILURE\s+ERROR$/,
    );
    expect(table[1]).to.match(
      new RegExp(
        `^alice:BEHIND\\s+${ids[2]}\\s+FIRST\\s+parked\\s+3\\s+\\S+\\s+InternalError: no such customer$`,
      ),
    );
    expect(table).to.have.length(3);
    expect(lines(await cli('consumers'))[1]).to.match(/\s2 \(max 3\)\s/);

    expect(await cli('consumer', 'replay', 'alice:BEHIND', ids[2]!, '--reason', 'fixed')).to.equal(
      'alice:BEHIND: 1 parked event(s) to be delivered again at its next push session\n',
    );
    expect(await cli('consumer', 'skip', 'alice:BEHIND', '--reason', 'bad data')).to.equal(
      'alice:BEHIND: 2 parked event(s) skipped\n',
    );
    expect(await cli('consumer', 'parked')).to.equal('No parked events to resolve\n');
    const all = jsonLines<{ event: { id: string }; state: string; acted_by: string }>(
      await cli('consumer', 'parked', '--all', '--json'),
    );
    expect(all.map((p) => [p.event.id, p.state])).to.deep.equal([
      [ids[2], 'skipped'],
      [ids[6], 'skipped'],
    ]);
    expect(all[0]!.acted_by).to.match(/^os:/);
    const moves = lines(await cli('consumer', 'moves', 'alice:BEHIND', '--limit', '4'));
    expect(moves.slice(1).map((l) => l.split(/\s+/).slice(2, 5).join(' '))).to.deep.equal([
      `skip ${ids[9]} event`,
      `skip ${ids[9]} event`,
      `replay ${ids[9]} event`,
      `limit ${ids[9]} max`,
    ]);

    expect(await cli('consumer', 'max-attempts', 'alice:BEHIND', 'off')).to.equal(
      'alice:BEHIND: parks nothing; delivery waits on an event its receiver fails on\n',
    );
    expect((await store.parkingRule('alice:BEHIND')).maxAttempts).to.equal(null);
  });

  it('drops a consumer; dropping it again says it is not registered (exit 1)', async () => {
    expect(await cli('consumer', 'drop', 'bob:DONE', '--reason', 'retired')).to.equal(
      'bob:DONE: dropped\n',
    );
    expect(await store.consumerPointer('bob:DONE')).to.equal(null);
    const again = await runCli(['consumer', 'drop', 'bob:DONE', '--db', fx.url]);
    expect(again.code).to.equal(1);
    expect(again.stdout).to.equal('bob:DONE: not registered\n');
  });

  it('prints stream statistics', async () => {
    const s = JSON.parse(await cli('stats', '--json')) as StreamStats;
    expect(s).to.include({ newest_id: ids[9], oldest_id: ids[0], active_events: 10, consumers: 1 });
    const table = await cli('stats');
    expect(table).to.match(new RegExp(`^newest event\\s+${ids[9]}$`, 'm'));
    expect(table).to.match(/^events\/s\s+\d+(\.\d+)? \(over \d+(\.\d+)?s\)$/m);
  });

  it('refuses an unknown consumer reset with NotRegistered and bad arguments with exit 2', async () => {
    const r = await runCli(['consumer', 'reset', 'nobody:X', '--to', 'start', '--db', fx.url]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('No consumer nobody:X');
    for (const [args, message] of [
      [['consumer', 'reset', 'alice:BEHIND'], 'reset needs --to'],
      [['consumer', 'reset', 'alice:BEHIND', '--to', 'soon'], '--to must be start, newest'],
      [['consumer', 'reset', 'not-an-ident', '--to', 'start'], 'is not a consumer ident'],
      [['consumer', 'rename', 'alice:BEHIND'], 'Unknown consumer action "rename"'],
      [['consumer'], 'consumer needs an action'],
      [['consumer', 'skip', 'alice:BEHIND'], 'skip needs --reason'],
      [['consumer', 'replay', 'alice:BEHIND', 'x1'], 'is not an event ID'],
      [['consumer', 'max-attempts', 'alice:BEHIND'], 'max-attempts needs N'],
      [['consumer', 'max-attempts', 'alice:BEHIND', '1001'], 'must be'],
      [['consumer', 'drop', 'alice:BEHIND', '42'], 'Unexpected argument "42"'],
      [['consumers', '--url', 'http://127.0.0.1:1/'], '--url needs --admin'],
      [['stats', '--admin', 'root:x'], '--admin goes with --url'],
    ] as const) {
      const full: string[] = [...args];
      if (!full.includes('--url')) full.push('--db', fx.url);
      const bad = await runCli(full);
      expect(bad.code, args.join(' ')).to.equal(2);
      expect(bad.stderr, args.join(' ')).to.include(message);
    }
  });
});

describeDatabases(
  'evtstream consumers, consumer, stats --url',
  (fx) => {
    let server: CliServer;
    let dir: string;
    const env = { EVTSTREAM_USERS: 'alice:alice-secret', EVTSTREAM_LOG: 'warn' };

    before(async function () {
      this.timeout(240_000);
      requireFreshDist();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-admins-'));
      const admins = path.join(dir, 'admins');
      fs.writeFileSync(admins, '# who may manage the stream\nroot:root-secret\n');
      server = await startCliServer(['--db', fx.url, '--admins', admins], { env });
    });
    after(async () => {
      await server?.child.stop('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('serves an admin with --admin or EVTSTREAM_ADMIN, over HTTP and WebSocket', async () => {
      const store = await fx.openStore();
      try {
        const [id] = await store.addEvents([{ type: 'REMOTE', data: '1' }]);
        await store.registerConsumer('alice:REMOTE');
        const r = await runCli([
          'consumers',
          '--url',
          server.url,
          '--admin',
          'root:root-secret',
          '--json',
        ]);
        expect(r.code, r.child.describe()).to.equal(0);
        expect(jsonLines<ConsumerInfo>(r.stdout)).to.have.length(1);
        const reset = await runCli(
          ['consumer', 'reset', 'alice:REMOTE', '--to', 'newest', '--url', server.wsUrl],
          { env: { EVTSTREAM_ADMIN: 'root:root-secret' } },
        );
        expect(reset.code, reset.child.describe()).to.equal(0);
        expect(reset.stdout).to.equal(
          `alice:REMOTE: pointer moved from 0 to ${id}; 0 events to deliver from there\n`,
        );
        const limit = await runCli([
          'consumer',
          'max-attempts',
          'alice:REMOTE',
          '5',
          '--url',
          server.url,
          '--admin',
          'root:root-secret',
        ]);
        expect(limit.stdout, limit.child.describe()).to.include('fails on 5 times');
        const parked = await runCli([
          'consumer',
          'parked',
          '--url',
          server.url,
          '--admin',
          'root:root-secret',
        ]);
        expect(parked.stdout, parked.child.describe()).to.equal('No parked events to resolve\n');
        const moves = await runCli([
          'consumer',
          'moves',
          '--url',
          server.url,
          '--admin',
          'root:root-secret',
          '--json',
        ]);
        expect(jsonLines<MoveRecord>(moves.stdout)[0]).to.include({
          by: 'root',
          action: 'limit',
          max_attempts: 5,
        });
        expect(jsonLines<MoveRecord>(moves.stdout)[1]).to.include({ by: 'root', to: id });
        const stats = await runCli(['stats', '--url', server.url, '--admin', 'root:root-secret']);
        expect(stats.code).to.equal(0);
        expect(stats.stdout).to.match(new RegExp(`^newest event\\s+${id}$`, 'm'));
      } finally {
        await store.close();
      }
    });

    it('refuses a user without the admin right and a wrong secret with SecurityError', async () => {
      for (const admin of ['alice:alice-secret', 'root:nope']) {
        const r = await runCli(['stats', '--url', server.url, '--admin', admin]);
        expect(r.code, admin).to.equal(1);
        expect(r.stderr, admin).to.include('SecurityError');
      }
    });
  },
  ['sqlite'],
);
