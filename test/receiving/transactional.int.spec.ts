/**
 * TransactionalReceiver on every database as the consumer's own, through each handle a consumer
 * may pass (pg Pool and Client, mysql2 Pool and Connection, sqlite3, futoin-database), fed by an
 * in-process push service (FakePushService): each event's effect (a row with a unique event_id)
 * happens once, with the consumer's position in the same transaction; what was applied before is
 * answered as delivered; a failed batch leaves nothing; two receivers of one consumer never both
 * apply an event.
 */
import { expect } from 'chai';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import type { Event } from '../../src/common/event';
import { consumerStateDdl, CONSUMER_STATE_TABLE } from '../../src/receiving/consumer-state';
import { TransactionalReceiver } from '../../src/receiving/TransactionalReceiver';
import { describeDatabases } from '../support/db';
import { waitFor } from '../support/wait';
import { adaptersOf, appliedDdl, openConsumerDb, type ConsumerDb } from './consumer-db';
import { FakePushService, makeEvents, run, type Outcome, type PushSession } from './support';

const accepted: Outcome = { ok: true, result: true };

describeDatabases('TransactionalReceiver', (fx) => {
  let serverCcm: AdvancedCCM;
  let pushExecutor: Executor;
  let pusher: FakePushService;
  let receiverCcm: AdvancedCCM;
  let dbCcm: AdvancedCCM;
  const started: TransactionalReceiver<unknown>[] = [];
  let serial = 0;

  beforeEach(async function () {
    serverCcm = new AdvancedCCM();
    pushExecutor = new Executor(serverCcm);
    await run((as) => {
      pusher = FakePushService.register(as, pushExecutor);
    });
    receiverCcm = new AdvancedCCM();
    dbCcm = new AdvancedCCM();
  });

  afterEach(function () {
    for (const r of started.splice(0)) r.stop();
    receiverCcm.close();
    pushExecutor.close();
    serverCcm.close();
    dbCcm.close();
  });

  for (const adapter of adaptersOf(fx.dialect)) {
    describe(`through ${adapter}`, function () {
      let db: ConsumerDb;
      let table: string;
      let key: string;

      beforeEach(async function () {
        db = await openConsumerDb(fx.config, fx.url, adapter, dbCcm);
        table = `applied_${++serial}`;
        key = `C${serial}`;
        await db.exec(appliedDdl(fx.dialect, table));
      });
      afterEach(() => db?.close());

      /** A receiver applying into `table`; `fail` decides per batch whether the handler throws after its rows. */
      function receiver(
        fail: (events: Event[]) => boolean = () => false,
        options: { createTable?: boolean; stateTable?: string } = {},
        on: ConsumerDb = db,
      ): TransactionalReceiver<unknown> {
        const r = new TransactionalReceiver(receiverCcm, {
          database: on.store,
          stateKey: key,
          ...options,
          handler: async (events, tx) => {
            await on.insert(tx, table, events);
            if (fail(events)) throw new Error('the handler fails on purpose');
          },
        });
        started.push(r);
        return r;
      }

      async function connect(r: TransactionalReceiver<unknown>): Promise<PushSession> {
        const before = pusher.sessions.length;
        r.start(pushExecutor, null, { component: 'TX' });
        await waitFor('a push session', () => pusher.sessions.length > before);
        return pusher.lastSession;
      }

      const ids = (from: number, to: number): string[] =>
        Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

      it('applies each batch once with its position, and answers what it applied before without applying it again', async function () {
        const r = receiver();
        const s = await connect(r);
        expect(await s.push(0, makeEvents(1, 3)).done).to.deep.equal(accepted);
        expect(await s.push(1, makeEvents(4, 2)).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(ids(1, 5));
        expect(await r.position()).to.equal('5');
        // Overlapping the applied ones: only the new are applied.
        expect(await s.push(2, makeEvents(3, 5)).done).to.deep.equal(accepted);
        // All applied before: answered, nothing applied.
        expect(await s.push(3, makeEvents(1, 7)).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(ids(1, 7));
        expect(await r.position()).to.equal('7');
      });

      it('rolls a failed batch back with its position, and applies it when it comes again', async function () {
        let failures = 1;
        const r = receiver(() => failures-- > 0);
        const s = await connect(r);
        const failed = await s.push(0, makeEvents(1, 4)).done;
        expect(failed.ok).to.equal(false);
        expect(await db.applied(table)).to.deep.equal([]);
        expect(await r.position()).to.equal('0');
        expect(await s.push(0, makeEvents(1, 4)).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(ids(1, 4));
      });

      // Breaking change it catches: replayed parked events (IDs below the position) answered
      // as applied before, without applying them: the operator's replay would be lost.
      it('applies a replayed parked event below its position, leaving the position alone', async function () {
        const r = receiver();
        const s = await connect(r);
        // Event 3 was parked: the stream went on past it.
        expect(await s.push(0, makeEvents(1, 2)).done).to.deep.equal(accepted);
        expect(await s.push(1, makeEvents(4, 2)).done).to.deep.equal(accepted);
        expect(await r.position()).to.equal('5');
        const replay = makeEvents(3, 1).map((e) => ({ ...e, replayed: true as const }));
        expect(await s.push(2, replay).done).to.deep.equal(accepted);
        // In the order applied.
        expect(await db.applied(table)).to.deep.equal(['1', '2', '4', '5', '3']);
        expect(await r.position()).to.equal('5');
        // The stream goes on from the position.
        expect(await s.push(3, makeEvents(5, 2)).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(['1', '2', '4', '5', '3', '6']);
        expect(await r.position()).to.equal('6');
      });

      it('a receiver started anew (a restarted process) goes on from the stored position', async function () {
        const first = receiver();
        const s1 = await connect(first);
        expect(await s1.push(0, makeEvents(1, 5)).done).to.deep.equal(accepted);
        first.stop();
        // The service's pointer may lag behind: it sends what was applied again.
        const second = receiver();
        const s2 = await connect(second);
        expect(await s2.push(0, makeEvents(3, 6)).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(ids(1, 8));
      });

      it('two receivers of one consumer never both apply an event', async function () {
        // Each with connections of its own, as two processes.
        const other = await openConsumerDb(fx.config, fx.url, adapter, dbCcm, 'second');
        try {
          const a = receiver();
          const b = receiver(() => false, {}, other);
          const sa = await connect(a);
          const sb = await connect(b);
          for (let round = 0; round < 5; round++) {
            const batch = makeEvents(1 + round * 3, 3);
            const [ra, rb] = await Promise.all([
              sa.push(round, batch).done,
              sb.push(round, batch).done,
            ]);
            expect([ra, rb]).to.deep.equal([accepted, accepted]);
          }
          expect(await db.applied(table)).to.deep.equal(ids(1, 15));
        } finally {
          const stopped = started.splice(0);
          for (const r of stopped) r.stop();
          await other.close();
        }
      });

      it('keeps IDs beyond 2^53 exactly', async function () {
        const r = receiver();
        const s = await connect(r);
        const big = ['9007199254740993', '9007199254740994', '9007199254740995'];
        const events = big.map((id) => ({ id, type: 'T', data: null, ts: '2026-01-01T00:00:00Z' }));
        expect(await s.push(0, events.slice(0, 2)).done).to.deep.equal(accepted);
        expect(await s.push(1, events).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(big);
        expect(await r.position()).to.equal(big[2]);
      });

      it('with createTable false, fails until the table exists, then applies', async function () {
        const own = `state_${serial}`;
        const r = receiver(() => false, { createTable: false, stateTable: own });
        const s = await connect(r);
        const failed = await s.push(0, makeEvents(1, 2)).done;
        expect(failed.ok).to.equal(false);
        expect(await db.applied(table)).to.deep.equal([]);
        await db.exec(consumerStateDdl(fx.dialect, own));
        expect(await s.push(0, makeEvents(1, 2)).done).to.deep.equal(accepted);
        expect(await db.applied(table)).to.deep.equal(ids(1, 2));
      });
    });
  }

  it('refuses options that cannot work', function () {
    const store = {
      prepare: () => Promise.resolve(),
      position: () => Promise.resolve('0'),
      apply: () => Promise.resolve(true),
      applyAside: () => Promise.resolve(),
    };
    const make = (o: Record<string, unknown>) => () =>
      new TransactionalReceiver(receiverCcm, { database: store, handler: () => undefined, ...o });
    expect(make({ database: {} })).to.throw(RangeError, 'receiver option database');
    expect(make({ database: 'pg' })).to.throw(TypeError, 'receiver option database');
    expect(make({ handler: 'x' })).to.throw(TypeError, 'receiver option handler');
    expect(make({ stateTable: 'a;b' })).to.throw(RangeError, 'receiver option stateTable');
    expect(make({ stateKey: '' })).to.throw(RangeError, 'receiver option stateKey');
    expect(make({ createTable: 'yes' })).to.throw(TypeError, 'receiver option createTable');
    expect(CONSUMER_STATE_TABLE).to.equal('evt_consumer_state');
  });

  it('refuses the LIVE stream, also by default (a ReliableReceiver without a component takes it)', function () {
    const store = {
      prepare: () => Promise.resolve(),
      position: () => Promise.resolve('0'),
      apply: () => Promise.resolve(true),
      applyAside: () => Promise.resolve(),
    };
    const r = new TransactionalReceiver(receiverCcm, { database: store, handler: () => undefined });
    expect(() => r.start(pushExecutor, null, {})).to.throw(TypeError, 'misses events');
    expect(() => r.start(pushExecutor, null, { component: 'LIVE' })).to.throw(
      TypeError,
      'misses events',
    );
    expect(pusher.sessions).to.have.length(0);
  });
});
