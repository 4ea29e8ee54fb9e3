import fs from 'fs';
import os from 'os';
import path from 'path';
import { expect } from 'chai';
import { migrate, MigrationError, pendingMigrations } from '../../src/storage/migrate';
import { EventStore } from '../../src/storage/store';
import { splitStatements } from '../../src/storage/sql';
import { describeDatabases, testLog, type DbFixture } from '../support/db';

const tableExists = async (store: EventStore, table: string): Promise<boolean> => {
  try {
    await store.db.query(`SELECT COUNT(*) AS n FROM ${table}`);
    return true;
  } catch {
    return false;
  }
};

/** A folder of migrations for the fixture's dialect: name → SQL. */
function migrationsDir(fx: DbFixture, files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-mig-'));
  fs.mkdirSync(path.join(dir, fx.dialect));
  for (const [name, sql] of Object.entries(files))
    fs.writeFileSync(path.join(dir, fx.dialect, name), sql);
  return dir;
}

describeDatabases('migrations', (fx) => {
  let store: EventStore;
  before(async () => {
    store = await EventStore.open(fx.config, { log: testLog });
  });
  after(() => store?.close());

  it('applies the active and warehouse schemas, then applying again is a no-op', async () => {
    const first = await migrate(store.db, store.dialect, { kind: 'active' });
    expect(first).to.include('active/0001-tables.sql');
    expect(await migrate(store.db, store.dialect, { kind: 'active' })).to.deep.equal([]);
    expect(await pendingMigrations(store.db, store.dialect, { kind: 'active' })).to.deep.equal([]);
    expect(await migrate(store.db, store.dialect, { kind: 'dwh' })).to.include(
      'dwh/0001-history.sql',
    );
    expect(await migrate(store.db, store.dialect, { kind: 'dwh' })).to.deep.equal([]);
    for (const t of ['evt_queue', 'evt_consumers', 'evt_history'])
      expect(await tableExists(store, t), t).to.equal(true);
  });

  it('runs safely from several processes at once: each migration applied exactly once', async () => {
    const stores = await Promise.all(
      [1, 2, 3].map(() => EventStore.open(fx.config, { log: testLog })),
    );
    try {
      const dir = migrationsDir(fx, {
        '0001-a.sql': 'CREATE TABLE IF NOT EXISTS mig_race (id INTEGER NOT NULL PRIMARY KEY);',
        '0002-b.sql': 'CREATE TABLE mig_race2 (id INTEGER NOT NULL PRIMARY KEY);',
      });
      const results = await Promise.all(
        stores.map((s) => migrate(s.db, s.dialect, { kind: 'dwh', dir })),
      );
      const applied = results.flat().sort();
      // 0002 has no IF NOT EXISTS: it would fail if any process ran it twice.
      expect(applied).to.deep.equal(['dwh/0001-a.sql', 'dwh/0002-b.sql']);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('reports a failed migration clearly, records nothing of it, and leaves no half-state where DDL is transactional', async () => {
    const broken = migrationsDir(fx, {
      '0101-ok.sql': 'CREATE TABLE mig_ok (id INTEGER NOT NULL PRIMARY KEY);',
      '0102-broken.sql':
        'CREATE TABLE mig_half (id INTEGER NOT NULL PRIMARY KEY);\n\nSELECT no_such_column FROM no_such_table;',
    });
    let error: unknown;
    try {
      await migrate(store.db, store.dialect, { kind: 'dwh', dir: broken });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(MigrationError);
    expect((error as Error).message).to.match(/Migration dwh\/0102-broken\.sql failed: .+/);
    expect(await tableExists(store, 'mig_ok')).to.equal(true);
    expect(
      await pendingMigrations(store.db, store.dialect, { kind: 'dwh', dir: broken }),
    ).to.deep.equal(['dwh/0102-broken.sql']);
    if (fx.dialect === 'mysql') {
      // MySQL commits DDL per statement: the message says so, and the migration can run again.
      expect((error as Error).message).to.match(/MySQL commits DDL statement by statement/);
    } else {
      expect((error as Error).message).to.match(/rolled back as a whole/);
      expect(await tableExists(store, 'mig_half')).to.equal(false);
    }

    // Fixed, it applies (MySQL migrations are written to be re-run: IF NOT EXISTS).
    fs.writeFileSync(
      path.join(broken, fx.dialect, '0102-broken.sql'),
      'CREATE TABLE IF NOT EXISTS mig_half (id INTEGER NOT NULL PRIMARY KEY);\n\nCREATE TABLE mig_broken (id INTEGER NOT NULL PRIMARY KEY);',
    );
    expect(await migrate(store.db, store.dialect, { kind: 'dwh', dir: broken })).to.deep.equal([
      'dwh/0102-broken.sql',
    ]);
  });
});

describeDatabases('migrations over a reference (futoin-eventstream 1.3.9) database', (fx) => {
  it('takes the reference tables over as they are and keeps serving them', async () => {
    const store = await EventStore.open(fx.config, { log: testLog });
    try {
      const refDir = path.join(
        path.dirname(require.resolve('futoin-eventstream/package.json')),
        'sql',
        'active',
        fx.dialect,
      );
      // Flyway order: by version (V18.1 before V18.1.1).
      const version = (f: string) => (/^V([\d.]+)__/.exec(f)?.[1] ?? '').split('.').map(Number);
      const byVersion = (a: string, b: string) => {
        const [va, vb] = [version(a), version(b)];
        for (let i = 0; i < Math.max(va.length, vb.length); i++)
          if ((va[i] ?? -1) !== (vb[i] ?? -1)) return (va[i] ?? -1) - (vb[i] ?? -1);
        return 0;
      };
      for (const file of fs.readdirSync(refDir).sort(byVersion)) {
        for (const stmt of splitStatements(fs.readFileSync(path.join(refDir, file), 'utf8')))
          await store.db.execute(stmt);
      }
      const [id] = await store.addEvents([{ type: 'BEFORE', data: '{"from":"reference"}' }]);
      expect(await migrate(store.db, store.dialect, { kind: 'active' })).to.include(
        'active/0001-tables.sql',
      );
      const emoji = JSON.stringify({ s: 'emoji 🎉 and ünïcode' });
      const [id2] = await store.addEvents([{ type: 'AFTER', data: emoji }]);
      const rows = await store.readEvents({
        after: '0',
        upTo: await store.horizon(),
        limit: 10,
        want: null,
      });
      expect(rows.map((r) => r.id)).to.deep.equal([id, id2]);
      expect(rows[1]!.data).to.equal(emoji);
    } finally {
      await store.close();
    }
  });
});
