/**
 * ftn18es.admin on the real service, over HTTP and WebSocket: only admins get in; consumers with
 * their lag; moves that a consumer follows on its next poll or push session (recorded); drops
 * that let the discarder move on; statistics; event reads.
 */
import { expect } from 'chai';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { RequestInfo } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import type { EventId } from '../../src/common/ids';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/delivery/poll/PollService';
import { DBEventDiscarder } from '../../src/maintenance/DBEventDiscarder';
import {
  AdminCore,
  type ConsumerInfo,
  type MoveRecord,
  type StreamStats,
} from '../../src/ops/admin';
import { AdminFace } from '../../src/common/faces/AdminFace';
import { EventStore } from '../../src/storage/store';
import { ReliableReceiver } from '../../src/receiving/ReliableReceiver';
import WebSocket from 'ws';
import { rawCall } from '../support/cli';
import { describeDatabases } from '../support/db';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
  TEST_USER,
} from '../support/service';
import { sqlFor } from '../support/sql';
import { connectRaw, type RawReceiver } from '../support/push';
import { waitFor } from '../support/wait';

const ADMIN = 'root';
const ADMIN_CREDENTIALS = `${ADMIN}:root-secret`;
const HOUR = 3_600_000;

class Collecting extends ReliableReceiver {
  readonly got: Event[] = [];
  protected override _onEvents(_as: AsyncSteps, events: Event[]): void {
    this.got.push(...events);
  }
}

/** Every admin function, with valid parameters. */
const EVERY_CALL: [string, Record<string, unknown>][] = [
  ['listConsumers', {}],
  ['dropConsumer', { ident: `${TEST_USER}:KEEP` }],
  ['moveConsumer', { ident: `${TEST_USER}:KEEP`, to: 'newest' }],
  ['listMoves', {}],
  ['stats', {}],
  ['readEvents', { limit: 5 }],
  ['setMaxAttempts', { ident: `${TEST_USER}:KEEP`, max_attempts: 3 }],
  ['listParked', {}],
  ['replayParked', { ident: `${TEST_USER}:KEEP` }],
  ['skipParked', { ident: `${TEST_USER}:KEEP`, reason: 'r' }],
];

/**
 * One raw FTN7 call over WebSocket: what any client could send, without futoin-invoker's own
 * checks (it refuses to even send an anonymous call to an interface that needs a user).
 */
async function rawWsCall(
  url: string,
  f: string,
  p: Record<string, unknown>,
  sec?: string,
): Promise<Record<string, unknown>> {
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('message', (data: Buffer) =>
        resolve(JSON.parse(data.toString('utf8')) as Record<string, unknown>),
      );
      ws.once('close', () => reject(new Error('closed without an answer')));
    });
    ws.send(JSON.stringify({ f, p, rid: 'C1', ...(sec === undefined ? {} : { sec }) }));
    return await answer;
  } finally {
    ws.close();
  }
}

describeDatabases('ftn18es.admin', (fx) => {
  let service: StreamService;
  let ccm: AdvancedCCM;

  /** Faces registered in the CCM. */
  const registered = new Set<string>();
  before(async () => {
    service = await startService(fx, {
      admins: new Map([[ADMIN, 'root-secret']]),
      // The access tests fail many logins on purpose: above the limit they would be refused.
      auth: { failure_limit: 1_000 },
    });
    ccm = clientCcm();
  });
  after(async () => {
    ccm?.close();
    await service?.close();
  });

  /** Runs `body` with an AdminFace on `transport` as `credentials`. */
  const admin = <T>(
    body: (as: AsyncSteps, face: AdminFace) => void,
    credentials: string | null = ADMIN_CREDENTIALS,
    transport: 'ws' | 'http' = 'ws',
  ): Promise<T> =>
    steps<T>((as) => {
      const name = `admin-${transport}-${credentials ?? 'anon'}`;
      if (!registered.has(name)) {
        registered.add(name);
        AdminFace.register(
          as,
          ccm,
          name,
          transport === 'ws' ? service.wsUrl : service.url,
          credentials,
          // Loopback counts as secure on this service (secureLoopback); tell the invoker.
          { secureChannel: true },
        );
      }
      as.add((as) => body(as, ccm.iface<AdminFace>(name)));
    });

  const consumers = async (): Promise<ConsumerInfo[]> =>
    (await admin<{ consumers: ConsumerInfo[] }>((as, f) => f.listConsumers(as))).consumers;
  const consumer = async (ident: string): Promise<ConsumerInfo | undefined> =>
    (await consumers()).find((c) => c.ident === ident);
  const stats = async (): Promise<StreamStats> =>
    (await admin<{ stats: StreamStats }>((as, f) => f.stats(as))).stats;

  const add = (n: number, type = 'ADM'): Promise<EventId[]> =>
    service.store.addEvents(
      Array.from({ length: n }, (_v, i) => ({ type, data: JSON.stringify({ i }) })),
    );

  /** A poll client of alice's. */
  const poller = async (): Promise<PollFace> => {
    if (!registered.has('poll')) {
      registered.add('poll');
      await steps((as) =>
        PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS, { version: '1.1' }),
      );
    }
    return ccm.iface<PollFace>('poll');
  };
  const poll = (face: PollFace, component: string, lastId: EventId | null): Promise<Event[]> =>
    steps<Event[]>((as) => face.pollEvents(as, component, lastId));
  const register = (face: PollFace, component: string): Promise<unknown> =>
    steps((as) => face.registerConsumer(as, component));

  describe('access', () => {
    before(async () => {
      const face = await poller();
      await register(face, 'KEEP');
      await add(3);
    });

    for (const transport of ['ws', 'http'] as const) {
      it(`refuses every call with SecurityError to anonymous, users and wrong secrets (${transport})`, async function () {
        this.timeout(60_000);
        const refused: [string | undefined, string][] = [
          [undefined, 'anonymous'],
          [TEST_CREDENTIALS, 'a user without the admin right'],
          [`${ADMIN}:wrong-secret`, 'a wrong admin secret'],
          [`nobody:root-secret`, 'an unknown user'],
        ];
        const call = transport === 'ws' ? rawWsCall : rawCall;
        const url = transport === 'ws' ? service.wsUrl : service.url;
        for (const [sec, who] of refused) {
          for (const [name, p] of EVERY_CALL) {
            const rsp = await call(url, `ftn18es.admin:1.1:${name}`, p, sec);
            expect(rsp, `${name} by ${who}`).to.include({ e: 'SecurityError' });
            expect(rsp).not.to.have.property('r');
          }
        }
        // The same calls by the admin succeed: the refusals were about the caller only.
        for (const [name, p] of EVERY_CALL.filter(([n]) => n !== 'dropConsumer')) {
          const rsp = await call(url, `ftn18es.admin:1.1:${name}`, p, ADMIN_CREDENTIALS);
          expect(rsp, name).to.have.property('r');
        }
        // Nothing was dropped.
        expect(await consumer(`${TEST_USER}:KEEP`)).to.not.equal(undefined);
        const moves = await admin<{ moves: MoveRecord[] }>((as, f) => f.listMoves(as));
        expect(moves.moves.filter((m) => m.action === 'drop')).to.deep.equal([]);
      });
    }

    it('serves the admin, who may also do what users do', async () => {
      const s = await stats();
      expect(BigInt(s.newest_id) > 0n).to.equal(true);
      await steps((as) =>
        PollFace.register(as, ccm, 'rootpoll', service.wsUrl, ADMIN_CREDENTIALS, {
          version: '1.1',
        }),
      );
      await steps((as) => ccm.iface<PollFace>('rootpoll').registerConsumer(as, 'OWN'));
      expect(await consumer(`${ADMIN}:OWN`)).to.include({ user: ADMIN, component: 'OWN' });
    });

    it('refuses in-process calls that carry a user without the right, serves System ones', async () => {
      // The internal channel: a call on behalf of nobody is the process itself (System level).
      const r = await steps<{ stats: StreamStats }>((as) => {
        AdminFace.register(as, ccm, 'local', service.executor);
        as.add((as) => ccm.iface<AdminFace>('local').stats(as));
      });
      expect(r.stats.consumers).to.be.greaterThan(0);

      // A call made while serving a request carries that request's user ("on behalf of", FTN3):
      // the user's own level decides.
      await steps((as) =>
        AdminFace.register(as, ccm, 'local-obf', service.executor, null, { sendOnBehalfOf: true }),
      );
      const statsOnBehalfOf = (user: string, level: string) =>
        steps<{ stats: StreamStats }>((as) => {
          // What futoin-executor sets while it serves that user's request.
          as.state['reqinfo'] = {
            info: {
              USER_INFO: { localID: () => user, globalID: () => user },
              SECURITY_LEVEL: level,
            },
          };
          ccm.iface<AdminFace>('local-obf').stats(as);
        });
      await expectFutoinError(statsOnBehalfOf(TEST_USER, RequestInfo.SL_SAFE_OPS), 'SecurityError');
      const byAdmin = await statsOnBehalfOf(ADMIN, RequestInfo.SL_PRIVILEGED_OPS);
      expect(byAdmin.stats.consumers).to.be.greaterThan(0);
    });
  });

  describe('consumers and moves', () => {
    let face: PollFace;
    let ids: EventId[];
    const ident = `${TEST_USER}:MOVER`;

    before(async () => {
      face = await poller();
      await register(face, 'MOVER');
    });

    it('lists a consumer with its lag in events and time, and how it reads', async () => {
      const before = (await stats()).newest_id;
      ids = await add(5);
      let c = await consumer(ident);
      expect(c).to.include({ user: TEST_USER, component: 'MOVER', connected: false, mode: 'idle' });
      const lagged = c!.lag_events;
      expect(lagged).to.be.at.least(5);
      expect(c!.lag_capped).to.equal(false);
      expect(c!.lag_ms).to.be.a('number').at.least(0);

      // Drain: no lag left, and it counts as a polling consumer now.
      let last: EventId | null = null;
      for (;;) {
        const got = await poll(face, 'MOVER', last);
        if (got.length === 0) break;
        last = got[got.length - 1]!.id;
      }
      expect(last).to.equal(ids[4]);
      c = await consumer(ident);
      expect(c).to.include({ pointer: ids[4], lag_events: 0, lag_ms: 0, mode: 'poll' });
      expect(c!.connected).to.equal(true);

      // The lag count stops at lag_limit and says so.
      await add(3);
      const capped = (
        await admin<{ consumers: ConsumerInfo[] }>((as, f) => f.listConsumers(as, 2))
      ).consumers.find((x) => x.ident === ident);
      expect(capped).to.include({ lag_events: 2, lag_capped: true });
      expect(BigInt(before) < BigInt(ids[0]!)).to.equal(true);
      // Catch up again.
      await poll(face, 'MOVER', last);
    });

    it('moves a consumer to the start: its next poll reads from there, whatever last_id it sends', async () => {
      const newest = (await stats()).newest_id;
      const was = (await consumer(ident))!.pointer;
      // A dry run first: where it would go, and the lag from there; nothing moves.
      const dry = await admin<{ from: EventId; pointer: EventId; lag_events: number }>((as, f) =>
        f.moveConsumer(as, ident, 'start', { reason: 'just looking', dry_run: true }),
      );
      expect(dry).to.deep.include({ from: was, pointer: '0', lag_capped: false });
      expect(dry.lag_events).to.be.at.least(8);
      expect((await consumer(ident))?.pointer).to.equal(was);

      const moved = await admin<{ from: EventId; pointer: EventId }>((as, f) =>
        f.moveConsumer(as, ident, 'start', { reason: 'replay for the new report' }),
      );
      expect(moved).to.deep.equal({ ...dry });
      const c = await consumer(ident);
      expect(c?.pointer).to.equal('0');
      expect(c!.lag_events).to.equal(dry.lag_events);

      // The consumer still thinks it is at the newest event; the move wins once.
      const got = await poll(face, 'MOVER', newest);
      expect(got.length).to.be.greaterThan(0);
      expect(BigInt(got[0]!.id) <= BigInt(ids[0]!)).to.equal(true);
      // After that, its last_id counts again (never backwards past the stored pointer): the next
      // poll goes on after what it got, up to an event added now.
      const [added] = await add(1);
      const next = await poll(face, 'MOVER', got[got.length - 1]!.id);
      expect(next.length).to.be.greaterThan(0);
      expect(BigInt(next[0]!.id) > BigInt(got[got.length - 1]!.id)).to.equal(true);
      expect(next.map((e) => e.id)).to.include(added);

      const moves = (await admin<{ moves: MoveRecord[] }>((as, f) => f.listMoves(as, ident, 10)))
        .moves;
      expect(moves[0]).to.include({
        ident,
        action: 'move',
        from: was,
        to: '0',
        by: ADMIN,
        reason: 'replay for the new report',
        applied: true,
      });
      expect(moves[0]!.at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    });

    it('moves to an ID, to the newest event and to a time', async () => {
      const toId = await admin<{ pointer: EventId }>((as, f) =>
        f.moveConsumer(as, ident, 'id', { id: ids[2] }),
      );
      expect(toId.pointer).to.equal(ids[2]);
      let got = await poll(face, 'MOVER', null);
      expect(got[0]!.id).to.equal(ids[3]);

      const newest = (await stats()).newest_id;
      const toNewest = await admin<{ pointer: EventId }>((as, f) =>
        f.moveConsumer(as, ident, 'newest'),
      );
      expect(toNewest.pointer).to.equal(newest);
      expect(await poll(face, 'MOVER', null)).to.deep.equal([]);

      // Beyond the newest: the pointer stops at the newest committed event.
      const beyond = await admin<{ pointer: EventId }>((as, f) =>
        f.moveConsumer(as, ident, 'id', { id: '999999999' }),
      );
      expect(beyond.pointer).to.equal(newest);

      // To a time: the events from then on come again.
      await fx.openStore().then(async (s) => {
        try {
          await s.db.execute(
            `UPDATE evt_queue SET ts = ${sqlFor(s.dialect.name).utcBeforeMs(2 * HOUR)} WHERE id <= ${sqlFor(s.dialect.name).idParam}`,
            [ids[1]!],
          );
        } finally {
          await s.close();
        }
      });
      const hourAgo = new Date(Date.now() - HOUR).toISOString();
      const toTime = await admin<{ pointer: EventId }>((as, f) =>
        f.moveConsumer(as, ident, 'time', { time: hourAgo }),
      );
      expect(toTime.pointer).to.equal(ids[1]);
      got = await poll(face, 'MOVER', newest);
      expect(got[0]!.id).to.equal(ids[2]);
    });

    it('refuses a move of an unknown consumer or without its target', async () => {
      await expectFutoinError(
        admin((as, f) => f.moveConsumer(as, `${TEST_USER}:NOBODY`, 'start')),
        'NotRegistered',
      );
      await expectFutoinError(
        admin((as, f) => f.moveConsumer(as, ident, 'id')),
        'InvalidRequest',
      );
      // The spec's pattern lets this through; the service finds no such time.
      await expectFutoinError(
        admin((as, f) => f.moveConsumer(as, ident, 'time', { time: '2026-13-45T25:61:00Z' })),
        'InvalidRequest',
      );
    });

    it('ends a push session on a move: the receiver resumes from the new position', async function () {
      this.timeout(60_000);
      const pushIdent = `${TEST_USER}:PUSHED`;
      const receiverCcm = new AdvancedCCM();
      const receiver = new Collecting(receiverCcm);
      const ready: string[] = [];
      receiver.on('ready', () => ready.push('ready'));
      receiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'PUSHED' });
      try {
        await waitFor('ready', () => ready.length === 1);
        const fresh = await add(4, 'PUSHME');
        await waitFor('4 pushed', () => receiver.got.some((e) => e.id === fresh[3]));
        // The pointer is stored once the onEvents call has returned: soon after.
        await waitFor(
          'the pointer stored',
          async () => (await consumer(pushIdent))?.pointer === fresh[3],
        );
        const c = await consumer(pushIdent);
        expect(c).to.include({ mode: 'push', connected: true, lag_events: 0 });

        await admin((as, f) => f.moveConsumer(as, pushIdent, 'id', { id: fresh[0] }));
        // The session ends; the receiver reconnects and gets fresh[1..3] again.
        await waitFor('a second ready', () => ready.length >= 2);
        await waitFor(
          'the replay',
          () => receiver.got.filter((e) => e.id === fresh[3]).length === 2,
        );
        const replay = receiver.got.slice(receiver.got.findIndex((e) => e.id === fresh[3]) + 1);
        expect(replay.map((e) => e.id)).to.deep.equal(fresh.slice(1));
        await waitFor(
          'the pointer stored again',
          async () => (await consumer(pushIdent))?.pointer === fresh[3],
        );
      } finally {
        receiver.stop();
        receiverCcm.close();
      }
    });
  });

  it('a move while a push session starts: it starts from the moved position, pushing nothing before it', async function () {
    this.timeout(60_000);
    const component = 'STARTING';
    const ident = `${TEST_USER}:${component}`;
    await service.store.registerConsumer(ident);
    await service.store.advanceConsumer(ident, await service.store.horizon());
    const skipped = await add(3, 'SKIPPED');
    // Holds the session's start after it read the consumer (its last read before it pushes).
    let entered = false;
    let open = (): void => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // Put back below; called with each store as `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = EventStore.prototype.parkingRule;
    EventStore.prototype.parkingRule = async function (this: EventStore, who: string) {
      if (who === ident && !entered) {
        entered = true;
        await gate;
      }
      return original.call(this, who);
    };
    let r: RawReceiver | null = null;
    try {
      const connecting = connectRaw(service.wsUrl, TEST_CREDENTIALS, component);
      await waitFor('the session starting', () => entered);
      await admin((as, f) => f.moveConsumer(as, ident, 'newest', { reason: 'skip them' }));
      open();
      r = await connecting;
      const after = await add(2, 'AFTER');
      const got = r;
      await got.until(() => got.events.some((e) => e.id === after[1]));
      expect(skipped).to.have.length(3);
      expect(got.events.map((e) => e.id)).to.deep.equal(after);
    } finally {
      EventStore.prototype.parkingRule = original;
      open();
      r?.close();
    }
  });

  it('an in-process receiver follows a move too: its session executor closes, it reconnects', async function () {
    this.timeout(60_000);
    const ident = `-internal:INPROC`;
    const receiverCcm = new AdvancedCCM();
    const receiver = new Collecting(receiverCcm);
    const ready: string[] = [];
    receiver.on('ready', () => ready.push('ready'));
    receiver.start(service.executor, null, { component: 'INPROC' });
    try {
      await waitFor('ready', () => ready.length === 1);
      const fresh = await add(3, 'INPROC');
      await waitFor(
        '3 pushed and stored',
        async () => (await consumer(ident))?.pointer === fresh[2],
      );
      await admin((as, f) => f.moveConsumer(as, ident, 'id', { id: fresh[0] }));
      await waitFor('a second session', () => ready.length >= 2);
      await waitFor('the replay', () => receiver.got.filter((e) => e.id === fresh[2]).length === 2);
      const replay = receiver.got.slice(receiver.got.findIndex((e) => e.id === fresh[2]) + 1);
      expect(replay.map((e) => e.id)).to.deep.equal(fresh.slice(1));
    } finally {
      receiver.stop();
      receiverCcm.close();
    }
  });

  it('a move made directly on the database ends the push session at its next acknowledgement', async function () {
    this.timeout(60_000);
    const ident = `${TEST_USER}:ELSEWHERE`;
    const receiverCcm = new AdvancedCCM();
    const receiver = new Collecting(receiverCcm);
    const ready: string[] = [];
    receiver.on('ready', () => ready.push('ready'));
    receiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'ELSEWHERE' });
    const store = await fx.openStore();
    try {
      await waitFor('ready', () => ready.length === 1);
      const first = await add(3, 'ELSEWHERE');
      await waitFor(
        '3 pushed and stored',
        async () => (await consumer(ident))?.pointer === first[2],
      );
      // As `evtstream consumer reset --db` does: another AdminCore on its own connection, with
      // no way to reach this service's session.
      const core = new AdminCore(store);
      await core.moveConsumer(ident, 'id', 'os:test', { id: first[0]! });
      const next = await add(2, 'ELSEWHERE');
      // The session pushes on from where it was, its pointer write fails, it ends; the receiver
      // reconnects and gets everything after the new position.
      await waitFor('a second session', () => ready.length >= 2);
      // (The old session may have pushed `next` first: wait for the replay itself.)
      await waitFor('the replay', () => {
        const ids = receiver.got.map((e) => e.id);
        return (
          ids.lastIndexOf(first[1]!) > 1 && ids.lastIndexOf(next[1]!) > ids.lastIndexOf(first[1]!)
        );
      });
      const replayFrom = receiver.got.map((e) => e.id).lastIndexOf(first[1]!);
      expect(
        replayFrom,
        `first[1] came again: ${JSON.stringify({ first, next, got: receiver.got.map((e) => e.id), ready: ready.length })}`,
      ).to.be.greaterThan(1);
      expect(receiver.got.slice(replayFrom).map((e) => e.id)).to.deep.equal([
        first[1],
        first[2],
        ...next,
      ]);
      await waitFor(
        'the pointer at the end',
        async () => (await consumer(ident))?.pointer === next[1],
      );
    } finally {
      receiver.stop();
      receiverCcm.close();
      await store.close();
    }
  });

  describe('drops', () => {
    it('unregisters a consumer, recorded, and the discarder no longer waits for it', async function () {
      this.timeout(60_000);
      const face = await poller();
      await register(face, 'FAST');
      await register(face, 'STUCK');
      const ids = await add(6, 'DROPME');
      // FAST reads everything, STUCK nothing.
      let last: EventId | null = null;
      for (;;) {
        const got = await poll(face, 'FAST', last);
        if (got.length === 0) break;
        last = got[got.length - 1]!.id;
      }
      // Other consumers of this suite: bring them up to date, so only STUCK holds back.
      const store = await fx.openStore();
      const discarder = new DBEventDiscarder();
      const dccm = new AdvancedCCM();
      try {
        for (const c of await consumers()) {
          if (!c.ident.endsWith(':STUCK')) await store.advanceConsumer(c.ident, last!);
        }
        discarder.start(dccm, { store, poll_period_ms: HOUR });
        const held = await discarder.runPass();
        const remaining = async (): Promise<EventId[]> =>
          (
            await store.db.query<{ id: string }>(
              `SELECT ${sqlFor(store.dialect.name).idText('e.id')} AS id FROM evt_queue e ORDER BY e.id`,
            )
          ).map((r) => r.id);
        expect(held.deleted).to.equal(0);
        expect(await remaining()).to.include.members(ids);

        const dropped = await admin<{ dropped: boolean }>((as, f) =>
          f.dropConsumer(as, `${TEST_USER}:STUCK`, 'left the company'),
        );
        expect(dropped.dropped).to.equal(true);
        expect(await consumer(`${TEST_USER}:STUCK`)).to.equal(undefined);
        const again = await admin<{ dropped: boolean }>((as, f) =>
          f.dropConsumer(as, `${TEST_USER}:STUCK`),
        );
        expect(again.dropped).to.equal(false);
        const [record] = (
          await admin<{ moves: MoveRecord[] }>((as, f) => f.listMoves(as, `${TEST_USER}:STUCK`, 1))
        ).moves;
        expect(record).to.include({ action: 'drop', from: '0', by: ADMIN, applied: true });
        expect(record!.reason).to.equal('left the company');

        const freed = await discarder.runPass();
        expect(freed.deleted).to.be.greaterThan(0);
        expect(await remaining()).to.deep.equal([last]);
        // A dropped consumer polling again is not registered any more.
        await expectFutoinError(poll(face, 'STUCK', null), 'NotRegistered');
      } finally {
        await discarder.stop();
        dccm.close();
        await store.close();
      }
    });
  });

  describe('statistics and event reads', () => {
    let ids: EventId[];
    before(async () => {
      ids = [...(await add(3, 'READ_A')), ...(await add(2, 'READ_B'))];
    });

    it('gives the newest ID, sizes, consumers and push sessions', async () => {
      const s = await stats();
      expect(s.newest_id).to.equal(ids[4]);
      expect(s.horizon).to.equal(ids[4]);
      expect(s.active_events).to.be.at.least(2);
      expect(s.consumers).to.be.at.least(1);
      expect(s.push_sessions).to.be.a('number');
      expect(s.events_per_sec).to.be.a('number').at.least(0);
      expect(s).not.to.have.property('warehouse_events');
      expect(Date.parse(s.server_time)).to.be.closeTo(Date.now(), 60_000);
    });

    it('reads events by ID range, type, time, newest first', async () => {
      const read = async (p: Parameters<AdminFace['readEvents']>[1]): Promise<Event[]> =>
        (
          await admin<{ events: Event[] }>(
            (as, f) => f.readEvents(as, p),
            ADMIN_CREDENTIALS,
            'http',
          )
        ).events;
      expect((await read({ from_id: ids[1], to_id: ids[3] })).map((e) => e.id)).to.deep.equal(
        ids.slice(1, 4),
      );
      const b = await read({ types: ['READ_B'] });
      expect(b.map((e) => e.id)).to.deep.equal(ids.slice(3));
      expect(b[0]).to.include({ type: 'READ_B' });
      expect(b[0]!.data).to.deep.equal({ i: 0 });
      expect((await read({ last: true, limit: 2 })).map((e) => e.id)).to.deep.equal([
        ids[4],
        ids[3],
      ]);
      const future = new Date(Date.now() + HOUR).toISOString();
      expect(await read({ since: future })).to.deep.equal([]);
      const recent = await read({ since: new Date(Date.now() - HOUR).toISOString(), last: true });
      expect(recent[0]!.id).to.equal(ids[4]);
      await expectFutoinError(read({ source: 'warehouse' }), 'InvalidRequest');
      await expectFutoinError(read({ from_id: ids[3], to_id: ids[1] }), 'InvalidRequest');
    });
  });
});
