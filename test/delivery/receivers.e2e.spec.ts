/**
 * Our ReliableReceiver and LiveReceiver against our push service, over WebSocket and the
 * in-process channel: 20,000 events generated while receiving arrive exactly once, in order.
 */
import { expect } from 'chai';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import { cmpIds } from '../../src/common/ids';
import type { Event } from '../../src/delivery/poll/PollService';
import { LiveReceiver } from '../../src/receiving/LiveReceiver';
import { ReliableReceiver } from '../../src/receiving/ReliableReceiver';
import { describeDatabases } from '../support/db';
import { startService, TEST_CREDENTIALS } from '../support/service';
import { waitFor, waitForEvent } from '../support/wait';

class Collecting extends ReliableReceiver {
  readonly got: Event[] = [];
  protected override _onEvents(_as: AsyncSteps, events: Event[]): void {
    this.got.push(...events);
  }
}

class CollectingLive extends LiveReceiver {
  readonly got: Event[] = [];
  protected override _onEvents(_as: AsyncSteps, events: Event[]): void {
    this.got.push(...events);
  }
}

/** How long a receiver may take to be ready, or to get what it waits for. */
const RECEIVE_MS = 60_000;

describeDatabases('our receivers against our push service', (fx) => {
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

  const add = async (n: number, batch: number, type = 'RCV'): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i += batch) {
      ids.push(
        ...(await service.store.addEvents(
          Array.from({ length: Math.min(batch, n - i) }, (_v, k) => ({
            type,
            data: JSON.stringify({ i: i + k }),
          })),
        )),
      );
    }
    return ids;
  };

  for (const transport of ['ws', 'internal'] as const) {
    it(`ReliableReceiver gets 20,000 events generated while receiving, once each, in order (${transport})`, async function () {
      this.timeout(120_000);
      const receiver = new Collecting(ccm);
      const component = `OURS_${transport}`;
      const isReady = waitForEvent(receiver, 'ready', RECEIVE_MS);
      if (transport === 'ws') receiver.start(service.wsUrl, TEST_CREDENTIALS, { component });
      else receiver.start(service.executor, null, { component });
      await isReady;
      const ids = await add(20_000, 400);
      const last = ids[ids.length - 1]!;
      await waitFor(
        `the last event (${last})`,
        () =>
          receiver.got.length > 0 && cmpIds(receiver.got[receiver.got.length - 1]!.id, last) >= 0,
        RECEIVE_MS,
      );
      const mine = new Set(ids);
      expect(receiver.got.map((e) => e.id).filter((id) => mine.has(id))).to.deep.equal(ids);
      const all = receiver.got.map((e) => e.id);
      expect(new Set(all).size, 'no duplicates').to.equal(all.length);
      receiver.stop();
    });
  }

  it('LiveReceiver gets the new events only', async () => {
    await add(20, 20);
    const receiver = new CollectingLive(ccm);
    const isReady = waitForEvent(receiver, 'ready', RECEIVE_MS);
    receiver.start(service.wsUrl, TEST_CREDENTIALS);
    await isReady;
    const ids = await add(300, 30, 'LIVE_NEW');
    await waitFor('300 events', () => receiver.got.length >= 300, RECEIVE_MS);
    expect(receiver.got.map((e) => e.id)).to.deep.equal(ids);
    receiver.stop();
  });
});
