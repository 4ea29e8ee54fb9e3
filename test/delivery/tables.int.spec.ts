/**
 * Services configured with their own tables (event_table, consumer_table, as in the reference)
 * use them, also when they share a connection with services on the default tables.
 */
import { expect } from 'chai';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import { DBPollService } from '../../src/delivery/poll/DBPollService';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/delivery/poll/PollService';
import { DBGenService } from '../../src/generation/DBGenService';
import { GenFace } from '../../src/common/faces/GenFace';
import { bindStore } from '../../src/storage/ccm';
import { describeDatabases } from '../support/db';
import { steps } from '../support/service';

const DDL: Record<string, string[]> = {
  sqlite: [
    'CREATE TABLE my_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, type VARCHAR(16) NOT NULL, data TEXT NOT NULL, ts TIMESTAMP NOT NULL)',
    'CREATE TABLE my_consumers (id INTEGER PRIMARY KEY AUTOINCREMENT, last_evt_id INTEGER NOT NULL DEFAULT 0, reg_time TIMESTAMP NOT NULL, last_time TIMESTAMP NOT NULL, ident VARCHAR(64) NOT NULL UNIQUE)',
  ],
  postgresql: [
    'CREATE TABLE my_queue (id BIGSERIAL PRIMARY KEY, type VARCHAR(16) NOT NULL, data JSON NOT NULL, ts TIMESTAMP NOT NULL)',
    'CREATE TABLE my_consumers (id SERIAL PRIMARY KEY, last_evt_id BIGINT NOT NULL DEFAULT 0, reg_time TIMESTAMP NOT NULL, last_time TIMESTAMP NOT NULL, ident VARCHAR(64) NOT NULL UNIQUE)',
  ],
  mysql: [
    'CREATE TABLE my_queue (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, type VARCHAR(16) NOT NULL, data LONGTEXT NOT NULL, ts DATETIME NOT NULL)',
    'CREATE TABLE my_consumers (id INT AUTO_INCREMENT PRIMARY KEY, last_evt_id BIGINT UNSIGNED NOT NULL DEFAULT 0, reg_time DATETIME NOT NULL, last_time DATETIME NOT NULL, ident VARCHAR(64) NOT NULL UNIQUE)',
  ],
};

describeDatabases('services on their own tables', (fx) => {
  it('writes and reads the tables each service is configured with, on one shared connection', async () => {
    const store = await fx.openStore();
    for (const ddl of DDL[fx.dialect]!) await store.db.execute(ddl);
    const ccm = new AdvancedCCM();
    const executor = new Executor(ccm);
    bindStore(ccm, store);
    try {
      await steps((as) => {
        // A poll service on the default tables first, then gen and poll on their own.
        DBPollService.register(as, new Executor(ccm));
        DBGenService.register(as, executor, { event_table: 'my_queue' });
        DBPollService.register(as, executor, {
          event_table: 'my_queue',
          consumer_table: 'my_consumers',
        });
        GenFace.register(as, ccm, 'gen', executor);
        PollFace.register(as, ccm, 'poll', executor);
      });
      const id = await steps<string>((as) =>
        ccm.iface<GenFace>('gen').addEvent(as, 'MINE', { own: true }),
      );
      await steps((as) => ccm.iface<PollFace>('poll').registerConsumer(as, 'OWN'));
      const events = await steps<Event[]>((as) =>
        ccm.iface<PollFace>('poll').pollEvents(as, 'OWN'),
      );
      expect(events.map((e) => [e.id, e.type])).to.deep.equal([[id, 'MINE']]);
      const count = async (t: string): Promise<number> =>
        Number(
          (await store.db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${t}`))[0]?.n,
        );
      expect(await count('my_queue')).to.equal(1);
      expect(await count('my_consumers')).to.equal(1);
      expect(await count('evt_queue')).to.equal(0);
      expect(await count('evt_consumers')).to.equal(0);
    } finally {
      ccm.close();
    }
  });
});
