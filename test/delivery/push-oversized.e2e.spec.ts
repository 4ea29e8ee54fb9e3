/**
 * Push delivery of an event larger than one message of the consumer's receiver carries
 * (futoin.evt.receiver 1.0: 64 KiB; 1.1: 8 MiB), against the real service over WebSocket: a
 * reliable consumer waits on it without losing it or spinning, the operator is told once per
 * event, other consumers go on, and the consumer gets past it the ways the log line says.
 */
import { expect } from 'chai';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { StreamService } from '../../src/app/service';
import { cmpIds } from '../../src/common/ids';
import type { Logger } from '../../src/common/log';
import { eventBytes } from '../../src/delivery/limits';
import type { Event } from '../../src/delivery/poll/PollService';
import { PollFace } from '../../src/common/faces/PollFace';
import { AdminFace } from '../../src/common/faces/AdminFace';
import { describeDatabases } from '../support/db';
import { expectElapsedAtLeast, shortestBackoffs } from '../support/pacing';
import { connectRaw, type RawReceiver } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { waitFor } from '../support/wait';

/** Retry delays of the service under test: short, so that a test sees several attempts. */
const RETRY = { retry_min_ms: 50, retry_max_ms: 400 };
/** How many attempts at a stuck event a test waits for. */
const ATTEMPTS = 8;
/** What an onEvents call to a futoin.evt.receiver 1.0 may carry: 64 KiB less the envelope. */
const LIMIT_1_0 = 64 * 1024 - 1024;

const ADMIN = 'root';
const ADMIN_SECRET = 'root-secret';
const BIG = { blob: 'x'.repeat(100 * 1024), tail: 'end ✓' };

/** 'pushError' as emitted: the reference's code, info and exception, then the consumer. */
interface PushError {
  consumer: string;
  code: string;
  info: string;
  err: unknown;
  /** performance.now() when the listener got it: at or after the attempt. */
  at: number;
}

describeDatabases('push: an event larger than the receiver takes', (fx) => {
  let service: StreamService;
  const logged: Array<{ level: string; msg: string }> = [];
  const log: Logger = {
    debug: () => undefined,
    info: (msg) => logged.push({ level: 'info', msg }),
    warn: (msg) => logged.push({ level: 'warn', msg }),
    error: (msg) => logged.push({ level: 'error', msg }),
  };
  const pushErrors: PushError[] = [];
  const open: RawReceiver[] = [];

  before(async () => {
    service = await startService(fx, {
      log,
      admins: new Map([[ADMIN, ADMIN_SECRET]]),
      metrics: 'open',
      push: RETRY,
    });
    // The reference's arguments (code, info, exception), then the consumer.
    service.push.on('pushError', (code: string, info: string, err: Error, consumer: string) =>
      pushErrors.push({ consumer, code, info, err, at: performance.now() }),
    );
  });
  afterEach(() => open.splice(0).forEach((r) => r.close()));
  after(() => service?.close());

  const ident = (component: string): string => `${TEST_USER}:${component}`;

  const connect = async (...args: Parameters<typeof connectRaw>): Promise<RawReceiver> => {
    const r = await connectRaw(...args);
    open.push(r);
    return r;
  };

  /** Registers a consumer that starts after what is stored now (not at earlier tests' events). */
  async function fresh(...components: string[]): Promise<void> {
    const horizon = await service.store.horizon();
    for (const c of components) {
      await service.store.registerConsumer(ident(c));
      await service.store.advanceConsumer(ident(c), horizon);
    }
  }

  /** Five small events, one of 100 KiB, five small ones. */
  async function addAround(): Promise<{ before: string[]; big: string; after: string[] }> {
    const small = (i: number) => ({ type: 'SMALL', data: JSON.stringify({ i }) });
    const ids = await service.store.addEvents([
      ...[0, 1, 2, 3, 4].map(small),
      { type: 'BIG', data: JSON.stringify(BIG) },
      ...[5, 6, 7, 8, 9].map(small),
    ]);
    return { before: ids.slice(0, 5), big: ids[5]!, after: ids.slice(6) };
  }

  const errorsOf = (consumer: string): PushError[] =>
    pushErrors.filter((e) => e.consumer === consumer);

  /** The metric's value as /metrics serves it. */
  async function metric(name: string): Promise<number> {
    const text = await (await fetch(new URL('/metrics', service.url))).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1]);
  }

  const sessionOpen = async (id: string): Promise<boolean> =>
    (await service.push.hub()).reliableSessions().some((s) => s.consumer === id);

  /**
   * `r` (a futoin.evt.receiver 1.0 of `component`) got the events before `big` and nothing
   * after it; the consumer's attempts at `big` (none before `since`) are reported, backing off;
   * one error line.
   */
  async function expectWaitingOn(
    r: RawReceiver,
    component: string,
    ids: { before: string[]; big: string },
    since: number,
  ): Promise<void> {
    const id = ident(component);
    await waitFor('the events before the big one', () =>
      ids.before.every((e) => r.events.some((got) => got.id === e)),
    );
    // Still trying, not giving up; backing off, not spinning: each pause at least half of
    // min(retry_min_ms * 2^(n-1), retry_max_ms).
    await waitFor(`${ATTEMPTS} attempts`, () => errorsOf(id).length >= ATTEMPTS);
    expectElapsedAtLeast(
      'attempts at the big event',
      since,
      errorsOf(id)
        .slice(0, ATTEMPTS)
        .map((e) => e.at),
      shortestBackoffs(RETRY.retry_min_ms, RETRY.retry_max_ms, ATTEMPTS - 1),
    );

    for (const { err } of errorsOf(id)) {
      expect((err as Error).message, 'FutoIn error code').to.equal('NotSupportedVersion');
      expect(String(err)).to.include(`Event ${ids.big} `);
    }
    // In order, nothing skipped: only the events before it, and it was never sent.
    expect(r.events.map((e) => e.id)).to.deep.equal(ids.before);
    expect(r.calls.some((c) => c.ids.includes(ids.big))).to.equal(false);
    await waitFor('the pointer before it', async () => {
      return (await service.store.consumerPointer(id)) === ids.before[4];
    });

    const lines = logged.filter((l) => l.msg.includes(`event ${ids.big} `) && l.msg.includes(id));
    expect(lines, 'log lines about it').to.have.length(1);
    const size = eventBytes({ id: ids.big, type: 'BIG', data: JSON.stringify(BIG) });
    expect(lines[0]!.level).to.equal('error');
    expect(lines[0]!.msg)
      .to.include(`${id}: event ${ids.big} (${size} bytes)`)
      .and.include(`futoin.evt.receiver 1.0 carries (${LIMIT_1_0} bytes`)
      .and.include('futoin.evt.push 1.1')
      .and.include('futoin.evt.poll 1.1 pollEvents')
      .and.include(`evtstream consumer reset ${id} --to ${ids.big}`);
    expect(logged.filter((l) => l.level !== 'info' && l.msg.startsWith(`${id}:`))).to.have.length(
      1,
    );
  }

  /** Consumers that keep flowing: one with receiver 1.1, one 1.0 that wants small events only. */
  async function others(tag: string): Promise<{ all: RawReceiver; small: RawReceiver }> {
    await fresh(`ALL_${tag}`, `SMALL_${tag}`);
    return {
      all: await connect(service.wsUrl, TEST_CREDENTIALS, `ALL_${tag}`, null, '1.1'),
      small: await connect(service.wsUrl, TEST_CREDENTIALS, `SMALL_${tag}`, ['SMALL'], '1.0'),
    };
  }

  async function expectOthersGot(
    o: { all: RawReceiver; small: RawReceiver },
    ids: { before: string[]; big: string; after: string[] },
  ): Promise<void> {
    const last = ids.after[4]!;
    for (const r of [o.all, o.small])
      await waitFor('the others get everything', () => r.events.some((e) => e.id === last));
    const got = (r: RawReceiver) =>
      r.events.filter((e) => cmpIds(e.id, ids.before[0]!) >= 0).map((e) => e.id);
    expect(got(o.all)).to.deep.equal([...ids.before, ids.big, ...ids.after]);
    expect(o.all.events.find((e) => e.id === ids.big)!.data).to.deep.equal(BIG);
    expect(got(o.small)).to.deep.equal([...ids.before, ...ids.after]);
  }

  /** Runs `body` with an AdminFace over WebSocket (as `evtstream consumer reset --url` does). */
  async function admin(body: (as: AsyncSteps, f: AdminFace) => void): Promise<void> {
    const ccm = clientCcm();
    try {
      await steps((as) => {
        // Loopback counts as secure on this service (secureLoopback); tell the invoker.
        AdminFace.register(as, ccm, 'admin', service.wsUrl, `${ADMIN}:${ADMIN_SECRET}`, {
          secureChannel: true,
        });
        as.add((as) => body(as, ccm.iface<AdminFace>('admin')));
      });
    } finally {
      ccm.close();
    }
  }

  /** pollEvents over futoin.evt.poll 1.1 (HTTP), as the consumer `component`. */
  async function poll11(component: string, lastId: string | null): Promise<Event[]> {
    const ccm = clientCcm();
    try {
      return await steps<Event[]>((as) => {
        PollFace.register(as, ccm, 'poll', service.url, TEST_CREDENTIALS, { version: '1.1' });
        as.add((as) => ccm.iface<PollFace>('poll').pollEvents(as, component, lastId));
      });
    } finally {
      ccm.close();
    }
  }

  it('catch-up: a 1.0 receiver waits on it (reported once, backing off); a move or a poll 1.1 gets it past', async function () {
    this.timeout(60_000);
    await fresh('BIG_MOVE', 'BIG_POLL');
    const o = await others('C');
    const failuresBefore = await metric('evtstream_push_failures_total');
    const ids = await addAround();
    // Connected after the events were stored: the sessions read them as their backlog.
    const connecting = performance.now();
    const move = await connect(service.wsUrl, TEST_CREDENTIALS, 'BIG_MOVE', null, '1.0');
    const poll = await connect(service.wsUrl, TEST_CREDENTIALS, 'BIG_POLL', null, '1.0');
    await expectWaitingOn(move, 'BIG_MOVE', ids, connecting);
    await expectWaitingOn(poll, 'BIG_POLL', ids, connecting);
    await expectOthersGot(o, ids);
    const reported = errorsOf(ident('BIG_MOVE')).length + errorsOf(ident('BIG_POLL')).length;
    expect(await metric('evtstream_push_failures_total')).to.be.at.least(failuresBefore + reported);

    // An administrator moves BIG_MOVE past it (`evtstream consumer reset NAME --to ID`): its
    // session ends, and the receiver's next one goes on after it.
    await admin((as, f) => f.moveConsumer(as, ident('BIG_MOVE'), 'id', { id: ids.big }));
    await waitFor('the session ends', async () => !(await sessionOpen(ident('BIG_MOVE'))));
    const moved = await connect(service.wsUrl, TEST_CREDENTIALS, 'BIG_MOVE', null, '1.0');
    await waitFor('the rest', () => moved.events.some((e) => e.id === ids.after[4]));
    expect(moved.events.map((e) => e.id)).to.deep.equal(ids.after);

    // BIG_POLL fetches it with futoin.evt.poll 1.1 (8 MiB responses) and acknowledges it with
    // the next poll's last_id: its push session notices the pointer moved, and ends.
    const polled = await poll11('BIG_POLL', null);
    expect(polled[0]!.id).to.equal(ids.big);
    expect(polled[0]!.data).to.deep.equal(BIG);
    await poll11('BIG_POLL', ids.big);
    await waitFor('the session ends', async () => !(await sessionOpen(ident('BIG_POLL'))));
    const resumed = await connect(service.wsUrl, TEST_CREDENTIALS, 'BIG_POLL', null, '1.0');
    await waitFor('the rest', () => resumed.events.some((e) => e.id === ids.after[4]));
    expect(resumed.events.map((e) => e.id)).to.deep.equal(ids.after);
    await waitFor('the pointer at the end', async () => {
      return (await service.store.consumerPointer(ident('BIG_POLL'))) === ids.after[4];
    });
  });

  it('live: a 1.0 receiver waits on a new event too large (reported once, backing off); receiver 1.1 gets it', async function () {
    this.timeout(60_000);
    await fresh('BIG_TAIL');
    const o = await others('L');
    const stuck = await connect(service.wsUrl, TEST_CREDENTIALS, 'BIG_TAIL', null, '1.0');
    // Caught up: what comes now arrives through the shared read of new events.
    const [warm] = await service.store.addEvents([{ type: 'WARM', data: '{}' }]);
    await waitFor('caught up', () => stuck.events.some((e) => e.id === warm));
    stuck.events.splice(0);
    stuck.calls.splice(0);
    const adding = performance.now();
    const ids = await addAround();
    await expectWaitingOn(stuck, 'BIG_TAIL', ids, adding);
    await expectOthersGot(o, ids);

    // The consumer connects again with futoin.evt.receiver 1.1 (8 MiB messages), its old
    // connection closed (while it is up, a second one only waits as a standby): its new
    // session delivers the event and the rest, nothing lost.
    stuck.close();
    const v11 = await connect(service.wsUrl, TEST_CREDENTIALS, 'BIG_TAIL', null, '1.1');
    await waitFor('the rest', () => v11.events.some((e) => e.id === ids.after[4]));
    expect(v11.events.map((e) => e.id)).to.deep.equal([ids.big, ...ids.after]);
    expect(v11.events[0]!.data).to.deep.equal(BIG);
    await waitFor('the pointer at the end', async () => {
      return (await service.store.consumerPointer(ident('BIG_TAIL'))) === ids.after[4];
    });
    expect(stuck.events.map((e) => e.id)).to.deep.equal(ids.before);
  });

  it('LIVE: a 1.0 receiver skips it, counted as dropped and logged once; a 1.1 receiver gets it', async function () {
    this.timeout(60_000);
    const live10a = await connect(service.wsUrl, TEST_CREDENTIALS, 'LIVE', null, '1.0');
    const live10b = await connect(service.wsUrl, TEST_CREDENTIALS, 'LIVE', null, '1.0');
    const live11 = await connect(service.wsUrl, TEST_CREDENTIALS, 'LIVE', null, '1.1');
    const droppedBefore = await metric('evtstream_live_events_dropped_total');
    const errorsBefore = errorsOf('LIVE').length;
    const [a, big, b] = await service.store.addEvents([
      { type: 'SMALL', data: '1' },
      { type: 'BIG', data: JSON.stringify(BIG) },
      { type: 'SMALL', data: '2' },
    ]);
    for (const r of [live10a, live10b, live11])
      await waitFor('LIVE events', () => r.events.some((e) => e.id === b));
    expect(live11.events.map((e) => e.id)).to.deep.equal([a, big, b]);
    for (const r of [live10a, live10b]) {
      expect(r.events.map((e) => e.id)).to.deep.equal([a, b]);
      // seq skips a number where the event was left out.
      const seqs = r.calls.map((c) => c.seq);
      expect(seqs[seqs.length - 1]! - seqs[0]!).to.equal(seqs.length);
    }
    expect(await metric('evtstream_live_events_dropped_total')).to.equal(droppedBefore + 2);
    const errors = errorsOf('LIVE').slice(errorsBefore);
    expect(errors).to.have.length(2);
    errors.forEach((e) => expect(String(e.err)).to.include(`Event ${big} `));
    const lines = logged.filter((l) => l.msg.includes(`event ${big} `));
    expect(lines).to.have.length(1);
    expect(lines[0]!.level).to.equal('warn');
    expect(lines[0]!.msg).to.include('skipped for LIVE consumers');
  });

  it('a 1.1 receiver waits on an event no FTN18 message carries; a move gets it past', async function () {
    this.timeout(60_000);
    await fresh('HUGE');
    const r = await connect(service.wsUrl, TEST_CREDENTIALS, 'HUGE', null, '1.1');
    // Over 8 MiB: only addXferEvent (no size limit) or a raised max_event_bytes stores this.
    const huge = JSON.stringify({ blob: 'y'.repeat(8 * 1024 * 1024) });
    const [before, hugeId, after] = await service.store.addEvents([
      { type: 'SMALL', data: '1' },
      { type: 'HUGE', data: huge },
      { type: 'SMALL', data: '2' },
    ]);
    await waitFor('pushError', () => errorsOf(ident('HUGE')).length >= 2);
    expect(r.events.map((e) => e.id)).to.deep.equal([before]);
    const { err, code, info } = errorsOf(ident('HUGE'))[0]!;
    expect((err as Error).message).to.equal('InternalError');
    expect(code).to.equal('InternalError');
    expect(info).to.include(`Event ${hugeId} `);
    expect(String(err)).to.include(`Event ${hugeId} `);
    const lines = logged.filter((l) => l.msg.includes(`event ${hugeId} `));
    expect(lines).to.have.length(1);
    expect(lines[0]!.level).to.equal('error');
    expect(lines[0]!.msg)
      .to.include('No FTN18 message carries it')
      .and.include(`evtstream events --from ${hugeId} --to ${hugeId}`)
      .and.include(`evtstream consumer reset ${ident('HUGE')} --to ${hugeId}`);

    await admin((as, f) => f.moveConsumer(as, ident('HUGE'), 'id', { id: hugeId }));
    await waitFor('the session ends', async () => !(await sessionOpen(ident('HUGE'))));
    const moved = await connect(service.wsUrl, TEST_CREDENTIALS, 'HUGE', null, '1.1');
    await waitFor('the rest', () => moved.events.some((e) => e.id === after));
    expect(moved.events.map((e) => e.id)).to.deep.equal([after]);
  });
});
