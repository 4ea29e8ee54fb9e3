/**
 * PostgreSQL behind PgBouncer (a pooler of this test's own in front of the test server):
 * coordination needs a server session of its own, so it works through a session pool and is
 * refused, with a clear error, through a transaction pool; event traffic works through a
 * transaction pool (no named prepared statements, no startup options) while locks and LISTEN
 * take a session address.
 */
import { expect } from 'chai';
import { StreamService } from '../../src/app/service';
import { CoordinationConfigError } from '../../src/storage/coordination/coordinator';
import { parseDbUrl } from '../../src/storage/config';
import { EventStore } from '../../src/storage/store';
import { describeDatabases, testLog } from '../support/db';
import { PGBOUNCER_BIN, startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { connectRaw } from '../support/push';
import { TEST_CREDENTIALS, TEST_SECRET, TEST_USER } from '../support/service';

const FAST = { heartbeat_ms: 100, fence_ms: 600 };

describeDatabases(
  'PostgreSQL through PgBouncer',
  (fx) => {
    let bouncer: PgBouncer;

    before(async function () {
      if (!PGBOUNCER_BIN) {
        if (process.env['CI'] === 'true') throw new Error('PgBouncer is not installed (CI=true)');
        this.skip();
      }
      // The schema first, directly: then every store below finds it.
      await fx.openStore();
      bouncer = await startPgBouncer(fx.url);
    });
    after(() => bouncer?.stop());

    it('refuses coordination through a transaction pool, naming the cause', async () => {
      const store = await EventStore.open(parseDbUrl(fx.url), {
        log: testLog,
        coordination: { ...FAST, node: 'through-transaction-pool' },
        sessionDatabase: parseDbUrl(bouncer.url('transaction')),
      });
      try {
        let error: unknown = null;
        await store.startCoordination().catch((e: unknown) => (error = e));
        expect(error).to.be.instanceOf(CoordinationConfigError);
        expect((error as Error).message).to.match(/transaction pool/);
        expect((error as Error).message).to.match(/session pool/);
      } finally {
        await store.close();
      }
    });

    it('coordinates through a session pool: one holder per lock', async () => {
      const open = (node: string): Promise<EventStore> =>
        EventStore.open(parseDbUrl(fx.url), {
          log: testLog,
          coordination: { ...FAST, node },
          sessionDatabase: parseDbUrl(bouncer.url('session')),
        });
      const [a, b] = [await open('pooled-a'), await open('pooled-b')];
      try {
        const [ca, cb] = [await a.startCoordination(), await b.startCoordination()];
        const la = await ca.tryAcquire('x');
        expect(la?.valid).to.equal(true);
        expect(await cb.tryAcquire('x')).to.equal(null);
        await la!.release();
        expect((await cb.tryAcquire('x'))?.valid).to.equal(true);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('refuses a transaction-pool database without a session address for locks and LISTEN', async () => {
      let error: unknown = null;
      await EventStore.open(parseDbUrl(`${bouncer.url('transaction')}?pool_mode=transaction`), {
        log: testLog,
      })
        .then((s) => s.close())
        .catch((e: unknown) => (error = e));
      expect((error as Error)?.message).to.match(/transaction pool.*session of their own/);
    });

    it('serves events through a transaction pool, with locks and LISTEN on a session address', async function () {
      this.timeout(60_000);
      const service = await StreamService.start({
        db: parseDbUrl(`${bouncer.url('transaction')}?pool_mode=transaction&max=8`),
        sessionDb: parseDbUrl(fx.url),
        host: '127.0.0.1',
        port: 0,
        users: new Map([[TEST_USER, TEST_SECRET]]),
        log: testLog,
        secureLoopback: true,
        coordination: { ...FAST, node: 'pooled-service' },
      });
      try {
        const r = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'POOLED');
        try {
          // Enough of each statement that the direct pool would have named (prepared) them.
          const ids: string[] = [];
          for (let i = 0; i < 30; i++) {
            ids.push(...(await service.store.addEvents([{ type: 'POOL', data: String(i) }])));
          }
          await r.until(() => r.events.some((e) => e.id === ids[ids.length - 1]));
          expect(r.events.map((e) => e.id)).to.deep.equal(ids);
          expect(service.store.coordinator().stats()).to.deep.include({
            kind: 'database',
            up: true,
          });
        } finally {
          r.close();
        }
      } finally {
        await service.close();
      }
    });
  },
  ['postgresql'],
);
