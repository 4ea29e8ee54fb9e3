/**
 * LiveReceiver and ReliableReceiver against an in-process push service (FakePushService, real
 * futoin-executor/-invoker code on the internal channel, which is bi-directional too): what they
 * call, what they emit, ordering, paced retries and reconnections, and a clean stop.
 */
import { expect } from 'chai';
import net from 'net';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import type { Event } from '../../src/delivery/poll/PollService';
import { LiveReceiver } from '../../src/receiving/LiveReceiver';
import type { ReceiverService } from '../../src/receiving/ReceiverService';
import type { ReliableReceiverService } from '../../src/receiving/ReliableReceiverService';
import { ReliableReceiver } from '../../src/receiving/ReliableReceiver';
import { expectElapsedAtLeast, expectGapsAtLeast, shortestBackoffs } from '../support/pacing';
import { sleep, waitFor, withTimeout } from '../support/wait';
import {
  activeResources,
  FakePushService,
  makeEvents,
  resourcesAbove,
  run,
  type Outcome,
} from './support';

const accepted: Outcome = { ok: true, result: true };

/** LiveReceiver's reconnection backoff by default (RECONNECT_MIN_MS, RECONNECT_MAX_MS). */
const RECONNECT = { min: 100, max: 10_000 };
/** LiveReceiver's backoff before it answers a failed handling (FAILURE_MIN_MS, FAILURE_MAX_MS). */
const HANDLER_RETRY = { min: 100, max: 5_000 };

/** What a receiver emitted, in order. */
class Recorder {
  readonly log: string[] = [];
  readonly newEvents: string[] = [];
  readonly processed: string[] = [];
  readonly workerErrors: string[] = [];
  readonly receiverErrors: string[] = [];
  /** When each workerError was handled (performance.now()): at or after it happened. */
  readonly workerErrorsAt: number[] = [];
  ready = 0;

  constructor(receiver: LiveReceiver) {
    receiver.on('ready', () => {
      this.ready++;
      this.log.push('ready');
    });
    receiver.on('newEvents', (events) => this.newEvents.push(...events.map((e) => e.id)));
    receiver.on('processedEvents', (count, events) => {
      expect(count).to.equal(events.length);
      this.processed.push(...events.map((e) => e.id));
    });
    receiver.on('workerError', (code, info) => {
      this.workerErrors.push(code);
      this.workerErrorsAt.push(performance.now());
      this.log.push(`workerError ${code} ${info ?? ''}`);
    });
    receiver.on('receiverError', (code) => this.receiverErrors.push(code));
  }
}

/** A ReliableReceiver whose handler fails the next `failNext` times. */
class FlakyReceiver extends ReliableReceiver {
  /** When each handling started (performance.now()). */
  readonly attemptsAt: number[] = [];
  readonly handled: string[] = [];
  failNext = 0;

  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    this.attemptsAt.push(performance.now());
    if (this.failNext > 0) {
      this.failNext--;
      as.error('Boom', 'Handler failed');
    }
    this.handled.push(...events.map((e) => e.id));
  }
}

/** A ReliableReceiver that shows the receiver service of its session. */
class WatchedReceiver extends ReliableReceiver {
  service: ReliableReceiverService | null = null;

  protected override _registerReceiver(
    ...args: Parameters<ReliableReceiver['_registerReceiver']>
  ): ReceiverService {
    const service = super._registerReceiver(...args);
    this.service = service as ReliableReceiverService;
    return service;
  }
}

/** A WatchedReceiver whose next handling waits for `gate`. */
class GatedReceiver extends WatchedReceiver {
  gate: Promise<void> | null = null;

  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    const gate = this.gate;
    this.gate = null;
    if (gate) as.await(gate);
    as.add((as) => super._onEvents(as, events));
  }
}

async function freeClosedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('LiveReceiver and ReliableReceiver (in-process push service)', function () {
  let serverCcm: AdvancedCCM;
  let pushExecutor: Executor;
  let pusher: FakePushService;
  let receiverCcm: AdvancedCCM;
  const started: LiveReceiver[] = [];

  beforeEach(async function () {
    serverCcm = new AdvancedCCM();
    pushExecutor = new Executor(serverCcm);
    await run((as) => {
      pusher = FakePushService.register(as, pushExecutor);
    });
    receiverCcm = new AdvancedCCM();
  });

  afterEach(function () {
    for (const r of started.splice(0)) r.stop();
    receiverCcm.close();
    pushExecutor.close();
    serverCcm.close();
  });

  function track<T extends LiveReceiver>(receiver: T): T {
    started.push(receiver);
    return receiver;
  }

  it('ReliableReceiver registers its component, asks for pushes and handles groups in seq order', async function () {
    const receiver = track(new ReliableReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'UNIT', want: ['T'] });
    await waitFor('ready', () => rec.ready === 1);
    expect(pusher.registered).to.deep.equal(['UNIT']);
    const session = pusher.lastSession;
    expect(session.component).to.equal('UNIT');
    expect(session.want).to.deep.equal(['T']);

    const calls = [3, 1, 0, 2].map((seq) => session.push(seq, makeEvents(seq * 10 + 1, 2)));
    for (const c of calls) expect(await c.done).to.deep.equal(accepted);
    const inOrder = ['1', '2', '11', '12', '21', '22', '31', '32'];
    await waitFor('processedEvents', () => rec.processed.length === 8);
    expect(rec.newEvents).to.deep.equal(inOrder);
    expect(rec.processed).to.deep.equal(inOrder);

    // A re-delivery of an acknowledged group is answered without handling it again: the next
    // group's events come right after the last ones, with nothing in between.
    expect(await session.push(2, makeEvents(21, 2)).done).to.deep.equal(accepted);
    const next = session.push(4, makeEvents(41, 2));
    await waitFor('two more processed events', () => rec.processed.length >= 10);
    expect(rec.newEvents).to.deep.equal([...inOrder, '41', '42']);
    expect(await next.done).to.deep.equal(accepted);
    expect(rec.workerErrors).to.deep.equal([]);
    expect(rec.receiverErrors).to.deep.equal([]);
  });

  it('LiveReceiver asks for the LIVE stream without registering', async function () {
    const receiver = track(new LiveReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor);
    await waitFor('ready', () => rec.ready === 1);
    expect(pusher.registered).to.deep.equal([]);
    expect(pusher.lastSession.component).to.equal('LIVE');
    expect(pusher.lastSession.want).to.equal(null);
    // LIVE groups may skip seq numbers (skipped groups) and are handled as they come.
    for (const seq of [0, 5]) {
      expect(await pusher.lastSession.push(seq, makeEvents(seq + 1, 1)).done).to.deep.equal(
        accepted,
      );
    }
    await waitFor('newEvents', () => rec.newEvents.length === 2);
    expect(rec.newEvents).to.deep.equal(['1', '6']);
  });

  it('ReliableReceiver without a component takes the LIVE stream in seq order, past its gaps, as the reference', async function () {
    const receiver = track(new GatedReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor);
    await waitFor('ready', () => rec.ready === 1);
    expect(pusher.registered).to.deep.equal([]);
    const session = pusher.lastSession;
    expect(session.component).to.equal('LIVE');
    // While group 0 is handled, 1 and 3 arrive (the service dropped 2): each waits for its
    // turn, and 3 goes on after 1 instead of waiting for ever for 2.
    let open!: () => void;
    receiver.gate = new Promise<void>((resolve) => (open = resolve));
    const calls = [0, 1, 3].map((seq) => session.push(seq, makeEvents(seq * 10 + 1, 1)));
    await waitFor('1 and 3 waiting', () => receiver.service?.waitingCalls === 2);
    open();
    for (const c of calls) expect(await c.done).to.deep.equal(accepted);
    // A gap with nothing in progress: on at once. Below the next seq: answered, not handled.
    expect(await session.push(5, makeEvents(51, 1)).done).to.deep.equal(accepted);
    expect(await session.push(4, makeEvents(41, 1)).done).to.deep.equal(accepted);
    await waitFor('processed', () => rec.processed.length === 4);
    expect(rec.processed).to.deep.equal(['1', '11', '31', '51']);
    expect(receiver.service?.expectedSeq).to.equal(6);
  });

  it('a reliable component still waits for a missing seq', async function () {
    const receiver = track(new WatchedReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'STRICT' });
    await waitFor('ready', () => rec.ready === 1);
    const session = pusher.lastSession;
    expect(await session.push(0, makeEvents(1, 1)).done).to.deep.equal(accepted);
    const ahead = session.push(2, makeEvents(21, 1));
    await waitFor('seq 2 waiting', () => receiver.service?.waitingCalls === 1);
    expect(rec.processed).to.deep.equal(['1']);
    expect(await session.push(1, makeEvents(11, 1)).done).to.deep.equal(accepted);
    expect(await ahead.done).to.deep.equal(accepted);
    await waitFor('processed', () => rec.processed.length === 3);
    expect(rec.processed).to.deep.equal(['1', '11', '21']);
  });

  it('paces retries of a failing handler and gets every event once it recovers', async function () {
    const receiver = track(new FlakyReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'FLAKY' });
    await waitFor('ready', () => rec.ready === 1);
    const session = pusher.lastSession;

    // A pusher that retries as soon as it gets an error: the receiver sets the pace.
    const FAILURES = 4;
    receiver.failNext = FAILURES;
    let calls = 0;
    for (const seq of [0, 1]) {
      for (;;) {
        calls++;
        const outcome = await session.push(seq, makeEvents(seq * 10 + 1, 3)).done;
        if (outcome.ok) break;
        expect(outcome).to.include({ code: 'InternalError' });
      }
    }
    expect(receiver.handled).to.deep.equal(['1', '2', '3', '11', '12', '13']);
    expect(calls).to.equal(FAILURES + 2);
    expect(receiver.attemptsAt.length).to.equal(calls);
    // Each failure is answered only after 50-100, 100-200, 200-400, 400-800 ms: each retry of
    // the group waited at least the shortest of these, not a tight loop.
    expectGapsAtLeast(
      'retries of a failing handler',
      receiver.attemptsAt.slice(0, FAILURES + 1),
      shortestBackoffs(HANDLER_RETRY.min, HANDLER_RETRY.max, FAILURES),
    );
    await waitFor('a receiverError per failure', () => rec.receiverErrors.length === FAILURES);
    expect(new Set(rec.receiverErrors)).to.deep.equal(new Set(['Boom']));
  });

  it('reconnects when the in-process service closes, and the new session starts at seq 0', async function () {
    const receiver = track(new ReliableReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'AGAIN' });
    await waitFor('ready', () => rec.ready === 1);
    for (const seq of [0, 1]) await pusher.lastSession.push(seq, makeEvents(seq + 1, 1)).done;

    // A closed executor still answers in-process calls, so the receiver gets a new session.
    pushExecutor.close();
    await waitFor('ready again', () => rec.ready === 2);
    expect(rec.workerErrors).to.deep.equal(['Disconnect']);
    expect(pusher.sessions.length).to.equal(2);
    expect(await pusher.lastSession.push(0, makeEvents(3, 1)).done).to.deep.equal(accepted);
    await waitFor('processed', () => rec.processed.length === 3);
    expect(rec.processed).to.deep.equal(['1', '2', '3']);
  });

  it('retries a failing readyToReceive with exponential backoff, then recovers', async function () {
    pusher.failReady = 'SecurityError';
    const receiver = track(new ReliableReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'DENIED' });
    await waitFor('4 refusals', () => rec.workerErrors.length >= 4);
    pusher.failReady = null;
    await waitFor('ready', () => rec.ready === 1);
    expect(new Set(rec.workerErrors)).to.deep.equal(new Set(['SecurityError']));
    // Waits of 50-100, 100-200, 200-400 ms between the attempts that failed.
    expectGapsAtLeast(
      'readyToReceive attempts',
      pusher.readyCalls.slice(0, 4),
      shortestBackoffs(RECONNECT.min, RECONNECT.max, 3),
    );
  });

  it('retries a refused connection with backoff, never in a tight loop', async function () {
    const port = await freeClosedPort();
    const receiver = track(new LiveReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    const startedAt = performance.now();
    receiver.start(`ws://127.0.0.1:${port}/`, 'user:pw', {
      reconnectMinMS: 50,
      reconnectMaxMS: 400,
    });
    await waitFor('6 refused connections', () => rec.workerErrors.length >= 6);
    // The reference's code for a connection that fails, as for one that is lost.
    expect(new Set(rec.workerErrors)).to.deep.equal(new Set(['Disconnect']));
    expect(rec.ready).to.equal(0);
    // At least 25-50, 50-100, 100-200, then 200-400 ms apart: the 6th attempt at least 575 ms
    // after the start.
    expectElapsedAtLeast(
      'refused connections',
      startedAt,
      rec.workerErrorsAt.slice(0, 6),
      shortestBackoffs(50, 400, 5),
    );
  });

  it('stop() ends everything: no reconnection, no timer or handle left', async function () {
    // Mocha starts this test's own timeout timer once the test function first awaits.
    await sleep(1);
    const baseline = activeResources();
    const receiver = new WatchedReceiver(receiverCcm);
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'STOP' });
    await waitFor('ready', () => rec.ready === 1);
    // One call still waiting for its turn when stop() comes.
    const waiting = pusher.lastSession.push(3, makeEvents(4, 1));
    await waitFor('the call waiting', () => receiver.service?.waitingCalls === 1);
    receiver.stop();
    expect((await withTimeout(waiting.done, 'the waiting call to end')).ok).to.equal(false);
    // No timer or handle left, so nothing can reconnect later.
    await waitFor(
      () => `resources back to the baseline: ${resourcesAbove(baseline).join()}`,
      () => resourcesAbove(baseline).length === 0,
    );
    expect(pusher.sessions.length).to.equal(1);
    expect(rec.ready).to.equal(1);

    // Stopped while waiting to reconnect: the backoff timer goes too.
    const port = await freeClosedPort();
    receiver.start(`ws://127.0.0.1:${port}/`, 'user:pw', {
      component: 'STOP',
      reconnectMinMS: 5_000,
    });
    await waitFor('a refused connection', () => rec.workerErrors.length === 1);
    receiver.stop();
    await waitFor(
      () => `resources back to the baseline: ${resourcesAbove(baseline).join()}`,
      () => resourcesAbove(baseline).length === 0,
    );
    expect(resourcesAbove(baseline)).to.deep.equal([]);
  });

  it('stops when its executor CCM closes', async function () {
    const ccm = new AdvancedCCM();
    const receiver = track(new LiveReceiver(ccm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor);
    await waitFor('ready', () => rec.ready === 1);
    ccm.close();
    // Stopped, so it can start again (start() throws while it still runs).
    await waitFor('the receiver to stop', () => {
      try {
        receiver.start(pushExecutor);
        return true;
      } catch (err) {
        if ((err as Error).message !== 'Already started!') throw err;
        return false;
      }
    });
    await waitFor('ready again', () => rec.ready === 2);
    expect(rec.workerErrors).to.deep.equal([]);
  });

  it('refuses what cannot work at start()', function () {
    const live = track(new LiveReceiver(receiverCcm));
    expect(() => live.start('http://127.0.0.1:1/')).to.throw(TypeError, /bi-directional/);
    expect(() => live.start({})).to.throw(TypeError);
    expect(() => live.start(pushExecutor, null, { component: '' })).to.throw(
      TypeError,
      /component/,
    );
    const reliable = track(new ReliableReceiver(receiverCcm));
    reliable.start(pushExecutor, null, { component: 'OK' });
    // The reference's words, which applications may match.
    expect(() => reliable.start(pushExecutor, null, { component: 'OK' })).to.throw(
      Error,
      /^Already started!$/,
    );
  });
});
