/**
 * Parking in the delivery window, on its own: with max_attempts, a batch failing that often is
 * narrowed down to its first failing event by halving, the events before it go through alone,
 * and that event is parked; replays go first and move no pointer.
 */
import { expect } from 'chai';
import type { Delivery } from '../../src/delivery/push/queue';
import {
  DeliveryWindow,
  type Batch,
  type FailOutcome,
  type NarrowHint,
  type Step,
  type WindowOptions,
} from '../../src/delivery/push/window';

const OPTIONS: WindowOptions = {
  maxInFlight: 2,
  queueMaxEvents: 100,
  queueMaxBytes: 100_000,
  limits: { maxEvents: 8, maxBytes: 10_000, version: '1.1' },
};

const ev = (id: number): Delivery => ({
  event: { id: String(id), type: 'T', data: null, ts: '2024-01-01T00:00:00Z' },
  bytes: 100,
});
const evs = (from: number, to: number): Delivery[] => {
  const out: Delivery[] = [];
  for (let id = from; id <= to; id++) out.push(ev(id));
  return out;
};
const ids = (b: Batch): string[] => b.items.map((d) => d.event.id);

function drain(w: DeliveryWindow): Step[] {
  const steps: Step[] = [];
  for (let s = w.next(); s; s = w.next()) steps.push(s);
  return steps;
}
const sent = (steps: Step[]): Batch[] => steps.flatMap((s) => (s.do === 'send' ? [s.batch] : []));
const one = (w: DeliveryWindow): Batch => {
  const batches = sent(drain(w));
  expect(batches, 'one batch').to.have.length(1);
  return batches[0]!;
};

/** Acknowledges `b` and stores the pointer where it may move now, as the writer does. */
function ack(w: DeliveryWindow, b: Batch): void {
  w.acked(b.seq);
  const move = w.pointerMove();
  if (move) w.pointerStored(move.to);
}

/** A window in tail mode at `pointer` with max_attempts `max`. */
function parkingWindow(pointer: string, max: number | null, options: Partial<WindowOptions> = {}) {
  const w = new DeliveryWindow(pointer, { ...OPTIONS, ...options });
  w.setMaxAttempts(max);
  drain(w);
  w.readDone([], pointer);
  w.enterTail(pointer);
  return w;
}

/** Fails batch `b` (sent again after each failure) until the outcome is not a retry. */
function failUntil(w: DeliveryWindow, b: Batch, times: number): FailOutcome[] {
  const outcomes: FailOutcome[] = [];
  for (let i = 0; i < times; i++) {
    const o = w.failed(b.seq, { atMs: 1000 + outcomes.length, error: `e${i}` });
    outcomes.push(o);
    if (o.do !== 'retry') break;
    expect(w.resend(b.seq)).to.equal(b);
  }
  return outcomes;
}

describe('DeliveryWindow parking', function () {
  it('without max_attempts sends a failing batch again for ever, never splitting it', function () {
    const w = parkingWindow('0', null);
    w.offer(evs(1, 8), '8');
    const b = one(w);
    const outcomes = failUntil(w, b, 50);
    expect(outcomes.every((o) => o.do === 'retry')).to.equal(true);
    expect(outcomes[49]).to.deep.equal({ do: 'retry', failures: 50 });
    expect(w.narrowing).to.equal(false);
  });

  // Breaking changes it catches: parking a batch instead of narrowing it; sending the probe's
  // rest along with it; a new seq for the probe (the receiver expects the failed one again).
  it('narrows a batch failing max_attempts times to its first failing event, then parks that', function () {
    const w = parkingWindow('0', 3);
    w.offer(evs(1, 8), '8');
    const b = one(w);
    expect(b.seq).to.equal(0);
    expect(failUntil(w, b, 3).map((o) => o.do)).to.deep.equal(['retry', 'retry', 'narrow']);
    expect(w.narrowing).to.equal(true);

    // Halves, alone in flight, numbered on from the failed batch's seq.
    const p1 = one(w);
    expect([p1.seq, ...ids(p1)]).to.deep.equal([0, '1', '2', '3', '4']);
    w.acked(p1.seq);
    expect(w.pointerMove()).to.deep.equal({ to: '4', skipOnly: false });
    w.pointerStored('4');
    const p2 = one(w);
    expect([p2.seq, ...ids(p2)]).to.deep.equal([1, '5', '6']);
    expect(w.failed(p2.seq, { atMs: 2000, error: 'e' })).to.deep.equal({
      do: 'narrow',
      failures: 1,
    });
    const p3 = one(w);
    expect([p3.seq, ...ids(p3)]).to.deep.equal([1, '5']);
    ack(w, p3);
    const p4 = one(w);
    expect([p4.seq, ...ids(p4)]).to.deep.equal([2, '6']);
    const outcomes = failUntil(w, p4, 3);
    expect(outcomes.map((o) => o.do)).to.deep.equal(['retry', 'retry', 'park']);
    const park = outcomes[2] as FailOutcome & { do: 'park' };
    expect(park.event.id).to.equal('6');
    // 3 failures of the batch, 1 of [5, 6], 3 of [6] alone.
    expect(park.attempts).to.equal(7);
    expect(park.first).to.deep.equal({ atMs: 1000, error: 'e0' });
    expect(park.last).to.deep.equal({ atMs: 1002, error: 'e2' });
    expect(w.next(), 'nothing goes on before the park is recorded').to.equal(null);
    expect(w.pointerMove(), 'stored up to 5 already').to.equal(null);

    w.parked(p4.seq);
    expect(w.narrowing).to.equal(false);
    expect(w.pointerMove()).to.deep.equal({ to: '6', skipOnly: false });
    // The receiver never processed seq 2: the next batch takes it.
    const rest = sent(drain(w));
    expect(rest.map((r) => [r.seq, ...ids(r)])).to.deep.equal([[2, '7', '8']]);
    w.acked(2);
    expect(w.pointerMove()).to.deep.equal({ to: '8', skipOnly: false });
  });

  it('parks a batch of one event at once when it failed max_attempts times', function () {
    const w = parkingWindow('4', 2);
    w.offer([ev(5)], '7');
    const b = one(w);
    const outcomes = failUntil(w, b, 5);
    expect(outcomes.map((o) => o.do)).to.deep.equal(['retry', 'park']);
    expect((outcomes[1] as { attempts: number }).attempts).to.equal(2);
    w.parked(b.seq);
    expect(w.pointerMove()).to.deep.equal({ to: '7', skipOnly: false });
  });

  it('ends narrowing when every suspect went through after all (a passing failure)', function () {
    const w = parkingWindow('0', 1);
    w.offer(evs(1, 4), '4');
    const b = one(w);
    expect(w.failed(b.seq).do).to.equal('narrow');
    const p1 = one(w);
    expect(ids(p1)).to.deep.equal(['1', '2']);
    ack(w, p1);
    const p2 = one(w);
    expect(ids(p2)).to.deep.equal(['3']);
    ack(w, p2);
    const p3 = one(w);
    expect(ids(p3)).to.deep.equal(['4']);
    ack(w, p3);
    expect(w.narrowing).to.equal(false);
    w.offer(evs(5, 20), '20');
    expect(sent(drain(w)).map(ids), 'full batches, two in flight again').to.deep.equal([
      ['5', '6', '7', '8', '9', '10', '11', '12'],
      ['13', '14', '15', '16', '17', '18', '19', '20'],
    ]);
  });

  it("counts a batch's failures only while every batch before it is acknowledged", function () {
    const w = parkingWindow('0', 2);
    // Two full batches: new events that do not fill one wait while a call is unanswered.
    w.offer(evs(1, 16), '16');
    const [b0, b1] = sent(drain(w));
    // The receiver holds batch 1 behind batch 0, and fails it.
    expect(failUntil(w, b1!, 5).map((o) => o.do)).to.deep.equal(Array(5).fill('retry'));
    w.acked(b0!.seq);
    const outcomes = failUntil(w, b1!, 5);
    expect(outcomes.map((o) => o.do)).to.deep.equal(['retry', 'narrow']);
  });

  // Breaking change it catches: narrowing under the same seq while a later batch is in flight
  // (the receiver would process that one after the probe, out of order).
  it('asks for a new session when later batches are in flight, and starts nothing more', function () {
    const w = parkingWindow('2', 2);
    w.offer(evs(3, 18), '20');
    const [b0, b1] = sent(drain(w));
    expect(failUntil(w, b0!, 2).map((o) => o.do)).to.deep.equal(['retry', 'restart']);
    const restart = w.failed(b0!.seq);
    expect(restart.do, 'already failed: nothing new').to.equal('retry');
    expect(w.resend(b0!.seq)).to.equal(null);
    expect(w.next()).to.equal(null);
    expect(w.settledBefore(b0!.seq)).to.equal(true);
    w.acked(b1!.seq);
    expect(w.pointerMove(), 'never past the failing batch').to.equal(null);
  });

  it('gives the hint of where a new session goes on narrowing', function () {
    const v = parkingWindow('2', 1);
    v.offer(evs(3, 26), '26');
    const [c0, c1] = sent(drain(v));
    v.acked(c1!.seq);
    const o = v.failed(c0!.seq, { atMs: 7, error: 'y' });
    expect(o).to.deep.equal({
      do: 'restart',
      failures: 1,
      hint: {
        kind: 'stream',
        from: '2',
        upTo: '10',
        attempts: 1,
        first: { atMs: 7, error: 'y' },
        last: { atMs: 7, error: 'y' },
      },
    });
  });

  it('sends a failing batch again instead, when the session cannot start over', function () {
    const w = new DeliveryWindow('0', OPTIONS, { canRestart: false });
    w.setMaxAttempts(1);
    drain(w);
    w.readDone(evs(1, 16), '16');
    const [b0] = sent(drain(w));
    expect(w.failed(b0!.seq).do).to.equal('retry');
    expect(w.resend(b0!.seq)).to.equal(b0);
  });

  // Breaking change it catches: a new session starting over with whole batches, or applying a
  // hint whose pointer no longer holds.
  it('goes on narrowing from a hint at the start of the stream, if the pointer is still there', function () {
    const hint: NarrowHint = {
      kind: 'stream',
      from: '0',
      upTo: '8',
      attempts: 3,
      first: { atMs: 1, error: 'a' },
      last: { atMs: 3, error: 'c' },
    };
    const w = new DeliveryWindow('0', OPTIONS, { narrow: hint });
    w.setMaxAttempts(3);
    expect(w.next()).to.deep.equal({ do: 'read', after: '0' });
    w.readDone(evs(1, 12), '12');
    const p = one(w);
    expect(ids(p)).to.deep.equal(['1', '2', '3', '4']);
    expect(w.narrowing).to.equal(true);
    const outcomes = failUntil(w, p, 1);
    expect(outcomes[0]?.do).to.equal('narrow');

    const moved = new DeliveryWindow('5', OPTIONS, { narrow: hint });
    moved.setMaxAttempts(3);
    drain(moved);
    moved.readDone(evs(6, 12), '12');
    expect(ids(sent(drain(moved))[0]!)).to.deep.equal(['6', '7', '8', '9', '10', '11', '12']);
    expect(moved.narrowing).to.equal(false);
  });

  it('narrows within what it holds when new events arrive behind the suspects', function () {
    const w = parkingWindow('0', 1);
    w.offer(evs(1, 4), '4');
    const b = one(w);
    w.offer(evs(5, 6), '6');
    expect(w.failed(b.seq).do).to.equal('narrow');
    const p1 = one(w);
    expect(ids(p1)).to.deep.equal(['1', '2']);
    ack(w, p1);
    const p2 = one(w);
    expect(ids(p2)).to.deep.equal(['3']);
    const park = w.failed(p2.seq);
    expect(park.do).to.equal('park');
    w.parked(p2.seq);
    expect(sent(drain(w)).map(ids)).to.deep.equal([['4', '5', '6']]);
  });

  describe('replays', function () {
    const replay = (id: number): Delivery => ({
      event: { ...ev(id).event, replayed: true },
      bytes: 100,
    });

    it('reads and sends the events to replay first, in batches that move no pointer', function () {
      const w = new DeliveryWindow('20', OPTIONS, { replays: true });
      expect(w.next()).to.deep.equal({ do: 'readReplays', after: '0' });
      expect(w.next(), 'one read at a time').to.equal(null);
      w.replaysRead([replay(3), replay(7)], '7', false);
      const steps = drain(w);
      const r0 = sent(steps)[0]!;
      expect(r0).to.include({ seq: 0, replay: true });
      expect(ids(r0)).to.deep.equal(['3', '7']);
      expect(r0.items[0]!.event).to.include({ replayed: true });
      expect(steps[1]).to.deep.equal({ do: 'readReplays', after: '7' });
      expect(steps).to.have.length(2);
      w.replaysRead([], '7', true);
      expect(w.next(), 'then the stream').to.deep.equal({ do: 'read', after: '20' });
      w.readDone(evs(21, 22), '22');
      const s1 = one(w);
      expect(s1).to.include({ seq: 1, replay: false });
      w.acked(s1.seq);
      expect(w.pointerMove(), 'the unacknowledged replay holds no pointer back').to.deep.equal({
        to: '22',
        skipOnly: false,
      });
      w.acked(r0.seq);
      expect(w.inFlight).to.equal(1);
      w.pointerStored('22');
      expect(w.inFlight).to.equal(0);
    });

    it('narrows failing replays and parks the failing one again', function () {
      const w = new DeliveryWindow('20', OPTIONS, { replays: true });
      w.setMaxAttempts(1);
      drain(w);
      w.replaysRead([replay(3), replay(7), replay(9)], '9', true);
      const first = drain(w);
      expect(first[1], 'all replays read: the stream is read meanwhile').to.deep.equal({
        do: 'read',
        after: '20',
      });
      const r = sent(first)[0]!;
      expect(w.failed(r.seq).do).to.equal('narrow');
      const p1 = one(w);
      expect([p1.seq, p1.replay, ...ids(p1)]).to.deep.equal([0, true, '3', '7']);
      expect(w.failed(p1.seq).do).to.equal('narrow');
      const p2 = one(w);
      expect(ids(p2)).to.deep.equal(['3']);
      ack(w, p2);
      const p3 = one(w);
      expect(ids(p3)).to.deep.equal(['7']);
      const park = w.failed(p3.seq);
      expect(park.do).to.equal('park');
      w.parked(p3.seq);
      expect(sent(drain(w)).map((b) => [b.seq, ...ids(b)])).to.deep.equal([[p3.seq, '9']]);
    });
  });
});
