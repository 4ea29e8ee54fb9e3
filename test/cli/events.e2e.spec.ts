/**
 * `evtstream events`: listing what happened, from the active store or the warehouse, by ID
 * range, type and time range, as a table or JSON lines — on every database.
 */
import { expect } from 'chai';
import { requireFreshDist, runCli } from '../support/cli';
import { describeDatabases } from '../support/db';
import { sqlFor } from '../support/sql';
import { migrate } from '../../src/storage/migrate';

interface Line {
  id: string;
  type: string;
  ts: string;
  data: unknown;
}

describeDatabases('evtstream events', (fx) => {
  before(async function () {
    this.timeout(240_000);
    requireFreshDist();
    const store = await fx.openStore();
    await migrate(store.db, store.dialect, { kind: 'dwh' });
    const rows: Array<[string, string, string]> = [
      ['ALPHA', '{"n":1}', '2026-01-01 10:00:00'],
      ['BETA', '[2]', '2026-01-02 10:00:00'],
      ['ALPHA', '"three"', '2026-01-03 10:00:00'],
      ['GAMMA', '{"n":4,"s":"ü🎉"}', '2026-01-04 10:00:00'],
    ];
    for (const [type, data, ts] of rows) {
      await store.db.execute(
        `INSERT INTO evt_queue (type, data, ts) VALUES (?, ?, ${sqlFor(store.dialect.name).tsParam})`,
        [type, data, ts],
      );
    }
    // The warehouse keeps the IDs of the stream.
    await store.db.execute(
      `INSERT INTO evt_history (id, type, data, ts) VALUES (${sqlFor(store.dialect.name).idParam}, ?, ?, ${sqlFor(store.dialect.name).tsParam})`,
      ['9007199254740993', 'OLD', '{"archived":true}', '2025-12-31 23:59:59'],
    );
  });

  const json = async (...args: string[]): Promise<Line[]> => {
    const r = await runCli(['events', '--db', fx.url, '--json', ...args]);
    expect(r.code, r.child.describe()).to.equal(0);
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Line);
  };

  it('lists all events oldest first as JSON lines, data as JSON', async () => {
    const lines = await json();
    expect(lines.map((l) => [l.type, l.ts])).to.deep.equal([
      ['ALPHA', '2026-01-01T10:00:00Z'],
      ['BETA', '2026-01-02T10:00:00Z'],
      ['ALPHA', '2026-01-03T10:00:00Z'],
      ['GAMMA', '2026-01-04T10:00:00Z'],
    ]);
    expect(lines[3]!.data).to.deep.equal({ n: 4, s: 'ü🎉' });
  });

  it('filters by ID range, types and time range; --last and --limit', async () => {
    const all = await json();
    const ids = all.map((l) => l.id);
    expect((await json('--from', ids[1]!, '--to', ids[2]!)).map((l) => l.id)).to.deep.equal(
      ids.slice(1, 3),
    );
    expect((await json('--type', 'ALPHA')).map((l) => l.id)).to.deep.equal([ids[0], ids[2]]);
    expect((await json('--type', 'BETA,GAMMA')).map((l) => l.type)).to.deep.equal([
      'BETA',
      'GAMMA',
    ]);
    expect(
      (await json('--since', '2026-01-02', '--until', '2026-01-03T10:00:00Z')).map((l) => l.id),
    ).to.deep.equal(ids.slice(1, 3));
    expect((await json('--since', '2026-01-03 09:00')).map((l) => l.id)).to.deep.equal(
      ids.slice(2),
    );
    expect((await json('--last', '--limit', '2')).map((l) => l.id)).to.deep.equal([ids[3], ids[2]]);
    expect(await json('--since', '1h')).to.deep.equal([]);
  });

  it('prints a table for people', async () => {
    const r = await runCli(['events', '--db', fx.url, '--type', 'GAMMA']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^\s*ID\s+TYPE\s+TS\s+DATA$/m);
    expect(r.stdout).to.match(/^\s*\d+\s+GAMMA\s+2026-01-04T10:00:00Z\s+\{"n":4,"s":"ü🎉"\}$/m);
  });

  it('reads the warehouse with --dwh, IDs beyond 2^53 intact', async () => {
    const r = await runCli(['events', '--dwh', fx.url, '--json']);
    expect(r.code, r.child.describe()).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({
      id: '9007199254740993',
      type: 'OLD',
      ts: '2025-12-31T23:59:59Z',
      data: { archived: true },
    });
  });

  for (const [args, message] of [
    [['--from', 'x'], '--from must be an event ID'],
    [['--type', 'lower'], '--type lower: event types are 1-16 of A-Z and _'],
    [['--since', 'yesterday'], '--since must be an ISO 8601 time or an age'],
    [['--limit', '0'], '--limit must be an integer'],
  ] as const) {
    it(`refuses ${args.join(' ')} with exit code 2`, async () => {
      const r = await runCli(['events', '--db', fx.url, ...args]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include(message);
      expect(r.stderr).to.include('evtstream events --help');
    });
  }
});
