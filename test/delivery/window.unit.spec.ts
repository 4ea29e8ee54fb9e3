/**
 * The delivery window of a reliable push session, on its own: what it sends, reads and lets the
 * stored pointer move to, given what was read, offered, acknowledged and failed.
 */
import { expect } from 'chai';
import type { Delivery } from '../../src/delivery/push/queue';
import {
  DeliveryWindow,
  type Batch,
  type Step,
  type WindowOptions,
} from '../../src/delivery/push/window';

const OPTIONS: WindowOptions = {
  maxInFlight: 2,
  queueMaxEvents: 10,
  queueMaxBytes: 10_000,
  limits: { maxEvents: 3, maxBytes: 1_000, version: '1.1' },
};

const ev = (id: number, bytes = 100): Delivery => ({
  event: { id: String(id), type: 'T', data: null, ts: '2024-01-01T00:00:00Z' },
  bytes,
});
const evs = (from: number, to: number, bytes = 100): Delivery[] => {
  const out: Delivery[] = [];
  for (let id = from; id <= to; id++) out.push(ev(id, bytes));
  return out;
};

const ids = (b: Batch): string[] => b.items.map((d) => d.event.id);

/** Every step the window gives until it gives none. */
function drain(w: DeliveryWindow): Step[] {
  const steps: Step[] = [];
  for (let s = w.next(); s; s = w.next()) steps.push(s);
  return steps;
}

function sent(steps: Step[]): Batch[] {
  return steps.flatMap((s) => (s.do === 'send' ? [s.batch] : []));
}

/** A window at `pointer` that read the store up to `horizon` (nothing) and went to tail mode. */
function tailWindow(pointer: string, options: Partial<WindowOptions> = {}): DeliveryWindow {
  const w = new DeliveryWindow(pointer, { ...OPTIONS, ...options });
  expect(w.next()).to.deep.equal({ do: 'read', after: pointer });
  w.readDone([], pointer);
  w.enterTail(pointer);
  expect(w.next()).to.equal(null);
  return w;
}

describe('DeliveryWindow', function () {
  it('reads the store from the pointer, one read at a time', function () {
    const w = new DeliveryWindow('41', OPTIONS);
    expect(w.mode).to.equal('catchup');
    expect(w.next()).to.deep.equal({ do: 'read', after: '41' });
    expect(w.next(), 'no second read while one runs').to.equal(null);
    w.readFailed();
    expect(w.next(), 'again after a failed read').to.deep.equal({ do: 'read', after: '41' });
  });

  it('cuts what was read into batches by events, numbered 0, 1, 2 without gaps', function () {
    const w = new DeliveryWindow('0', { ...OPTIONS, maxInFlight: 10 });
    w.next();
    // Read up to 9: the events 8 and 9 were filtered out.
    w.readDone(evs(1, 7), '9');
    const steps = drain(w);
    const batches = sent(steps);
    expect(batches.map((b) => b.seq)).to.deep.equal([0, 1, 2]);
    expect(batches.map(ids)).to.deep.equal([['1', '2', '3'], ['4', '5', '6'], ['7']]);
    // The last batch covers the filtered-out events after it.
    expect(batches.map((b) => b.coversUpTo)).to.deep.equal(['3', '6', '9']);
    expect(steps[steps.length - 1], 'then reads on after them').to.deep.equal({
      do: 'read',
      after: '9',
    });
    expect(w.inFlight).to.equal(3);
  });

  it('cuts batches by bytes, with at least one event each', function () {
    const w = new DeliveryWindow('0', { ...OPTIONS, maxInFlight: 10 });
    w.next();
    w.readDone([ev(1, 400), ev(2, 400), ev(3, 400), ev(4, 1_000), ev(5, 1)], '5');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['1', '2'], ['3'], ['4'], ['5']]);
  });

  // Breaking change it catches: sending whatever is queued while a batch is unanswered (no
  // wait in DeliveryWindow.next); each of many sessions then makes one call per event.
  it('in tail mode, sends events that do not fill a batch once the batch in flight is answered', function () {
    const w = tailWindow('0', { maxInFlight: 3 });
    w.offer([ev(1)], '1');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['1']]);
    w.offer([ev(2)], '2');
    w.offer([ev(3)], '3');
    expect(drain(w), 'batch 0 is unanswered').to.deep.equal([]);
    w.acked(0);
    expect(sent(drain(w)).map(ids), 'together, although batch 0 is not stored').to.deep.equal([
      ['2', '3'],
    ]);
    // A whole batch goes at once, the window allowing.
    w.offer(evs(4, 7), '7');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['4', '5', '6']]);
    w.acked(1);
    w.acked(2);
    w.pointerStored('6');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['7']]);
  });

  // Breaking change it catches: no pace in DeliveryWindow.next (the push option
  // reliable_calls_per_s): each of many sessions then calls once per round trip, which at a
  // steady rate is once per event.
  it('with a pace, sends new tail events that do not fill a batch an interval after the last call started', function () {
    const w = tailWindow('0', { maxInFlight: 3 });
    const at = (now: number) => ({ now, intervalMs: 20 });
    w.offer([ev(1)], '1');
    const first = w.next(at(100));
    expect(first?.do === 'send' && ids(first.batch)).to.deep.equal(['1']);
    expect(w.next(at(100))).to.equal(null);
    w.acked(0);
    w.offer([ev(2)], '2');
    expect(w.next(at(105)), 'answered, but too soon').to.deep.equal({ do: 'wait', until: 120 });
    w.offer([ev(3)], '3');
    expect(w.next(at(119))).to.deep.equal({ do: 'wait', until: 120 });
    const second = w.next(at(120));
    expect(second?.do === 'send' && ids(second.batch), 'what came meanwhile, in one').to.deep.equal(
      ['2', '3'],
    );
    w.acked(1);
    // A whole batch goes at once, and the pace counts from it.
    w.offer(evs(4, 7), '7');
    const third = w.next(at(121));
    expect(third?.do === 'send' && ids(third.batch)).to.deep.equal(['4', '5', '6']);
    w.acked(2);
    w.pointerStored('6');
    expect(w.next(at(122)), 'the rest waits').to.deep.equal({ do: 'wait', until: 141 });
    // The interval may change between calls (sessions come and go): it counts as given.
    const fourth = w.next({ now: 131, intervalMs: 10 });
    expect(fourth?.do === 'send' && ids(fourth.batch)).to.deep.equal(['7']);
    // Without a pace nothing waits for time.
    w.acked(3);
    w.offer([ev(8)], '8');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['8']]);
  });

  it('with a pace, sends what a read returned at once', function () {
    const w = new DeliveryWindow('0', { ...OPTIONS, maxInFlight: 3 });
    const pace = { now: 50, intervalMs: 1_000 };
    expect(w.next(pace)).to.deep.equal({ do: 'read', after: '0' });
    w.readDone(evs(1, 4), '4');
    const steps = [w.next(pace), w.next(pace)];
    expect(steps.map((s) => s?.do === 'send' && ids(s.batch))).to.deep.equal([
      ['1', '2', '3'],
      ['4'],
    ]);
    expect(w.next(pace), 'and reads on').to.deep.equal({ do: 'read', after: '4' });
  });

  // Breaking change it catches: making events a read returned wait like new ones from the tail
  // channel (no readUpTo in DeliveryWindow.next); the rest of a catch-up then waits on a batch
  // that may stall until its call times out.
  it('sends what a read returned at once, in tail mode too, while a batch is unanswered', function () {
    const w = new DeliveryWindow('0', { ...OPTIONS, maxInFlight: 3 });
    expect(w.next()).to.deep.equal({ do: 'read', after: '0' });
    w.readDone(evs(1, 4), '4');
    w.enterTail('4');
    expect(sent(drain(w)).map(ids), 'both, batch 0 unanswered').to.deep.equal([
      ['1', '2', '3'],
      ['4'],
    ]);
    w.offer([ev(5)], '5');
    expect(drain(w), 'a new event waits').to.deep.equal([]);
  });

  it('sends at most maxInFlight batches until their pointer is stored', function () {
    const w = tailWindow('0');
    w.offer(evs(1, 9), '9');
    expect(sent(drain(w)).map((b) => b.seq)).to.deep.equal([0, 1]);
    w.acked(0);
    expect(w.next(), 'acknowledged, but not stored yet').to.equal(null);
    expect(w.pointerMove()).to.deep.equal({ to: '3', skipOnly: false });
    w.pointerStored('3');
    expect(w.inFlight).to.equal(1);
    expect(sent(drain(w)).map((b) => b.seq)).to.deep.equal([2]);
  });

  // Breaking change it catches: pointerMove going on past a batch not acknowledged (issue 19).
  it('never lets the pointer past a batch not acknowledged, even when a later one is', function () {
    const w = tailWindow('0', { maxInFlight: 3 });
    w.offer(evs(1, 9), '12');
    expect(sent(drain(w)).map((b) => b.coversUpTo)).to.deep.equal(['3', '6', '12']);
    w.acked(2);
    w.acked(1);
    expect(w.pointerMove(), 'batch 0 is still in flight').to.equal(null);
    w.acked(0);
    expect(w.pointerMove()).to.deep.equal({ to: '12', skipOnly: false });
    w.pointerStored('12');
    expect(w.inFlight).to.equal(0);
    expect(w.pending).to.equal(0);
  });

  it('moves past filtered-out events as one skip, which takes no place among maxInFlight', function () {
    const w = tailWindow('0', { maxInFlight: 1 });
    w.offer([], '4');
    w.offer([], '6');
    expect(drain(w), 'a skip is nothing to send').to.deep.equal([]);
    expect(w.pointerMove()).to.deep.equal({ to: '6', skipOnly: true });
    w.offer([], '8');
    drain(w);
    expect(w.pending, 'skips in a row merge').to.equal(1);
    expect(w.pointerMove()).to.deep.equal({ to: '8', skipOnly: true });
    // A wanted event goes out although the skips are not stored: they hold no place.
    w.offer([ev(9)], '10');
    const [batch] = sent(drain(w));
    expect(batch).to.include({ seq: 0, coversUpTo: '10' });
    expect(w.inFlight).to.equal(1);
    expect(w.pointerMove(), 'the skips before the batch may be stored').to.deep.equal({
      to: '8',
      skipOnly: true,
    });
    w.offer([], '12');
    drain(w);
    w.acked(0);
    expect(w.pointerMove(), 'one write takes the batch and the skips around it').to.deep.equal({
      to: '12',
      skipOnly: false,
    });
  });

  it('counts a read that found only filtered-out events as a skip, and reads on', function () {
    const w = new DeliveryWindow('3', { ...OPTIONS, maxInFlight: 1 });
    w.next();
    w.readDone([], '50');
    expect(w.next()).to.deep.equal({ do: 'read', after: '50' });
    expect(w.pointerMove()).to.deep.equal({ to: '50', skipOnly: true });
  });

  it('sends a failed batch again as it was, and nothing new until then', function () {
    const w = new DeliveryWindow('0', { ...OPTIONS, maxInFlight: 3 });
    w.next();
    w.readDone(evs(1, 4), '4');
    const steps = drain(w);
    const [first, second] = sent(steps);
    expect(first!.seq).to.equal(0);
    expect(second!.seq).to.equal(1);
    expect(steps[steps.length - 1]).to.deep.equal({ do: 'read', after: '4' });
    w.acked(0);
    expect(w.failed(1)).to.deep.equal({ do: 'retry', failures: 1 });
    w.readDone(evs(5, 7), '7');
    expect(w.next(), 'nothing new while a batch failed').to.equal(null);
    const again = w.resend(1);
    expect(again).to.include({ seq: 1, coversUpTo: '4' });
    expect(ids(again!)).to.deep.equal(['4']);
    expect(w.failed(1), 'failures add up').to.deep.equal({ do: 'retry', failures: 2 });
    expect(w.next()).to.equal(null);
    w.resend(1);
    // Resent: new batches may go again, numbered on from the last one.
    const [next] = sent(drain(w));
    expect(next).to.include({ seq: 2, coversUpTo: '7' });
    expect(ids(next!)).to.deep.equal(['5', '6', '7']);
    expect(w.pointerMove()).to.deep.equal({ to: '3', skipOnly: false });
    w.acked(1);
    expect(w.pointerMove()).to.deep.equal({ to: '4', skipOnly: false });
  });

  it('holds back what it read while a batch failed', function () {
    const w = new DeliveryWindow('0', { ...OPTIONS, maxInFlight: 3 });
    w.next();
    w.readDone(evs(1, 3), '3');
    const [first] = sent(drain(w));
    // The read after batch 0 was asked for; batch 0 fails before its result comes.
    w.failed(first!.seq);
    w.readDone(evs(4, 5), '5');
    expect(w.next()).to.equal(null);
    w.resend(first!.seq);
    expect(sent(drain(w)).map(ids)).to.deep.equal([['4', '5']]);
  });

  // Breaking change it catches: on overflow, clearing the queue but staying in tail mode.
  it('goes back to reading the store from what it sent when its queue overflows', function () {
    const w = tailWindow('0', { maxInFlight: 1 });
    w.offer([ev(1)], '1');
    const [first] = sent(drain(w));
    expect(w.offer(evs(2, 11), '11'), 'the queue holds 10').to.equal(0);
    expect(w.queued).to.equal(10);
    expect(w.offer(evs(12, 12), '12'), 'dropped').to.equal(11);
    expect(w.mode).to.equal('catchup');
    expect(w.queued).to.equal(0);
    expect(w.offer(evs(13, 14), '14'), 'offers are ignored while catching up').to.equal(0);
    expect(w.queued).to.equal(0);
    w.acked(first!.seq);
    w.pointerStored('1');
    // Nothing it dropped is lost: it reads from the end of the last batch it sent.
    expect(drain(w)).to.deep.equal([{ do: 'read', after: '1' }]);
    w.readDone(evs(2, 4), '4');
    expect(sent(drain(w)).map((b) => [b.seq, ...ids(b)])).to.deep.equal([[1, '2', '3', '4']]);
  });

  it('counts the bytes of its queue against queueMaxBytes', function () {
    const w = tailWindow('0', { maxInFlight: 1, queueMaxBytes: 500 });
    w.offer([ev(1)], '1');
    drain(w);
    expect(w.offer([ev(2, 250), ev(3, 250)], '3')).to.equal(0);
    expect(w.offer([ev(4, 1)], '4')).to.equal(3);
    expect(w.mode).to.equal('catchup');
  });

  it('takes each event from the tail channel once', function () {
    const w = tailWindow('5', { maxInFlight: 10 });
    w.offer(evs(4, 7), '7');
    w.offer(evs(6, 8), '8');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['6', '7', '8']]);
    w.acked(0);
    w.offer(evs(7, 9), '9');
    expect(sent(drain(w)).map(ids)).to.deep.equal([['9']]);
  });

  it('waits on an event too large for the channel by reading the store, never skipping it', function () {
    const w = tailWindow('0', { maxInFlight: 10 });
    w.offer([ev(1), ev(2, 1_001), ev(3)], '3');
    const steps = drain(w);
    expect(sent(steps).map(ids)).to.deep.equal([['1']]);
    expect(steps.slice(1)).to.deep.equal([{ do: 'read', after: '1' }]);
    expect(w.mode).to.equal('catchup');
    expect(w.queued).to.equal(0);
    expect(w.pointerMove(), 'not past the large event').to.equal(null);
  });

  it('joins the tail at the horizon it read up to, and counts what it skipped up to there', function () {
    const w = new DeliveryWindow('0', OPTIONS);
    w.next();
    w.readDone(evs(1, 2), '2');
    w.enterTail('5');
    expect(w.mode).to.equal('tail');
    const steps = drain(w);
    expect(sent(steps).map((b) => b.coversUpTo)).to.deep.equal(['5']);
    expect(steps).to.have.length(1);
  });

  // Breaking change it catches: drain() that lets failed batches be sent again, or stops the
  // pointer from moving past what is acknowledged.
  it('draining: starts nothing new, sends no failed batch again, moves the pointer past what is acknowledged', function () {
    const w = tailWindow('0', { maxInFlight: 3 });
    w.offer(evs(1, 6), '6');
    const [first, second] = sent(drain(w));
    expect(w.sending).to.equal(2);
    w.drain();
    w.offer(evs(7, 9), '9');
    expect(w.next(), 'nothing new').to.equal(null);
    w.acked(first!.seq);
    expect(w.sending).to.equal(1);
    expect(w.pointerMove()).to.deep.equal({ to: '3', skipOnly: false });
    w.failed(second!.seq);
    expect(w.sending).to.equal(0);
    expect(w.resend(second!.seq), 'not sent again while draining').to.equal(null);
    expect(w.next()).to.equal(null);
    w.pointerStored('3');
    expect(w.pointerMove(), 'never past the failed batch').to.equal(null);
    expect(w.inFlight, 'the failed batch stays unconfirmed').to.equal(1);
  });

  it('draining while catching up: reads nothing more', function () {
    const w = new DeliveryWindow('0', OPTIONS);
    w.drain();
    expect(w.next()).to.equal(null);
  });

  // Breaking change it catches: counting a failed batch as failed still once it was acknowledged.
  it('takes a late success of a failed batch as its acknowledgement, and sends on', function () {
    const w = tailWindow('0', { maxInFlight: 3 });
    w.offer(evs(1, 3), '3');
    const [first] = sent(drain(w));
    expect(w.failed(first!.seq).failures).to.equal(1);
    w.offer(evs(4, 4), '4');
    expect(w.next(), 'held while it failed').to.equal(null);
    // The call's answer came after all (the failure was a timeout): it counts.
    w.acked(first!.seq);
    expect(w.pointerMove()).to.deep.equal({ to: '3', skipOnly: false });
    expect(sent(drain(w)).map(ids)).to.deep.equal([['4']]);
    expect(w.resend(first!.seq), 'nothing to resend').to.equal(null);
  });

  it('ignores answers and resends of batches it does not hold, or that are not failed', function () {
    const w = tailWindow('0', { maxInFlight: 3 });
    w.offer(evs(1, 3), '3');
    const [first] = sent(drain(w));
    expect(() => w.acked(7)).to.not.throw();
    expect(w.failed(7).failures).to.equal(0);
    expect(w.resend(7)).to.equal(null);
    expect(w.resend(first!.seq), 'still sending: no resend').to.equal(null);
    w.acked(first!.seq);
    w.acked(first!.seq);
    expect(w.resend(first!.seq), 'acknowledged: no resend').to.equal(null);
    w.offer(evs(4, 4), '4');
    expect(sent(drain(w)).map((b) => [b.seq, ...ids(b)])).to.deep.equal([[1, '4']]);
  });

  it('asks for no read, and keeps nothing read or offered, once closed', function () {
    const idle = new DeliveryWindow('0', OPTIONS);
    idle.close();
    expect(idle.next(), 'no read after close').to.equal(null);

    const reading = new DeliveryWindow('0', OPTIONS);
    expect(reading.next()).to.deep.equal({ do: 'read', after: '0' });
    reading.close();
    reading.readDone(evs(1, 2), '2');
    expect(reading.queued).to.equal(0);
    reading.enterTail('2');
    expect(reading.mode, 'no tail after close').to.equal('catchup');
    expect(reading.next()).to.equal(null);
  });

  it('starts nothing more once closed', function () {
    const w = tailWindow('0');
    w.offer(evs(1, 2), '2');
    w.close();
    expect(w.next()).to.equal(null);
    expect(w.queued).to.equal(0);
    expect(w.offer(evs(3, 4), '4')).to.equal(0);
    expect(w.queued).to.equal(0);
  });
});
