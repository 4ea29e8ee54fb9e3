/**
 * Coordination of nodes over one database, in process: two stores on one database are two
 * nodes, each with its coordination session (PostgreSQL advisory locks, MySQL named locks).
 * Locks held by one node at a time and never stacked, fencing of a node whose session is gone
 * or whose heartbeat is too old (a paused process), the owner epoch that fences pointer writes,
 * control messages, and node names.
 */
import { expect } from 'chai';
import {
  CoordinationConfigError,
  type Coordinator,
} from '../../src/storage/coordination/coordinator';
import type { ControlMessage } from '../../src/storage/coordination/control';
import type { CoordinationOptions } from '../../src/storage/coordination/options';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases, type DbFixture } from '../support/db';
import { withTimeout } from '../../src/common/async';
import { waitFor, waitForEvent } from '../support/wait';

/** Fast timings: a node fences 600 ms after its last answered heartbeat. */
const FAST: CoordinationOptions = { heartbeat_ms: 100, fence_ms: 600, probe_ms: 300 };

async function node(
  fx: DbFixture,
  name: string,
  options = FAST,
): Promise<[EventStore, Coordinator]> {
  const store = await fx.openStore({ coordination: { ...options, node: name } });
  return [store, await store.startCoordination()];
}

/** Ends a node's coordination session from the database's side. */
async function terminate(fx: DbFixture, session: string | null): Promise<void> {
  expect(session, 'the coordination session').to.be.a('string');
  await fx.admin(
    fx.dialect === 'postgresql'
      ? `SELECT pg_terminate_backend(${Number(session)})`
      : `KILL ${Number(session)}`,
  );
}

describeDatabases(
  'coordination of nodes over the database',
  (fx) => {
    let a: Coordinator;
    let b: Coordinator;
    let storeA: EventStore;
    let storeB: EventStore;

    beforeEach(async () => {
      [storeA, a] = await node(fx, `a-${Date.now()}`);
      [storeB, b] = await node(fx, `b-${Date.now()}`);
    });
    afterEach(async () => {
      await storeA.close();
      await storeB.close();
    });

    it('lets one node at a time hold a lock, takes it once per session, and frees it at release', async () => {
      const la = await a.tryAcquire('x');
      expect(la?.valid).to.equal(true);
      expect(await b.tryAcquire('x'), 'held by the other node').to.equal(null);
      // A second acquisition on the same session would stack (held twice, released once).
      expect(await a.tryAcquire('x'), 'never twice on one session').to.equal(null);
      await la!.release();
      expect(la!.valid).to.equal(false);
      const lb = await b.tryAcquire('x');
      expect(lb?.valid, 'free once released').to.equal(true);
      expect(await a.tryAcquire('x')).to.equal(null);
      await lb!.release();
      expect((await a.tryAcquire('x'))?.valid).to.equal(true);
      expect(a.stats()).to.deep.include({ kind: 'database', up: true, held: 1 });
    });

    it('fences a node at once when its coordination session is terminated; another node takes its locks', async () => {
      const la = await a.tryAcquire('x');
      const fenced = waitForEvent<[string]>(a, 'fenced');
      await terminate(fx, a.stats().session);
      const [reason] = await fenced;
      expect(reason).to.be.a('string');
      expect(la!.valid, 'its lease ended with the session').to.equal(false);
      const lb = await waitFor('the other node to get the lock', () => b.tryAcquire('x'));
      expect(lb.valid).to.equal(true);
      // The fenced node connects again, and finds the lock taken.
      await waitFor('the fenced node up again', () => a.stats().up);
      expect(await a.tryAcquire('x')).to.equal(null);
      expect(a.stats().fences).to.equal(1);
    });

    it('fences a paused node: its leases end once its last heartbeat is older than fence_ms, before it acts again', async () => {
      const la = await a.tryAcquire('x');
      expect(la!.valid).to.equal(true);
      // The process stalls (a long GC pause, SIGSTOP): no timer runs, no heartbeat goes out.
      // The monotonic clock still counts the pause, so the lease is stale as soon as it runs.
      const until = performance.now() + 3 * FAST.fence_ms!;
      while (performance.now() < until) {
        // busy: the event loop is blocked
      }
      expect(la!.valid, 'checked right after the pause, before any timer ran').to.equal(false);
      expect(a.stats().up).to.equal(false);
      // Its session was dropped: the database frees the lock for the other node.
      const lb = await waitFor('the other node to get the lock', () => b.tryAcquire('x'));
      expect(lb.valid).to.equal(true);
    });

    it('fences pointer writes with the owner epoch: a node that lost the consumer never moves its pointer', async () => {
      const ident = `u:EPOCH${Date.now()}`;
      await storeA.registerConsumer(ident);
      const ca = await storeA.claimConsumer(ident, a.node);
      expect(ca).to.deep.include({ pointer: '0', previous: null });
      const cb = await storeB.claimConsumer(ident, b.node);
      expect(cb!.previous, 'the node it takes over from').to.equal(a.node);
      expect(BigInt(cb!.epoch)).to.equal(BigInt(ca!.epoch) + 1n);
      expect(await storeA.advanceConsumer(ident, '5', '0', ca!.epoch), 'old epoch').to.equal(false);
      expect(await storeA.consumerPointer(ident)).to.equal('0');
      expect(await storeB.advanceConsumer(ident, '5', '0', cb!.epoch)).to.equal(true);
      expect(
        await storeB.advanceConsumer(ident, '5', '0', cb!.epoch),
        'a retry that applied',
      ).to.equal(true);
      // A release names no owner only for the epoch that owns it.
      await storeA.releaseConsumer(ident, ca!.epoch);
      expect(await storeA.consumerOwners()).to.deep.include({
        ident,
        node: b.node,
        epoch: cb!.epoch,
      });
      await storeB.releaseConsumer(ident, cb!.epoch);
      expect((await storeA.consumerOwners()).some((o) => o.ident === ident)).to.equal(false);
      expect((await storeA.claimConsumer(ident, a.node))!.previous, 'let go cleanly').to.equal(
        null,
      );
    });

    it('passes control messages to the other nodes, not back to the sender', async () => {
      const gotB: ControlMessage[] = [];
      const gotA: ControlMessage[] = [];
      b.on('control', (m) => gotB.push(m));
      a.on('control', (m) => gotA.push(m));
      await a.send({ kind: 'probe', scope: 'evt_consumers', subject: 'u:X', info: '' });
      await storeA.sendControl({
        kind: 'end',
        scope: 'evt_consumers',
        subject: 'u:Y',
        from: '',
        info: 'moved',
        epoch: '12345678901234567890',
      });
      await waitFor('both messages at the other node', () => gotB.length >= 2);
      expect(gotB.map((m) => [m.kind, m.subject, m.from, m.epoch])).to.deep.equal([
        ['probe', 'u:X', a.node, ''],
        ['end', 'u:Y', '', '12345678901234567890'],
      ]);
      // A message without a sender (a command on the database) reaches the sending node too.
      await waitFor('the anonymous one back at the first node', () => gotA.length >= 1);
      expect(gotA.map((m) => m.kind)).to.deep.equal(['end']);
    });

    it('refuses to start a second node under the name of a running one', async () => {
      const store = await fx.openStore({ coordination: { ...FAST, node: a.node } });
      try {
        let error: unknown = null;
        await store.startCoordination().catch((e: unknown) => (error = e));
        expect(error).to.be.instanceOf(CoordinationConfigError);
        expect((error as Error).message).to.contain(`named ${a.node}`);
      } finally {
        await store.close();
      }
    });
    it('has the server roll back a transaction a stalled node left open, so its row locks stop no other node', async function () {
      this.timeout(60_000);
      // FAST fences at 600 ms: the server ends a pool connection idle in a transaction after
      // twice that (MariaDB counts whole seconds: 2 s). Without it, the other node's update
      // waits until the stalled one runs again (PostgreSQL) or fails after innodb_lock_wait_timeout.
      if (fx.dialect === 'mysql') {
        const [server] = await storeA.db.query<{ v: unknown }>('SELECT VERSION() AS v');
        if (!/mariadb/i.test(String(server?.v))) {
          // MySQL has no such setting (README "Fencing"): the pool does without it.
          const refused = await storeA.db.query('SELECT @@idle_transaction_timeout').then(
            () => false,
            () => true,
          );
          expect(refused, 'MySQL has no idle_transaction_timeout').to.equal(true);
          return;
        }
      }
      await storeA.db.execute('CREATE TABLE idle_tx_probe (id INT PRIMARY KEY, v INT)');
      await storeA.db.execute('INSERT INTO idle_tx_probe (id, v) VALUES (1, 0)');
      let resume!: () => void;
      const stall = new Promise<void>((resolve) => (resume = resolve));
      let locked = false;
      const stalled = storeA.db.transaction(async (tx) => {
        await tx.execute('UPDATE idle_tx_probe SET v = 1 WHERE id = 1');
        locked = true;
        await stall; // the process stops here, holding the row lock
      });
      stalled.catch(() => undefined);
      try {
        await waitFor('the stalled transaction holds the row', () => locked);
        const other = await withTimeout(
          storeB.db.execute('UPDATE idle_tx_probe SET v = 2 WHERE id = 1'),
          20_000,
        );
        expect(other.affected).to.equal(1);
      } finally {
        resume();
      }
      let error: unknown;
      await stalled.catch((err: unknown) => (error = err));
      expect(error, 'the stalled transaction was rolled back, not committed').to.be.instanceOf(
        Error,
      );
      const rows = await storeB.db.query<{ v: unknown }>(
        'SELECT v FROM idle_tx_probe WHERE id = 1',
      );
      expect(Number(rows[0]?.v)).to.equal(2);
    });
  },
  ['postgresql', 'mysql'],
);

describeDatabases(
  'coordination of a node alone',
  (fx) => {
    it('keeps locks in memory on SQLite: one holder, never twice, free at release', async () => {
      const store = await fx.openStore({ coordination: { node: 'solo' } });
      try {
        const c = await store.startCoordination();
        expect(c.stats()).to.deep.include({ kind: 'local', up: true });
        const l = await c.tryAcquire('x');
        expect(l?.valid).to.equal(true);
        expect(await c.tryAcquire('x')).to.equal(null);
        await l!.release();
        expect((await c.tryAcquire('x'))?.valid).to.equal(true);
      } finally {
        await store.close();
      }
    });
  },
  ['sqlite'],
);
