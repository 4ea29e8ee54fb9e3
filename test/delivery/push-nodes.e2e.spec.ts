/**
 * Push delivery with two nodes over one database (two services in this process, each with its
 * own store and coordination session): one node pushes a reliable consumer at a time, a
 * receiver on the other waits as a standby and takes over, a node that loses its coordination
 * session stops and closes its receivers' connections, and a move on one node ends the session
 * on the other. Fast coordination timings keep the waits short.
 */
import { expect } from 'chai';
import type { StreamService } from '../../src/app/service';
import { cmpIds, type EventId } from '../../src/common/ids';
import type { CoordinationOptions } from '../../src/storage/coordination/options';
import { takeoverWaitMs } from '../../src/storage/coordination/options';
import { AdminFace } from '../../src/common/faces/AdminFace';
import { describeDatabases, type DbFixture } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { startTcpProxy } from '../support/tcp-proxy';
import { waitFor, waitForValue } from '../support/wait';

const FAST: CoordinationOptions = { heartbeat_ms: 100, fence_ms: 800, probe_ms: 500 };

const ADMIN = 'root:root-secret';

describeDatabases(
  'push from several nodes over one database',
  (fx: DbFixture) => {
    const nodes: StreamService[] = [];
    const open: RawReceiver[] = [];

    async function start(name: string): Promise<StreamService> {
      const svc = await startService(fx, {
        coordination: { ...FAST, node: `${name}-${Date.now()}` },
        admins: new Map([['root', 'root-secret']]),
      });
      nodes.push(svc);
      return svc;
    }

    afterEach(async () => {
      open.splice(0).forEach((r) => r.close());
      await Promise.all(nodes.splice(0).map((n) => n.close()));
    });

    const ident = (component: string): string => `${TEST_USER}:${component}`;

    async function connect(svc: StreamService | string, component: string): Promise<RawReceiver> {
      const url = typeof svc === 'string' ? svc : svc.wsUrl;
      const r = await connectRaw(url, TEST_CREDENTIALS, component);
      open.push(r);
      return r;
    }

    /** A consumer registered after every event stored so far. */
    async function fresh(svc: StreamService, component: string): Promise<void> {
      await svc.store.registerConsumer(ident(component));
      await svc.store.advanceConsumer(ident(component), await svc.store.horizon());
    }

    async function add(svc: StreamService, n: number): Promise<EventId[]> {
      const ids: EventId[] = [];
      for (let i = 0; i < n; i++) {
        ids.push(...(await svc.store.addEvents([{ type: 'HA', data: JSON.stringify({ i }) }])));
      }
      return ids;
    }

    const pushing = async (svc: StreamService, component: string): Promise<boolean> =>
      (await svc.push.hub()).reliableSessions().some((s) => s.consumer === ident(component));

    /** Every event of `ids` among the receivers' events, in order, the last one's pointer stored. */
    async function deliveredInOrder(
      svc: StreamService,
      component: string,
      ids: EventId[],
      receivers: RawReceiver[],
    ): Promise<void> {
      const last = ids[ids.length - 1]!;
      await waitForValue(
        `the pointer of ${component} at ${last}`,
        () => svc.store.consumerPointer(ident(component)),
        (p) => cmpIds(p ?? '0', last) >= 0,
      );
      const want = new Set(ids);
      // Across the takeover: each one's events in ID order; together, every event.
      const got = new Set<string>();
      for (const r of receivers) {
        const mine = r.events.map((e) => e.id).filter((id) => want.has(id));
        expect(mine, 'in ID order').to.deep.equal([...mine].sort(cmpIds));
        mine.forEach((id) => got.add(id));
      }
      expect([...got].sort(cmpIds)).to.deep.equal(ids);
    }

    it('pushes from the node of the first receiver; a receiver on another node waits, then takes over at once when it goes', async function () {
      this.timeout(60_000);
      const [n1, n2] = [await start('one'), await start('two')];
      await fresh(n1, 'SHARED');
      const first = await connect(n1, 'SHARED');
      const second = await connect(n2, 'SHARED');
      const a = await add(n1, 10);
      await first.until(() => first.events.some((e) => e.id === a[a.length - 1]));
      expect(await pushing(n2, 'SHARED'), 'the second node does not push it').to.equal(false);
      expect((await n2.push.hub()).stats().standby).to.equal(1);
      expect(second.events).to.deep.equal([]);
      const owner = await n1.store.consumerOwners();
      expect(owner.find((o) => o.ident === ident('SHARED'))?.node).to.equal(
        n1.store.coordinator().node,
      );

      // The first receiver goes: its node lets go cleanly, the other takes over without a wait.
      first.close();
      const started = performance.now();
      const b = await add(n2, 10);
      await second.until(() => second.events.some((e) => e.id === b[b.length - 1]));
      const took = performance.now() - started;
      expect(took, 'a clean handover waits for no fence').to.be.below(
        takeoverWaitMs({
          fenceMs: FAST.fence_ms!,
          heartbeatMs: FAST.heartbeat_ms!,
        }) * 4,
      );
      await deliveredInOrder(n1, 'SHARED', [...a, ...b], [first, second]);
      expect(await pushing(n1, 'SHARED')).to.equal(false);
    });

    it('stops a node that lost its coordination session, closes its receivers, and another node takes over after its fence', async function () {
      this.timeout(60_000);
      const [n1, n2] = [await start('one'), await start('two')];
      await fresh(n1, 'FENCED');
      const first = await connect(n1, 'FENCED');
      const second = await connect(n2, 'FENCED');
      const a = await add(n1, 5);
      await first.until(() => first.events.some((e) => e.id === a[a.length - 1]));
      const session = n1.store.coordinator().stats().session;
      await fx.admin(
        fx.dialect === 'postgresql'
          ? `SELECT pg_terminate_backend(${Number(session)})`
          : `KILL ${Number(session)}`,
      );
      // The node notices at once: its receiver's connection is closed (it would reconnect,
      // through a load balancer, to a node that can serve it).
      await first.until(() => first.disconnected, 10_000);
      expect(await pushing(n1, 'FENCED')).to.equal(false);
      const b = await add(n1, 5);
      await second.until(() => second.events.some((e) => e.id === b[b.length - 1]), 20_000);
      await deliveredInOrder(n2, 'FENCED', [...a, ...b], [first, second]);
      const owners = await n2.store.consumerOwners();
      expect(owners.find((o) => o.ident === ident('FENCED'))?.node).to.equal(
        n2.store.coordinator().node,
      );
      // The fenced node is back, serving again (as a standby now).
      await waitFor('the fenced node coordinating again', () => n1.store.coordinator().stats().up);
    });

    it('ends the session on the node pushing a consumer when an administrator moves it on another node', async function () {
      this.timeout(60_000);
      const [n1, n2] = [await start('one'), await start('two')];
      await fresh(n1, 'MOVED');
      const r = await connect(n1, 'MOVED');
      const a = await add(n1, 5);
      await r.until(() => r.events.some((e) => e.id === a[a.length - 1]));
      const ccm = clientCcm();
      try {
        await steps((as) => {
          AdminFace.register(as, ccm, 'admin', n2.wsUrl, ADMIN, { secureChannel: true });
          as.add((as) =>
            ccm
              .iface<AdminFace>('admin')
              .moveConsumer(as, ident('MOVED'), 'start', { reason: 'replay' }),
          );
        });
      } finally {
        ccm.close();
      }
      // Told by a control message, not at its next pointer write: nothing is pushed meanwhile.
      await r.until(() => r.disconnected, 10_000);
      expect(await pushing(n1, 'MOVED')).to.equal(false);
    });

    it('ends only a session that began before the action: a late end message spares a later one', async function () {
      this.timeout(60_000);
      const [n1, n2] = [await start('one'), await start('two')];
      await fresh(n1, 'LATE');
      const r = await connect(n1, 'LATE');
      const a = await add(n1, 3);
      await r.until(() => r.events.some((e) => e.id === a[a.length - 1]));
      // The owner epoch of this session's acquisition.
      const epoch = BigInt((await n1.store.consumerOwned(ident('LATE')))!.epoch);
      const got: string[] = [];
      n1.store.coordinator().on('control', (m) => {
        if (m.subject === ident('LATE')) got.push(m.epoch ?? '');
      });
      const end = (e: bigint): Promise<void> =>
        n2.store.sendControl({
          kind: 'end',
          scope: n1.store.consumerTable,
          subject: ident('LATE'),
          from: '',
          info: 'moved',
          epoch: e.toString(),
        });
      // Sent for the acquisition before this session's (an action that session already saw).
      await end(epoch - 1n);
      await waitFor('the first message at the pushing node', () => got.length >= 1);
      expect(got[0]).to.equal((epoch - 1n).toString());
      expect(r.disconnected).to.equal(false);
      expect(await pushing(n1, 'LATE')).to.equal(true);
      const b = await add(n1, 3);
      await deliveredInOrder(n1, 'LATE', [...a, ...b], [r]);
      // For this session's own acquisition: it ends.
      await end(epoch);
      await r.until(() => r.disconnected, 10_000);
      expect(await pushing(n1, 'LATE')).to.equal(false);
    });

    it('gives the consumer of a half-open receiver on one node to a receiver that connects to another', async function () {
      this.timeout(60_000);
      const [n1, n2] = [await start('one'), await start('two')];
      await fresh(n1, 'GONE');
      const proxy = await startTcpProxy(Number(new URL(n1.url).port));
      try {
        const old = await connect(`ws://127.0.0.1:${proxy.port}/`, 'GONE');
        const a = await add(n1, 5);
        await old.until(() => old.events.some((e) => e.id === a[a.length - 1]));
        proxy.freeze();
        // Its receiver comes back through the load balancer, to the other node: that one asks
        // the first to ping its receiver, which does not answer.
        const again = await connect(n2, 'GONE');
        const b = await add(n2, 5);
        await again.until(() => again.events.some((e) => e.id === b[b.length - 1]), 20_000);
        await deliveredInOrder(n2, 'GONE', [...a, ...b], [old, again]);
      } finally {
        await proxy.close();
      }
    });

    it('runs the discarder on one node at a time; another takes over once it stops', async function () {
      this.timeout(60_000);
      const { DBEventDiscarder } = await import('../../src/maintenance/DBEventDiscarder');
      const [n1, n2] = [await start('one'), await start('two')];
      const d1 = new DBEventDiscarder();
      const d2 = new DBEventDiscarder();
      d1.start(n1.ccm, { store: n1.store, poll_period_ms: 3_600_000 });
      const r1 = await d1.runPass();
      expect(r1.elsewhere).to.equal(undefined);
      d2.start(n2.ccm, { store: n2.store, poll_period_ms: 3_600_000 });
      const r2 = await d2.runPass();
      expect(r2.elsewhere, 'the first one discards').to.be.a('string');
      await d1.stop();
      const r3 = await d2.runPass();
      expect(r3.elsewhere, 'taken over').to.equal(undefined);
      await d2.stop();
    });
  },
  ['postgresql', 'mysql'],
);
