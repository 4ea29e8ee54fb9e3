/**
 * DeliveryLatency on its own, with a test clock: which commits it samples, which
 * acknowledgements it observes and how, and what it forgets.
 */
import { expect } from 'chai';
import {
  AGE_BUCKETS,
  Buckets,
  COMMIT_SAMPLE_KEEP_MS,
  COMMIT_SAMPLE_MS,
  DeliveryLatency,
  LATENCY_BUCKETS,
  type AckedEvent,
} from '../../src/storage/latency';

function setup() {
  const clock = { mono: 0, wall: Date.parse('2026-12-01T10:00:00Z') };
  const latency = new DeliveryLatency({ mono: () => clock.mono, wall: () => clock.wall });
  return { clock, latency };
}

const at = (id: string, ts = '2026-12-01T10:00:00Z'): AckedEvent => ({ id, ts });

/** The observations of a histogram as [upper bound, count] for the non-empty buckets. */
const filled = (b: Buckets | undefined): [number, number][] =>
  b
    ? b.bounds.flatMap((bound, i) =>
        b.counts[i] ? [[bound, b.counts[i]] as [number, number]] : [],
      )
    : [];

describe('DeliveryLatency', function () {
  it('puts an observation in the first bucket whose bound holds it, n at a time', function () {
    const b = new Buckets([1, 5]);
    b.observe(1);
    b.observe(3, 4);
    b.observe(9, 2);
    expect(b.counts).to.deep.equal([1, 4]);
    expect(b.count, 'the last two only in +Inf').to.equal(7);
    expect(b.sum).to.equal(1 + 12 + 18);
  });

  // Breaking change it catches: sampling every commit, or none after the first.
  it(`samples the first event of one commit per ${COMMIT_SAMPLE_MS} ms, and observes its acknowledgement`, function () {
    const { clock, latency } = setup();
    latency.committed('evt_queue', ['1', '2', '3']);
    clock.mono = 4;
    latency.committed('evt_queue', ['4']);
    clock.mono = 12;
    latency.committed('evt_queue', ['5', '6']);
    clock.mono = 40;
    latency.acknowledged(
      'alice:A',
      'evt_queue',
      ['1', '2', '3', '4', '5', '6'].map((id) => at(id)),
    );
    const a = latency.latency.get('alice:A')!;
    expect(a.count, 'events 1 and 5').to.equal(2);
    expect(a.sum).to.be.closeTo(0.04 + 0.028, 1e-9);
    expect(filled(a)).to.deep.equal([[0.05, 2]]);
    expect(a.bounds).to.equal(LATENCY_BUCKETS);
  });

  it('observes each consumer on its own, and keeps tables apart', function () {
    const { clock, latency } = setup();
    latency.committed('evt_queue', ['7']);
    clock.mono = 20;
    latency.committed('other', ['8']);
    clock.mono = 1_020;
    latency.acknowledged('alice:A', 'evt_queue', [at('7'), at('8')]);
    latency.acknowledged('bob:B', 'other', [at('7'), at('8')]);
    latency.acknowledged('bob:B', 'evt_queue', [at('8')]);
    expect(latency.latency.get('alice:A')!.sum).to.be.closeTo(1.02, 1e-9);
    expect(latency.latency.get('alice:A')!.count).to.equal(1);
    expect(latency.latency.get('bob:B')!.sum).to.be.closeTo(1.0, 1e-9);
    expect(latency.latency.get('bob:B')!.count).to.equal(1);
  });

  it('observes nothing for events committed elsewhere, and LIVE like any consumer', function () {
    const { clock, latency } = setup();
    latency.acknowledged('alice:A', 'evt_queue', [at('1')]);
    expect(latency.latency.get('alice:A')).to.equal(undefined);
    latency.committed('evt_queue', ['2']);
    clock.mono = 3;
    latency.acknowledged('LIVE', 'evt_queue', [at('2')]);
    expect(latency.latency.get('LIVE')!.count).to.equal(1);
  });

  // Breaking change it catches: keeping commit times for ever (memory grows with traffic).
  it(`forgets commit times after ${COMMIT_SAMPLE_KEEP_MS / 1000} s`, function () {
    const { clock, latency } = setup();
    latency.committed('evt_queue', ['1']);
    clock.mono = COMMIT_SAMPLE_KEEP_MS - 10;
    latency.committed('evt_queue', ['2']);
    clock.mono = COMMIT_SAMPLE_KEEP_MS + 1;
    latency.committed('evt_queue', ['3']);
    latency.acknowledged('alice:A', 'evt_queue', [at('1'), at('2'), at('3')]);
    const a = latency.latency.get('alice:A')!;
    expect(a.count, 'events 2 and 3; 1 is forgotten').to.equal(2);
  });

  // Breaking change it catches: one observation per run of equal times instead of one per event.
  it("observes every acknowledged event's age from its ts", function () {
    const { clock, latency } = setup();
    clock.wall = Date.parse('2026-12-01T10:00:30.250Z');
    latency.acknowledged('alice:A', 'evt_queue', [
      at('1', '2026-12-01T10:00:00Z'),
      at('2', '2026-12-01T10:00:00Z'),
      at('3', '2026-12-01T10:00:29Z'),
      at('4', '2026-12-01T10:00:29Z'),
      at('5', '2026-12-01T10:00:29Z'),
      at('6', '2026-12-01T10:00:31Z'),
      at('7', 'not a time'),
    ]);
    const age = latency.age.get('alice:A')!;
    expect(age.bounds).to.equal(AGE_BUCKETS);
    expect(age.count, 'all but the unreadable time').to.equal(6);
    expect(filled(age)).to.deep.equal([
      [1, 1],
      [2, 3],
      [60, 2],
    ]);
    expect(age.sum, 'a clock ahead of ours counts 0').to.be.closeTo(2 * 30.25 + 3 * 1.25, 1e-9);
  });
});
