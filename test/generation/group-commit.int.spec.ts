/**
 * Group commit: concurrent addEvent calls share transactions, each caller still gets its own ID
 * only once its event is committed, and one event the database refuses fails only its caller.
 */
import { expect } from 'chai';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import { DBGenService } from '../../src/generation/DBGenService';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases } from '../support/db';
import { steps } from '../support/service';

const POISON_DDL: Record<string, string[]> = {
  sqlite: [
    "CREATE TRIGGER no_poison BEFORE INSERT ON evt_queue WHEN NEW.type = 'POISON' BEGIN SELECT RAISE(ABORT, 'poison'); END",
  ],
  postgresql: ["ALTER TABLE evt_queue ADD CONSTRAINT no_poison CHECK (type <> 'POISON')"],
  mysql: ["ALTER TABLE evt_queue ADD CONSTRAINT no_poison CHECK (type <> 'POISON')"],
};

describeDatabases('group commit', (fx) => {
  let store: EventStore;
  let ccm: AdvancedCCM;
  let gen: DBGenService;
  let transactions = 0;

  before(async () => {
    store = await fx.openStore();
    store.on('committed', () => transactions++);
    ccm = new AdvancedCCM();
    const executor = new Executor(ccm);
    gen = await steps<DBGenService>((as) => {
      const impl = DBGenService.register(as, executor, { store });
      as.add((as) => as.success(impl));
    });
  });
  after(() => ccm?.close());

  const dataOf = async (): Promise<Map<string, unknown>> =>
    new Map(
      (
        await store.readEvents({ after: '0', upTo: await store.horizon(), limit: 1000, want: null })
      ).map((e) => [e.id, JSON.parse(e.data) as unknown]),
    );

  it('commits a lone call before answering it', async () => {
    const id = await gen.addEventAsync('ONE', { lone: true });
    expect((await dataOf()).get(id)).to.deep.equal({ lone: true });
  });

  it('shares transactions among 300 concurrent callers, each getting the ID of its own event', async () => {
    transactions = 0;
    const ids = await Promise.all(
      Array.from({ length: 300 }, (_v, i) => gen.addEventAsync('MANY', { i })),
    );
    expect(new Set(ids).size).to.equal(300);
    expect(transactions).to.be.at.most(10);
    const stored = await dataOf();
    ids.forEach((id, i) => expect(stored.get(id), `event ${i}`).to.deep.equal({ i }));
  });

  it('fails only the caller whose event the database refuses', async () => {
    for (const ddl of POISON_DDL[fx.dialect]!) await store.db.execute(ddl);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_v, i) => gen.addEventAsync(i === 7 ? 'POISON' : 'GOOD', { i })),
    );
    expect(results.filter((r) => r.status === 'rejected')).to.have.length(1);
    expect(results[7]!.status).to.equal('rejected');
    const stored = await dataOf();
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') expect(stored.get(r.value)).to.deep.equal({ i });
    });
  });
});
