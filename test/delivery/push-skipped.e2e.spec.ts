/**
 * Push delivery to reliable consumers of rare event types, against the real service over
 * WebSocket on each database: a move of the pointer past events the consumer's `want` filters
 * out only is stored at most every skip_store_ms (not once per commit of other events), without
 * holding up wanted events, and never after the session ended.
 */
import { expect } from 'chai';
import type { StreamService } from '../../src/app/service';
import type { PushServiceOptions } from '../../src/delivery/push/PushService';
import { cmpIds, type EventId } from '../../src/common/ids';
import { describeDatabases } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { startService, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { sqlFor } from '../support/sql';
import { sleep, waitFor } from '../support/wait';

/** A push session's pointer write (storePointer): when it started, and whether it found the pointer moved. */
interface PointerWrite {
  ident: string;
  to: EventId;
  at: number;
  moved?: boolean;
}

/** skip_store_ms of the service under test. */
const SKIP_STORE_MS = 300;

describeDatabases('push: pointer moves past unwanted events', (fx) => {
  let service: StreamService;
  /** Every pointer write of the service's push sessions (the database stays real). */
  const writes: PointerWrite[] = [];
  const open: RawReceiver[] = [];

  /** Starts a service whose pointer writes are recorded in `writes`. */
  async function start(push: PushServiceOptions): Promise<StreamService> {
    const svc = await startService(fx, { push });
    const store = svc.store;
    const storePointer = store.storePointer.bind(store);
    store.storePointer = async (ident, to, condition, wanted) => {
      const w: PointerWrite = { ident, to, at: performance.now() };
      writes.push(w);
      const ok = await storePointer(ident, to, condition, wanted);
      // A write its ended session withdrew before it ran wrote nothing and found nothing.
      w.moved = !ok && (wanted?.() ?? true);
      return ok;
    };
    return svc;
  }

  before(async () => {
    service = await start({ skip_store_ms: SKIP_STORE_MS });
  });
  afterEach(() => open.splice(0).forEach((r) => r.close()));
  after(() => service?.close());

  const ident = (component: string): string => `${TEST_USER}:${component}`;
  const writesOf = (component: string, since = 0): PointerWrite[] =>
    writes.filter((w) => w.ident === ident(component) && w.at >= since);

  /**
   * Registers a consumer that starts after what is stored now (not at earlier tests' events);
   * resolves with its pointer.
   */
  async function fresh(component: string, svc = service): Promise<EventId> {
    const horizon = await svc.store.horizon();
    await svc.store.registerConsumer(ident(component));
    await svc.store.advanceConsumer(ident(component), horizon);
    return horizon;
  }

  async function connect(
    component: string,
    want: string[],
    svc = service,
    init?: (r: RawReceiver) => void,
  ): Promise<RawReceiver> {
    const r = await connectRaw(svc.wsUrl, TEST_CREDENTIALS, component, want, '1.1', init);
    open.push(r);
    return r;
  }

  /** One event of `type` in a commit of its own. */
  async function addOne(type: string, svc = service): Promise<EventId> {
    const [id] = await svc.store.addEvents([{ type, data: JSON.stringify({ type }) }]);
    return id!;
  }

  const pointer = (component: string, svc = service) => svc.store.consumerPointer(ident(component));

  const sessionOpen = async (component: string, svc = service): Promise<boolean> =>
    (await svc.push.hub()).reliableSessions().some((s) => s.consumer === ident(component));

  it('stores the pointer of a consumer of rare types at most every skip_store_ms while other events stream in', async function () {
    this.timeout(120_000);
    await fresh('RARE');
    /** When the receiver got each event (before it answered: before its acknowledgement). */
    const received = new Map<EventId, number>();
    const r = await connect('RARE', ['A'], service, (raw) => {
      raw.behaviour = (call) => {
        for (const id of call.ids) received.set(id, performance.now());
        return 'ok';
      };
    });
    // 300 unwanted events, each in its own commit, with a wanted one after every 50th; the last
    // one is unwanted, so only a move past unwanted events stores the final pointer.
    const wanted: EventId[] = [];
    let last = '';
    const started = performance.now();
    for (let i = 0; i < 300; i++) {
      if (i % 50 === 25) wanted.push(await addOne('A'));
      last = await addOne('B');
    }
    // Stored by the deferred write, with no commit after the last one to trigger it.
    await waitFor(
      'the stored pointer at the last event',
      async () => (await pointer('RARE')) === last,
    );
    const done = performance.now();
    // Every wanted event, once, in order.
    await r.until(() => r.events.length >= wanted.length);
    expect(r.events.map((e) => e.id)).to.deep.equal(wanted);
    expect(r.events.every((e) => e.type === 'A')).to.equal(true);
    // One write per acknowledged batch (a wanted event each at most), and moves past unwanted
    // events only at most every SKIP_STORE_MS (one at once after a pause); a write per commit
    // would be about 300.
    const count = writesOf('RARE', started).length;
    const bound = Math.floor((done - started) / SKIP_STORE_MS) + 1 + wanted.length + 1;
    expect(
      count,
      `pointer writes in ${Math.round(done - started)} ms (at most ${bound})`,
    ).to.be.at.most(bound);
    // Each move past unwanted events only (no wanted event since the write before) came at
    // least SKIP_STORE_MS after that write (less a few ms: the recorded times are taken just
    // after the session's own).
    const inSession = writesOf('RARE', started);
    for (const [prev, w] of inSession.slice(1).map((w, i) => [inSession[i]!, w] as const)) {
      if (wanted.some((id) => cmpIds(id, prev.to) > 0 && cmpIds(id, w.to) <= 0)) continue;
      expect(
        w.at - prev.at,
        `ms from the write to ${prev.to} to the move to ${w.to}`,
      ).to.be.at.least(SKIP_STORE_MS - 10);
    }
    // Never stored past a wanted event before the receiver had it (and acknowledged it).
    for (const w of writesOf('RARE', started)) {
      for (const id of wanted.filter((id) => cmpIds(id, w.to) <= 0)) {
        expect(received.get(id), `event ${id} received before the pointer moved to ${w.to}`)
          .to.be.a('number')
          .and.at.most(w.at);
      }
    }
    expect(writesOf('RARE').every((w) => !w.moved)).to.equal(true);
  });

  it('keeps sending wanted events while a move past unwanted ones waits to be stored (request_max 1)', async function () {
    this.timeout(120_000);
    // A move past unwanted events waits a minute here: were it to hold a place among the calls
    // in flight, the next wanted event would wait for it.
    const narrow = await start({ request_max: 1, skip_store_ms: 60_000 });
    try {
      await fresh('NARROW', narrow);
      const r = await connect('NARROW', ['A'], narrow);
      const wanted: EventId[] = [];
      for (let i = 0; i < 120; i++) {
        const id = await addOne(i % 3 === 2 ? 'A' : 'B', narrow);
        if (i % 3 === 2) wanted.push(id);
        // A wanted event is delivered while the unwanted ones before it wait to be stored.
        if (i % 30 === 29)
          await r.until(() => r.events.some((e) => e.id === wanted[wanted.length - 1]), 10_000);
      }
      await r.until(() => r.events.length >= wanted.length, 10_000);
      expect(r.events.map((e) => e.id)).to.deep.equal(wanted);
      r.calls.forEach((c, i) => expect(c.seq, `call ${i}`).to.equal(i));
      // The acknowledgement of the last wanted event stored it.
      await waitFor(
        'the pointer at the last wanted event',
        async () => (await pointer('NARROW', narrow)) === wanted[wanted.length - 1],
      );
    } finally {
      await narrow.close();
    }
  });

  it('ends the session when the pointer was moved while a move past unwanted events waited, and stores nothing after', async function () {
    this.timeout(60_000);
    const start = await fresh('MOVED');
    await connect('MOVED', ['A']);
    const a = await addOne('A');
    await waitFor('the pointer at the wanted event', async () => (await pointer('MOVED')) === a);
    // An unwanted event, whose move waits to be stored (SKIP_STORE_MS after the last write);
    // meanwhile someone else (another process) moves the pointer back. The session's write
    // finds the pointer moved (or, if it came first, the next one does) and ends the session.
    await addOne('B');
    const d = sqlFor(service.store.dialect.name);
    await service.store.db.execute(
      `UPDATE ${d.quote(service.store.consumerTable)} SET last_evt_id = ${d.idParam} WHERE ident = ?`,
      [start, ident('MOVED')],
    );
    await addOne('B');
    await waitFor('the session ended', async () => !(await sessionOpen('MOVED')));
    const ended = performance.now();
    expect(writesOf('MOVED').some((w) => w.moved)).to.equal(true);
    await addOne('A');
    await addOne('B');
    // Time itself: a deferred write of the ended session would be due by then.
    await sleep(2 * SKIP_STORE_MS);
    expect(writesOf('MOVED', ended), 'writes after the session ended').to.deep.equal([]);
    expect(await pointer('MOVED')).to.equal(start);
  });

  it('drops a waiting move past unwanted events when the session ends and a standby takes over, so the new one goes on', async function () {
    this.timeout(60_000);
    // Moves past unwanted events wait a minute here: the first session's is surely pending.
    const svc = await start({ skip_store_ms: 60_000 });
    try {
      await fresh('AGAIN', svc);
      let stall = false;
      const first = await connect('AGAIN', ['A'], svc, (raw) => {
        raw.behaviour = () => (stall ? 'stall' : 'ok');
      });
      const a = await addOne('A', svc);
      await waitFor(
        'the pointer at the wanted event',
        async () => (await pointer('AGAIN', svc)) === a,
      );
      // Unwanted events right after a write: their move waits to be stored; the next wanted
      // event is not acknowledged (the receiver hangs) ...
      for (let i = 0; i < 5; i++) await addOne('B', svc);
      stall = true;
      const a2 = await addOne('A', svc);
      await waitFor('the first receiver holding a2', () =>
        first.calls.some((c) => c.ids.includes(a2)),
      );
      // ... when the first receiver goes and a second one, waiting as a standby, takes over. The
      // new session starts from `a`, gets a2 and stores its pointer from `a`: had the first
      // session stored its waiting move on closing, that write would find the pointer moved
      // (or the epoch bumped) and end the new session.
      const second = await connect('AGAIN', ['A'], svc);
      first.close();
      await second.until(() => second.events.some((e) => e.id === a2), 10_000);
      await waitFor(
        'the pointer at the next wanted event',
        async () => (await pointer('AGAIN', svc)) === a2,
      );
      expect(await sessionOpen('AGAIN', svc), 'the new session goes on').to.equal(true);
      expect(writesOf('AGAIN').every((w) => !w.moved)).to.equal(true);
    } finally {
      await svc.close();
    }
  });
});
