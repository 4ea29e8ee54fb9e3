/**
 * PostgreSQL NOTIFY wake-ups: events added by another process reach a push consumer at once,
 * not at the next backstop poll. The backstop is set a minute out, so only the LISTEN connection
 * can deliver within the bound; the bound is generous for a loaded machine and still far below
 * the backstop.
 *
 * Breaking change: `listen: false` in the push options (or a Waker that never starts its
 * listenLoop) makes both tests time out.
 */
import { expect } from 'chai';
import type { StreamService } from '../../src/app/service';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { startService } from '../support/service';
import { TEST_CREDENTIALS } from '../support/service';
import { waitFor } from '../support/wait';

/** The backstop poll: far longer than any wait below. */
const BACKSTOP_MS = 60_000;
/** How long a notified event may take to arrive. */
const NOTIFIED_MS = 15_000;

describeDatabases(
  'push wake-ups by PostgreSQL NOTIFY',
  (fx) => {
    let service: StreamService;
    /** Another writer: its own store and pool, as another process would have. */
    let other: EventStore;
    let consumer: RawReceiver | undefined;

    before(async () => {
      service = await startService(fx, {
        push: { poll_min_ms: BACKSTOP_MS, poll_max_ms: BACKSTOP_MS },
      });
      other = await fx.openStore();
    });
    afterEach(() => consumer?.close());
    after(() => service?.close());

    /** Adds one event through `other` and resolves once the consumer has it. */
    async function addAndReceive(receiver: RawReceiver, n: number): Promise<void> {
      const [id] = await other.addEvents([{ type: 'NOTIFIED', data: JSON.stringify({ n }) }]);
      await receiver.until(() => receiver.events.some((e) => e.id === id), NOTIFIED_MS);
    }

    it('delivers an event committed by another process long before the backstop poll', async function () {
      this.timeout(4 * NOTIFIED_MS);
      consumer = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'NOTIFYPUSH');
      // Two in a row: the second wake must come from a new notification, not from the start.
      await addAndReceive(consumer, 1);
      await addAndReceive(consumer, 2);
      expect(consumer.events.map((e) => e.type)).to.deep.equal(['NOTIFIED', 'NOTIFIED']);
    });

    it('listens again after its connection is killed, and catches up on what it missed', async function () {
      this.timeout(6 * NOTIFIED_MS);
      consumer = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'NOTIFYAGAIN');
      const listeners = async (): Promise<number[]> =>
        (
          await other.db.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database()",
          )
        ).map((r) => Number(r.pid));
      const before = await waitFor('the LISTEN connection', async () => {
        const pids = await listeners();
        return pids.length > 0 && pids;
      });
      // No new connection to this database until the event below is in: it is notified while
      // no one listens, so only the catch-up wake after the reconnect can bring it (breaking
      // change: drop the wakeNow() after a reconnect in Waker.listenLoop).
      const dbName = (await other.db.query<{ d: string }>('SELECT current_database() AS d'))[0]!.d;
      await fx.admin(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`);
      let missed: string | undefined;
      try {
        for (const pid of before) await other.db.query(`SELECT pg_terminate_backend(${pid})`);
        await waitFor('the LISTEN connection to end', async () => (await listeners()).length === 0);
        [missed] = await other.addEvents([{ type: 'NOTIFIED', data: '{"missed":true}' }]);
      } finally {
        await fx.admin(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
      }
      await consumer.until(() => consumer!.events.some((e) => e.id === missed), 2 * NOTIFIED_MS);
      await waitFor('a new LISTEN connection', async () =>
        (await listeners()).some((pid) => !before.includes(pid)),
      );
      await addAndReceive(consumer, 3);
    });
  },
  ['postgresql'],
);
