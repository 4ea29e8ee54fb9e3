/**
 * The pointer writer of a reliable push session, on its own: a fake store whose writes the test
 * answers one by one, and a fake clock the test moves.
 */
import { expect } from 'chai';
import type { Clock } from '../../src/common/async';
import { Backoff } from '../../src/common/backoff';
import type { EventId } from '../../src/common/ids';
import { PointerWriter, type PointerStore } from '../../src/delivery/push/pointer-writer';
import type { PointerMove } from '../../src/delivery/push/window';
import type { PointerCondition } from '../../src/storage/dialects';

class FakeClock implements Clock {
  private t = 1_000;
  private timers: { at: number; fn: () => void }[] = [];

  now(): number {
    return this.t;
  }

  later(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time on by `ms`, running the timers due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

interface Write {
  ident: string;
  to: EventId;
  from: EventId;
  answer(ok: boolean): Promise<void>;
  fail(err: Error): Promise<void>;
}

/** A store whose writes wait for the test's answer. */
class FakeStore implements PointerStore {
  readonly writes: Write[] = [];

  storePointer(ident: string, to: EventId, condition: PointerCondition): Promise<boolean> {
    const from = condition.from;
    return new Promise<boolean>((resolve, reject) => {
      // Let the writer take the answer before the test goes on.
      const settled = (): Promise<void> => new Promise((r) => setImmediate(r));
      this.writes.push({
        ident,
        to,
        from,
        answer: (ok) => (resolve(ok), settled()),
        fail: (err) => (reject(err), settled()),
      });
    });
  }

  get last(): Write {
    return this.writes[this.writes.length - 1]!;
  }
}

const SKIP_STORE_MS = 1_000;
const RETRY_MIN_MS = 100;

function setup(start = '10') {
  const clock = new FakeClock();
  const store = new FakeStore();
  const seen = { stored: [] as EventId[], moved: 0, failed: [] as number[] };
  let target: PointerMove | null = null;
  const writer = new PointerWriter(
    store,
    'alice:C',
    start,
    {
      target: () => target,
      stored: (to) => seen.stored.push(to),
      movedElsewhere: () => seen.moved++,
      failed: (_err, delayMs) => seen.failed.push(delayMs),
    },
    { skipStoreMs: SKIP_STORE_MS, retry: new Backoff(RETRY_MIN_MS, 10_000) },
    clock,
  );
  const allow = (to: EventId, skipOnly = false): void => {
    target = { to, skipOnly };
    writer.kick();
  };
  return { clock, store, seen, writer, allow };
}

describe('PointerWriter', function () {
  it('writes an acknowledged move at once, from the pointer it stored last, one write at a time', async function () {
    const { store, seen, writer, allow } = setup('10');
    writer.kick();
    expect(store.writes, 'nothing to write').to.have.length(0);
    allow('20');
    expect(store.writes.map((w) => [w.ident, w.to, w.from])).to.deep.equal([
      ['alice:C', '20', '10'],
    ]);
    allow('30');
    expect(store.writes, 'one write at a time').to.have.length(1);
    await store.last.answer(true);
    expect(seen.stored).to.deep.equal(['20']);
    // What became due meanwhile goes next, compare-and-set from the new pointer.
    expect(store.writes.map((w) => [w.to, w.from])).to.deep.equal([
      ['20', '10'],
      ['30', '20'],
    ]);
    await store.last.answer(true);
    expect(writer.pointer).to.equal('30');
    allow('30');
    expect(store.writes, 'no write to where it is').to.have.length(2);
  });

  it('stops and ends the session when someone else moved the pointer', async function () {
    const { store, seen, writer, allow } = setup('10');
    allow('20');
    await store.last.answer(false);
    expect(seen.moved).to.equal(1);
    expect(seen.stored).to.deep.equal([]);
    expect(writer.pointer, 'not stored').to.equal('10');
    allow('30');
    expect(store.writes, 'no write after').to.have.length(1);
  });

  it('stores a move past skips only skipStoreMs after the last write started', async function () {
    const { clock, store, seen, allow } = setup('10');
    // The first one has no write before it: at once.
    allow('15', true);
    expect(store.writes).to.have.length(1);
    await store.last.answer(true);
    clock.advance(100);
    allow('18', true);
    allow('19', true);
    expect(store.writes, 'deferred').to.have.length(1);
    clock.advance(SKIP_STORE_MS - 101);
    expect(store.writes).to.have.length(1);
    clock.advance(1);
    expect(store.writes.map((w) => [w.to, w.from])).to.deep.equal([
      ['15', '10'],
      ['19', '15'],
    ]);
    await store.last.answer(true);
    expect(seen.stored).to.deep.equal(['15', '19']);
    expect(clock.pending, 'one timer, run once').to.equal(0);
  });

  it('writes an acknowledged move at once while a move past skips waits', async function () {
    const { clock, store, allow } = setup('10');
    allow('20');
    await store.last.answer(true);
    allow('25', true);
    expect(store.writes).to.have.length(1);
    allow('30', false);
    expect(store.writes.map((w) => w.to)).to.deep.equal(['20', '30']);
    await store.last.answer(true);
    clock.advance(SKIP_STORE_MS * 2);
    expect(store.writes, 'the deferred write was dropped').to.have.length(2);
  });

  it('retries a failed write after a growing delay, with what is due then, and nothing between', async function () {
    const { clock, store, seen, writer, allow } = setup('10');
    allow('20');
    await store.last.fail(new Error('down'));
    expect(seen.failed).to.have.length(1);
    const first = seen.failed[0]!;
    expect(first).to.be.within(RETRY_MIN_MS / 2, RETRY_MIN_MS);
    allow('30');
    expect(store.writes, 'no write before the retry').to.have.length(1);
    clock.advance(first - 1);
    expect(store.writes).to.have.length(1);
    clock.advance(1);
    expect(store.writes.map((w) => [w.to, w.from])).to.deep.equal([
      ['20', '10'],
      ['30', '10'],
    ]);
    await store.last.fail(new Error('still down'));
    expect(seen.failed[1]).to.be.within(RETRY_MIN_MS, 2 * RETRY_MIN_MS);
    clock.advance(seen.failed[1]!);
    await store.last.answer(true);
    expect(writer.pointer).to.equal('30');
    // A success starts the delays over.
    allow('40');
    await store.last.fail(new Error('down again'));
    expect(seen.failed[2]).to.be.within(RETRY_MIN_MS / 2, RETRY_MIN_MS);
  });

  it('drops a deferred move past skips when closed, timer and all', async function () {
    const { clock, store, allow, writer } = setup('10');
    allow('20');
    await store.last.answer(true);
    allow('25', true);
    expect(clock.pending).to.equal(1);
    writer.close();
    expect(clock.pending).to.equal(0);
    clock.advance(SKIP_STORE_MS * 2);
    expect(store.writes.map((w) => w.to)).to.deep.equal(['20']);
  });

  // Breaking change it catches: flush() that leaves a move past skips waiting for skipStoreMs,
  // or settled that ignores a write running or waiting to be retried.
  it('flushing (a draining session): writes a move past skips at once; settled once nothing is due', async function () {
    const { clock, store, seen, writer, allow } = setup('10');
    allow('15', true);
    await store.last.answer(true);
    allow('18', true);
    expect(store.writes, 'deferred').to.have.length(1);
    expect(writer.settled, 'a move is due').to.equal(false);
    writer.flush();
    expect(store.writes.map((w) => w.to)).to.deep.equal(['15', '18']);
    expect(clock.pending, 'the deferral timer is gone').to.equal(0);
    expect(writer.settled, 'a write runs').to.equal(false);
    await store.last.answer(true);
    expect(writer.settled).to.equal(true);
    allow('19', true);
    expect(
      store.writes.map((w) => w.to),
      'no deferral any more',
    ).to.deep.equal(['15', '18', '19']);
    await store.last.fail(new Error('down'));
    expect(seen.failed).to.have.length(1);
    expect(writer.settled, 'a retry waits').to.equal(false);
    clock.advance(10_000);
    await store.last.answer(true);
    expect(seen.stored).to.deep.equal(['15', '18', '19']);
    expect(writer.settled).to.equal(true);
  });

  it('writes nothing more once closed, and ignores the answer of a write running then', async function () {
    const { clock, store, seen, writer, allow } = setup('10');
    allow('20');
    await store.last.answer(true);
    allow('25', true);
    allow('30');
    writer.close();
    await store.last.answer(true);
    expect(seen.stored).to.deep.equal(['20']);
    allow('40');
    clock.advance(SKIP_STORE_MS * 2);
    expect(store.writes.map((w) => w.to)).to.deep.equal(['20', '30']);
    expect(seen.moved).to.equal(0);
  });
});
