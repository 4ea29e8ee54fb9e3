/**
 * Interop: the reference implementation's (futoin-eventstream 1.3.9) ReliableReceiver and
 * LiveReceiver against our push service, over WebSocket.
 */
import { expect } from 'chai';
import { AdvancedCCM } from 'futoin-invoker';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { StreamService } from '../../src/app/service';
import type { Event } from '../../src/delivery/poll/PollService';
import { describeDatabases } from '../support/db';
import { startService, TEST_CREDENTIALS } from '../support/service';
import { waitFor, waitForEvent } from '../support/wait';

interface RefReceiver {
  start(
    endpoint: string,
    credentials: string,
    options: { component?: string; want?: string[] },
  ): void;
  stop(): void;
  once(event: string, handler: (...args: unknown[]) => void): void;
  off(event: string, handler: (...args: unknown[]) => void): void;
  _onEvents(as: AsyncSteps, events: Event[]): void;
}
type RefReceiverClass = new (ccm: AdvancedCCM) => RefReceiver;
/* eslint-disable @typescript-eslint/no-require-imports -- the reference ships no types */
const RefReliableReceiver = require('futoin-eventstream/ReliableReceiver') as RefReceiverClass;
const RefLiveReceiver = require('futoin-eventstream/LiveReceiver') as RefReceiverClass;
/* eslint-enable @typescript-eslint/no-require-imports */

/** How long a receiver may take to be ready, or to get what it waits for. */
const RECEIVE_MS = 30_000;

/** A reference receiver recording what it gets; `ready` resolves on its 'ready' event. */
function recording(
  Base: RefReceiverClass,
  ccm: AdvancedCCM,
): { receiver: RefReceiver; events: Event[]; ready: Promise<void> } {
  const events: Event[] = [];
  const receiver = new (class extends Base {
    override _onEvents(_as: AsyncSteps, got: Event[]): void {
      events.push(...got);
    }
  })(ccm);
  const ready = waitForEvent(receiver, 'ready', RECEIVE_MS).then(() => undefined);
  ready.catch(() => undefined); // where nobody awaits it, a timeout is no unhandled rejection
  return { receiver, events, ready };
}

describeDatabases('reference receivers against our push service', (fx) => {
  let service: StreamService;
  let ccm: AdvancedCCM;
  before(async () => {
    service = await startService(fx);
  });
  beforeEach(() => {
    ccm = new AdvancedCCM();
  });
  afterEach(() => ccm.close());
  after(() => service?.close());

  const add = async (n: number, type = 'REF'): Promise<string[]> =>
    service.store.addEvents(
      Array.from({ length: n }, (_v, i) => ({ type, data: JSON.stringify({ i }) })),
    );

  it('ReliableReceiver gets the backlog and new events exactly once, in order', async function () {
    this.timeout(60_000);
    const backlog = await add(1_500);
    const { receiver, events, ready } = recording(RefReliableReceiver, ccm);
    receiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'REFREL' });
    await ready;
    const more = await add(1_500);
    await waitFor('3,000 events', () => events.length >= 3_000, RECEIVE_MS);
    expect(events.map((e) => e.id)).to.deep.equal([...backlog, ...more]);
    receiver.stop();
  });

  it('ReliableReceiver continues from the stored pointer after a restart', async function () {
    this.timeout(60_000);
    const first = recording(RefReliableReceiver, ccm);
    first.receiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'REFRESTART' });
    await first.ready;
    const a = await add(200);
    await waitFor(
      'the first batch',
      () => first.events.some((e) => e.id === a[a.length - 1]),
      RECEIVE_MS,
    );
    first.receiver.stop();
    const b = await add(100);
    const second = recording(RefReliableReceiver, ccm);
    second.receiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'REFRESTART' });
    await waitFor(
      'the second batch',
      () => second.events.some((e) => e.id === b[b.length - 1]),
      RECEIVE_MS,
    );
    const got = second.events.map((e) => e.id);
    // At most the last unacknowledged batches again, then exactly what followed.
    expect(got.slice(got.indexOf(b[0]!))).to.deep.equal(b);
    const seen = new Set(first.events.map((e) => e.id));
    const again = got.filter((id) => !b.includes(id));
    expect(
      again.every((id) => seen.has(id)),
      'only events the first run got',
    ).to.equal(true);
    second.receiver.stop();
  });

  it('LiveReceiver gets new events, filtered by want', async () => {
    const { receiver, events, ready } = recording(RefLiveReceiver, ccm);
    receiver.start(service.wsUrl, TEST_CREDENTIALS, { want: ['LIVE_ONE'] });
    await ready;
    await add(5, 'OTHER');
    const ids = await add(10, 'LIVE_ONE');
    await waitFor('10 events', () => events.length >= 10, RECEIVE_MS);
    expect(events.map((e) => e.id)).to.deep.equal(ids);
    receiver.stop();
  });
});
