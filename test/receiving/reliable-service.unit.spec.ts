/**
 * ReceiverService and ReliableReceiverService driven through a real futoin-executor Executor:
 * onEvents calls arrive over the internal channel from a CCM that registered the executor as
 * its endpoint, with ReceiverFace as the client, many at a time and in any order.
 */
import { expect } from 'chai';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor, type RequestInfo } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import { SPEC_DIRS_ALL } from '../../src/common/constants';
import type { Event } from '../../src/delivery/poll/PollService';
import { ReceiverFace } from '../../src/common/faces/ReceiverFace';
import { ReceiverService } from '../../src/receiving/ReceiverService';
import { ReliableReceiverService } from '../../src/receiving/ReliableReceiverService';
import { waitFor, withTimeout } from '../support/wait';
import { call, makeEvents, run, type Call, type Outcome } from './support';

/** Group `seq` carries the single event with ID seq + 1, so processing order is visible. */
const group = (seq: number): Event[] => makeEvents(seq + 1, 1);

/** A gate holding the processing of one group until the test opens it. */
interface Gate {
  open(ok: boolean): void;
}

/** Records every group it processes; can hold or fail chosen ones. */
class RecordingService extends ReliableReceiverService {
  readonly processed: string[] = [];
  /** Event IDs whose next processing fails. */
  readonly failNext = new Set<string>();
  /** Event IDs whose next processing waits for the test. */
  readonly holdNext = new Set<string>();
  readonly gates = new Map<string, Gate>();

  protected override _onEvents(as: AsyncSteps, _reqinfo: RequestInfo, events: Event[]): void {
    const id = events[0]?.id ?? '?';
    if (this.holdNext.delete(id)) {
      as.add((as) => {
        as.setCancel(() => this.gates.delete(id));
        this.gates.set(id, {
          open: (ok) => {
            this.gates.delete(id);
            if (ok) as.success();
            else {
              try {
                as.error('InternalError', `held ${id} failed`);
              } catch {
                // AsyncSteps#error always throws; the error is already being handled.
              }
            }
          },
        });
      });
    }
    as.add((as) => {
      if (this.failNext.delete(id)) as.error('InternalError', `processing ${id} failed`);
      this.processed.push(id);
    });
  }
}

describe('ReliableReceiverService', function () {
  let ccm: AdvancedCCM;
  let executor: Executor;
  let service: RecordingService;
  let receiver: ReceiverFace;

  async function setUp(reqTimeout = 5_000): Promise<void> {
    ccm = new AdvancedCCM();
    executor = new Executor(ccm, { reqTimeout });
    await run((as) => {
      service = RecordingService.register(as, executor);
      ccm.register(as, 'receiver', 'futoin.evt.receiver:1.1', executor, null, {
        nativeImpl: ReceiverFace,
        specDirs: SPEC_DIRS_ALL,
      });
    });
    receiver = ccm.iface<ReceiverFace>('receiver');
  }

  const push = (seq: number): Call => call((as) => receiver.onEvents(as, seq, group(seq)));
  const accepted: Outcome = { ok: true, result: true };

  afterEach(function () {
    executor.close();
    ccm.close();
  });

  it('processes parallel calls arriving out of order strictly in seq order, from 0', async function () {
    await setUp();
    service.holdNext.add('1');
    const calls = [5, 3, 0, 4, 1, 2].map(push);
    // Everything is in: 0 is held in processing, the other five wait for their turn.
    await waitFor('five waiting calls', () => service.waitingCalls === 5 && service.gates.has('1'));
    expect(service.processed).to.deep.equal([]);
    service.gates.get('1')?.open(true);
    for (const c of calls) expect(await c.done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1', '2', '3', '4', '5', '6']);
    expect(service.expectedSeq).to.equal(6);
    expect(service.waitingCalls).to.equal(0);
    expect(service.activeCalls).to.equal(0);
  });

  it('answers a re-delivered group (seq below the next expected) at once, without processing it again', async function () {
    await setUp();
    for (const seq of [0, 1, 2]) expect(await push(seq).done).to.deep.equal(accepted);
    // A call that waited for a turn would never get one, and fail at the request timeout (5 s).
    for (const seq of [0, 2, 1]) expect(await push(seq).done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1', '2', '3']);
    expect(service.expectedSeq).to.equal(3);
  });

  it('keeps a failed group as the next expected one: the retry is processed, then those waiting', async function () {
    await setUp();
    expect(await push(0).done).to.deep.equal(accepted);
    service.failNext.add('2');
    const later = [push(2), push(3)];
    const failed = await push(1).done;
    expect(failed).to.include({ ok: false, code: 'InternalError' });
    expect(service.expectedSeq).to.equal(1);
    expect(service.processed).to.deep.equal(['1']);
    expect(service.waitingCalls).to.equal(2);

    expect(await push(1).done).to.deep.equal(accepted);
    for (const c of later) expect(await c.done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1', '2', '3', '4']);
  });

  it('lets a copy of the group in progress wait for its outcome: done, or its own turn on failure', async function () {
    await setUp();
    // Success: the copy is answered without processing.
    service.holdNext.add('1');
    const first = push(0);
    await waitFor('group 0 in progress', () => service.gates.has('1'));
    const copy = push(0);
    await waitFor('the copy waiting', () => service.waitingCalls === 1);
    service.gates.get('1')?.open(true);
    expect(await first.done).to.deep.equal(accepted);
    expect(await copy.done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1']);

    // Failure: the copy takes over and is processed.
    service.holdNext.add('2');
    const second = push(1);
    await waitFor('group 1 in progress', () => service.gates.has('2'));
    const retry = push(1);
    await waitFor('the retry waiting', () => service.waitingCalls === 1);
    service.gates.get('2')?.open(false);
    expect(await second.done).to.include({ ok: false, code: 'InternalError' });
    expect(await retry.done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1', '2']);
    expect(service.expectedSeq).to.equal(2);
  });

  it('leaves nothing behind when waiting calls are cancelled by the caller', async function () {
    await setUp();
    const waiting = [push(3), push(7), push(7)];
    await waitFor('three waiting calls', () => service.waitingCalls === 3);
    for (const c of waiting) c.root.cancel();
    await waitFor('no active call', () => service.activeCalls === 0);
    expect(service.waitingCalls).to.equal(0);
    // The order still works afterwards.
    for (const seq of [0, 1, 2, 3]) expect(await push(seq).done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1', '2', '3', '4']);
  });

  it('leaves nothing behind when waiting calls time out, nor when the holder of the turn does', async function () {
    await setUp(300);
    service.holdNext.add('1');
    const holder = push(0);
    const waiting = [push(1), push(4)];
    for (const c of [holder, ...waiting]) {
      expect(await c.done).to.include({ ok: false, code: 'InternalError' });
    }
    expect(service.waitingCalls).to.equal(0);
    expect(service.activeCalls).to.equal(0);
    expect(service.gates.size).to.equal(0);
    // The cancelled holder gave its turn back: 0 is accepted again.
    expect(service.expectedSeq).to.equal(0);
    for (const seq of [1, 0]) push(seq);
    await waitFor('groups 0 and 1 processed', () => service.expectedSeq === 2);
    expect(service.processed).to.deep.equal(['1', '2']);
  });

  it('fails waiting and running calls promptly when its executor closes', async function () {
    await setUp(60_000);
    service.holdNext.add('1');
    const calls = [push(0), push(1), push(2)];
    await waitFor('calls in progress', () => service.waitingCalls === 2 && service.gates.has('1'));
    executor.close();
    // Long before the request timeout (60 s).
    for (const c of calls) {
      expect((await withTimeout(c.done, 'the calls to fail')).ok).to.equal(false);
    }
    expect(service.activeCalls).to.equal(0);
    expect(service.waitingCalls).to.equal(0);
    expect(service.expectedSeq).to.equal(0);
  });

  it('reset() starts a new session at seq 0 and fails the calls still waiting from the old one', async function () {
    await setUp();
    for (const seq of [0, 1]) await push(seq).done;
    const stale = push(5);
    await waitFor('a waiting call', () => service.waitingCalls === 1);
    service.reset();
    expect(await stale.done).to.include({ ok: false, code: 'InternalError' });
    expect(service.expectedSeq).to.equal(0);
    expect(await push(0).done).to.deep.equal(accepted);
    expect(service.processed).to.deep.equal(['1', '2', '1']);
  });
});

describe('ReceiverService', function () {
  it('answers true once _onEvents succeeded, in parallel and in any order; NotImplemented by default', async function () {
    const ccm = new AdvancedCCM();
    const executor = new Executor(ccm);
    const seen: string[] = [];
    class Collecting extends ReceiverService {
      protected override _onEvents(_as: AsyncSteps, _reqinfo: RequestInfo, events: Event[]): void {
        seen.push(...events.map((e) => e.id));
      }
    }
    const bare = new Executor(ccm);
    try {
      await run((as) => {
        Collecting.register(as, executor);
        ReceiverService.register(as, bare);
        for (const [name, endpoint] of [
          ['collecting', executor],
          ['bare', bare],
        ] as const) {
          ccm.register(as, name, 'futoin.evt.receiver:1.1', endpoint, null, {
            nativeImpl: ReceiverFace,
            specDirs: SPEC_DIRS_ALL,
          });
        }
      });
      const face = ccm.iface<ReceiverFace>('collecting');
      const outcomes = await Promise.all(
        [2, 0, 1].map((seq) => call((as) => face.onEvents(as, seq, group(seq))).done),
      );
      for (const o of outcomes) expect(o).to.deep.equal({ ok: true, result: true });
      expect([...seen].sort()).to.deep.equal(['1', '2', '3']);

      const bareFace = ccm.iface<ReceiverFace>('bare');
      expect(await call((as) => bareFace.onEvents(as, 0, group(0))).done).to.include({
        ok: false,
        code: 'NotImplemented',
      });
    } finally {
      executor.close();
      bare.close();
      ccm.close();
    }
  });
});
