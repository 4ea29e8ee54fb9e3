/**
 * A crash between an acknowledged batch and its grouped pointer write, on each database, with a
 * real `evtstream serve` killed by SIGKILL: the receiver acknowledged batch 0, the service took
 * the acknowledgement (it counts it as delivered, and the batch waits for its pointer write),
 * but the write cannot commit yet (the test holds a lock on the consumer row, or on SQLite the
 * write lock). After the kill, the stored pointer is where it was, and the service started
 * again pushes batch 0 again: nothing acknowledged only in memory is lost.
 */
import { expect } from 'chai';
import type { EventId } from '../../src/common/ids';
import type { EventStore } from '../../src/storage/store';
import {
  freePort,
  killChildren,
  requireFreshDist,
  startCliServerWith,
  type CliServer,
} from '../support/cli';
import { describeDatabases } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { TEST_CREDENTIALS, TEST_SECRET, TEST_USER } from '../support/service';
import { sqlFor } from '../support/sql';
import { waitFor } from '../support/wait';

const ADMIN = 'root';
const ADMIN_SECRET = 'root-secret';
const COMPONENT = 'CRASH';
const IDENT = `${TEST_USER}:${COMPONENT}`;

/** A sample of the service's /metrics, as the admin; undefined when absent. */
async function metric(server: CliServer, sample: string): Promise<number | undefined> {
  const rsp = await fetch(new URL('/metrics', server.url), {
    headers: {
      authorization: `Basic ${Buffer.from(`${ADMIN}:${ADMIN_SECRET}`).toString('base64')}`,
    },
  });
  const text = await rsp.text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

/**
 * Holds what stops the consumer's pointer write from committing: a transaction holding the
 * row's lock (FOR UPDATE), or on SQLite the database's write lock. Resolves once it holds it;
 * `release()` ends the transaction.
 *
 * PostgreSQL does not notice that a client died while the client's statement waits for a lock:
 * released, the dead service's UPDATE would run and commit on its own. Before it lets go, the
 * lock's holder ends the backends that wait for it, as PostgreSQL ends a dead client's backend
 * once it notices (MySQL rolls the dead client's transaction back as soon as it runs on).
 */
async function lockConsumer(store: EventStore): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const d = sqlFor(store.dialect.name);
  const done = store.db.transaction(async (tx) => {
    // SQLite's transaction begins IMMEDIATE: it holds the write lock already.
    if (store.dialect.name !== 'sqlite') {
      await tx.query(
        `SELECT last_evt_id FROM ${d.quote(store.consumerTable)} WHERE ident = ? FOR UPDATE`,
        [IDENT],
      );
    }
    held();
    await released;
    if (store.dialect.name === 'postgresql') {
      await tx.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
    }
  });
  await Promise.race([holding, done]);
  return {
    release: async () => {
      release();
      await done;
    },
  };
}

describeDatabases('push: a crash between an acknowledged batch and its pointer write', (fx) => {
  const receivers: RawReceiver[] = [];
  afterEach(async function () {
    this.timeout(30_000);
    receivers.splice(0).forEach((r) => r.close());
    await killChildren();
  });

  before(function () {
    requireFreshDist();
  });

  /*
   * Breaking change this test catches: write the pointer when a batch is sent rather than once
   * it succeeded (ReliableSession.transmit acknowledging it in the window at once); the pointer
   * is then stored past batch 0 before the receiver answered, and after the crash batch 0 does
   * not come again.
   */
  it('loses nothing: the stored pointer stays, and the restarted service sends the batch again', async function () {
    this.timeout(120_000);
    const store = await fx.openStore();
    await store.registerConsumer(IDENT);
    // The consumer starts after whatever earlier tests stored.
    const start: EventId = await store.horizon();
    if (start !== '0') await store.advanceConsumer(IDENT, start);
    const ids = await store.addEvents(
      [1, 2, 3].map((i) => ({ type: 'CRASH', data: JSON.stringify({ i }) })),
    );

    const port = await freePort();
    const args = ['--port', String(port), '--db', fx.url, '--log-level', 'error'];
    const env = {
      env: {
        EVTSTREAM_USERS: `${TEST_USER}:${TEST_SECRET}`,
        EVTSTREAM_ADMINS: `${ADMIN}:${ADMIN_SECRET}`,
      },
    };
    const first = await startCliServerWith(args, env);

    // The receiver holds batch 0 until the lock is taken, then acknowledges it.
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const r = await connectRaw(first.wsUrl, TEST_CREDENTIALS, COMPONENT, null, '1.1', (raw) => {
      raw.behaviour = () => answered;
    });
    receivers.push(r);
    await r.until(() => r.calls.length > 0);
    const lock = await lockConsumer(store);
    let released = false;
    try {
      // Nothing was stored while the batch was only sent.
      expect(await store.consumerPointer(IDENT), 'the pointer, batch 0 sent').to.equal(start);
      answer();
      await r.until(() => r.events.length >= ids.length);
      expect(
        r.calls.map((c) => [c.seq, c.ids]),
        'batch 0, acknowledged',
      ).to.deep.equal([[0, ids]]);
      // The service took the acknowledgement: it counts the events as delivered, and batch 0
      // is still in flight, waiting for its pointer write.
      await waitFor('the service to take the acknowledgement', async () => {
        const delivered = await metric(
          first,
          `evtstream_events_delivered_total{consumer="${IDENT}"}`,
        );
        return delivered === ids.length;
      });
      expect(
        await metric(first, `evtstream_push_in_flight_batches{consumer="${IDENT}"}`),
        'acknowledged, its pointer not stored',
      ).to.equal(1);

      first.child.kill();
      expect((await first.child.exited).signal).to.equal('SIGKILL');
      await lock.release();
      released = true;
    } finally {
      if (!released) await lock.release();
    }
    expect(await store.consumerPointer(IDENT), 'the pointer where it was').to.equal(start);

    const second = await startCliServerWith(args, env);
    const again = await connectRaw(second.wsUrl, TEST_CREDENTIALS, COMPONENT);
    receivers.push(again);
    await again.until(() => again.events.length >= ids.length);
    expect(again.calls[0], 'batch 0 again').to.deep.equal({ seq: 0, ids });
    await waitFor('the pointer stored at the last event', async () => {
      return (await store.consumerPointer(IDENT)) === ids[ids.length - 1];
    });
  });
});
