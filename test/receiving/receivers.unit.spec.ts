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
import { ReliableReceiver } from '../../src/receiving/ReliableReceiver';
import {
  activeResources,
  delay,
  FakePushService,
  makeEvents,
  resourcesAbove,
  run,
  waitFor,
  type Outcome,
} from './support';

const accepted: Outcome = { ok: true, result: true };

/** What a receiver emitted, in order. */
class Recorder {
  readonly log: string[] = [];
  readonly newEvents: string[] = [];
  readonly processed: string[] = [];
  readonly workerErrors: string[] = [];
  readonly receiverErrors: string[] = [];
  ready = 0;

  constructor(receiver: LiveReceiver) {
    receiver.on('ready', () => {
      this.ready++;
      this.log.push('ready');
    });
    receiver.on('newEvents', (events) => this.newEvents.push(...events.map((e) => e.id)));
    receiver.on('processedEvents', (events) => this.processed.push(...events.map((e) => e.id)));
    receiver.on('workerError', (code, info) => {
      this.workerErrors.push(code);
      this.log.push(`workerError ${code} ${info ?? ''}`);
    });
    receiver.on('receiverError', (code) => this.receiverErrors.push(code));
  }
}

/** A ReliableReceiver whose handler fails while `failing()` says so. */
class FlakyReceiver extends ReliableReceiver {
  attempts = 0;
  readonly handled: string[] = [];
  failing: () => boolean = () => false;

  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    this.attempts++;
    if (this.failing()) as.error('Boom', 'Handler failed');
    this.handled.push(...events.map((e) => e.id));
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
    await waitFor(() => rec.ready === 1, 'ready');
    expect(pusher.registered).to.deep.equal(['UNIT']);
    const session = pusher.lastSession;
    expect(session.component).to.equal('UNIT');
    expect(session.want).to.deep.equal(['T']);

    const calls = [3, 1, 0, 2].map((seq) => session.push(seq, makeEvents(seq * 10 + 1, 2)));
    for (const c of calls) expect(await c.done).to.deep.equal(accepted);
    const inOrder = ['1', '2', '11', '12', '21', '22', '31', '32'];
    await waitFor(() => rec.processed.length === 8, 'processedEvents');
    expect(rec.newEvents).to.deep.equal(inOrder);
    expect(rec.processed).to.deep.equal(inOrder);

    // A re-delivery of an acknowledged group is answered without handling it again.
    expect(await session.push(2, makeEvents(21, 2)).done).to.deep.equal(accepted);
    await delay(50);
    expect(rec.newEvents).to.deep.equal(inOrder);
    expect(rec.workerErrors).to.deep.equal([]);
    expect(rec.receiverErrors).to.deep.equal([]);
  });

  it('LiveReceiver asks for the LIVE stream without registering', async function () {
    const receiver = track(new LiveReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor);
    await waitFor(() => rec.ready === 1, 'ready');
    expect(pusher.registered).to.deep.equal([]);
    expect(pusher.lastSession.component).to.equal('LIVE');
    expect(pusher.lastSession.want).to.equal(null);
    // LIVE groups may skip seq numbers (skipped groups) and are handled as they come.
    for (const seq of [0, 5]) {
      expect(await pusher.lastSession.push(seq, makeEvents(seq + 1, 1)).done).to.deep.equal(
        accepted,
      );
    }
    await waitFor(() => rec.newEvents.length === 2, 'newEvents');
    expect(rec.newEvents).to.deep.equal(['1', '6']);
  });

  it('paces retries of a failing handler and gets every event once it recovers', async function () {
    const receiver = track(new FlakyReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'FLAKY' });
    await waitFor(() => rec.ready === 1, 'ready');
    const session = pusher.lastSession;

    // A pusher that retries as soon as it gets an error: the receiver sets the pace.
    const failUntil = Date.now() + 1_200;
    receiver.failing = () => Date.now() < failUntil;
    const startedAt = Date.now();
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
    expect(Date.now() - startedAt).to.be.at.least(1_200);
    // Delays of 50-100, 100-200, 200-400, 400-800 ms...: a handful of attempts, not thousands.
    expect(receiver.attempts).to.equal(calls);
    expect(calls).to.be.within(4, 9);
    expect(rec.receiverErrors.length).to.equal(calls - 2);
    expect(new Set(rec.receiverErrors)).to.deep.equal(new Set(['Boom']));
  });

  it('reconnects when the in-process service closes, and the new session starts at seq 0', async function () {
    const receiver = track(new ReliableReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'AGAIN' });
    await waitFor(() => rec.ready === 1, 'ready');
    for (const seq of [0, 1]) await pusher.lastSession.push(seq, makeEvents(seq + 1, 1)).done;

    // A closed executor still answers in-process calls, so the receiver gets a new session.
    pushExecutor.close();
    await waitFor(() => rec.ready === 2, 'ready again');
    expect(rec.workerErrors).to.deep.equal(['Disconnect']);
    expect(pusher.sessions.length).to.equal(2);
    expect(await pusher.lastSession.push(0, makeEvents(3, 1)).done).to.deep.equal(accepted);
    await waitFor(() => rec.processed.length === 3, 'processed');
    expect(rec.processed).to.deep.equal(['1', '2', '3']);
  });

  it('retries a failing readyToReceive with exponential backoff, then recovers', async function () {
    pusher.failReady = 'SecurityError';
    const receiver = track(new ReliableReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'DENIED' });
    await delay(1_500);
    // Waits of 50-100, 100-200, 200-400, 400-800 ms: 4 to 5 attempts in 1.5 s.
    expect(rec.workerErrors.length).to.be.within(3, 6);
    expect(new Set(rec.workerErrors)).to.deep.equal(new Set(['SecurityError']));
    pusher.failReady = null;
    await waitFor(() => rec.ready === 1, 'ready', 3_000);
  });

  it('retries a refused connection with backoff, never in a tight loop', async function () {
    const port = await freeClosedPort();
    const receiver = track(new LiveReceiver(receiverCcm));
    const rec = new Recorder(receiver);
    receiver.start(`ws://127.0.0.1:${port}/`, 'user:pw', {
      reconnectMinMS: 50,
      reconnectMaxMS: 400,
    });
    await delay(1_500);
    // At least 25-50, 50-100, 100-200, then 200-400 ms apart: about 6 to 9 attempts in 1.5 s.
    expect(rec.workerErrors.length).to.be.within(4, 10);
    expect(new Set(rec.workerErrors)).to.deep.equal(new Set(['CommError']));
    expect(rec.ready).to.equal(0);
  });

  it('stop() ends everything: no reconnection, no timer or handle left', async function () {
    // Mocha starts this test's own timeout timer once the test function first awaits.
    await delay(1);
    const baseline = activeResources();
    const receiver = new ReliableReceiver(receiverCcm);
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor, null, { component: 'STOP' });
    await waitFor(() => rec.ready === 1, 'ready');
    // One call still waiting for its turn when stop() comes.
    const waiting = pusher.lastSession.push(3, makeEvents(4, 1));
    await delay(20);
    receiver.stop();
    expect((await waiting.done).ok).to.equal(false);
    await waitFor(
      () => resourcesAbove(baseline).length === 0,
      `resources back to the baseline: ${resourcesAbove(baseline).join()}`,
    );
    await delay(300);
    expect(pusher.sessions.length).to.equal(1);
    expect(rec.ready).to.equal(1);

    // Stopped while waiting to reconnect: the backoff timer goes too.
    const port = await freeClosedPort();
    receiver.start(`ws://127.0.0.1:${port}/`, 'user:pw', {
      component: 'STOP',
      reconnectMinMS: 5_000,
    });
    await waitFor(() => rec.workerErrors.length === 1, 'a refused connection');
    receiver.stop();
    await waitFor(
      () => resourcesAbove(baseline).length === 0,
      `resources back to the baseline: ${resourcesAbove(baseline).join()}`,
    );
    expect(resourcesAbove(baseline)).to.deep.equal([]);
  });

  it('stops when its executor CCM closes', async function () {
    const ccm = new AdvancedCCM();
    const receiver = track(new LiveReceiver(ccm));
    const rec = new Recorder(receiver);
    receiver.start(pushExecutor);
    await waitFor(() => rec.ready === 1, 'ready');
    ccm.close();
    await delay(300);
    // Stopped, so it can start again (and would have thrown if still running).
    expect(() => receiver.start(pushExecutor)).not.to.throw();
    await waitFor(() => rec.ready === 2, 'ready again');
    expect(rec.workerErrors).to.deep.equal([]);
  });

  it('refuses what cannot work at start()', function () {
    const live = track(new LiveReceiver(receiverCcm));
    expect(() => live.start('http://127.0.0.1:1/')).to.throw(TypeError, /bi-directional/);
    expect(() => live.start({})).to.throw(TypeError);
    const reliable = track(new ReliableReceiver(receiverCcm));
    expect(() => reliable.start(pushExecutor)).to.throw(TypeError, /component/);
    expect(() => reliable.start(pushExecutor, null, { component: 'LIVE' })).to.throw(TypeError);
    reliable.start(pushExecutor, null, { component: 'OK' });
    expect(() => reliable.start(pushExecutor, null, { component: 'OK' })).to.throw(
      /already started/,
    );
  });
});
