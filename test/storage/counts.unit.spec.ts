/**
 * TableCounts: a table counted quickly is counted at every call; one slow to count is served
 * from the last count with its age, and counted again in the background once that count is old
 * enough, one count at a time.
 */
import { expect } from 'chai';
import {
  KEEP_FROM_ROWS,
  MIN_REFRESH_MS,
  SLOW_COUNT_MS,
  TableCounts,
} from '../../src/storage/counts';

/** IDs spanning enough for a slow count to be kept. */
const BIG = KEEP_FROM_ROWS;

/** A table whose count takes `tookMs` on a clock the test moves. */
class FakeTable {
  clock = 1_000_000;
  rows = 0;
  tookMs = 1;
  counts = 0;
  fail = false;
  private pending: (() => void)[] = [];
  /** Background counts wait until release() when held. */
  hold = false;

  readonly count = async (): Promise<number> => {
    this.counts++;
    if (this.hold) await new Promise<void>((resolve) => this.pending.push(resolve));
    this.clock += this.tookMs;
    if (this.fail) throw new Error('the database is away');
    return this.rows;
  };

  release(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TableCounts', () => {
  it('counts a table that is quick to count at every call: exact, age 0', async () => {
    const t = new FakeTable();
    const counts = new TableCounts(() => t.clock);
    t.tookMs = SLOW_COUNT_MS;
    for (const rows of [5, 7, 7, 2]) {
      t.rows = rows;
      expect(await counts.get('evt_queue', BIG, t.count)).to.deep.equal({ count: rows, ageMs: 0 });
    }
    expect(t.counts).to.equal(4);
  });

  it('keeps a slow count, says its age, and counts again in the background once it is old', async () => {
    const t = new FakeTable();
    const counts = new TableCounts(() => t.clock);
    t.tookMs = 250;
    t.rows = 1_000_000;
    // The first call has nothing kept: it waits for the count.
    expect(await counts.get('evt_queue', BIG, t.count)).to.deep.equal({
      count: 1_000_000,
      ageMs: 0,
    });
    t.rows = 1_000_100;
    t.clock += 1_000;
    expect(await counts.get('evt_queue', BIG, t.count)).to.deep.equal({
      count: 1_000_000,
      ageMs: 1_250,
    });
    expect(t.counts, 'no count while the kept one is young').to.equal(1);

    // Old enough (at least MIN_REFRESH_MS, and ten times what counting took): one background
    // count, however many calls come meanwhile, each served the kept figure.
    t.clock += MIN_REFRESH_MS;
    t.hold = true;
    const during = [
      await counts.get('evt_queue', BIG, t.count),
      await counts.get('evt_queue', BIG, t.count),
    ];
    expect(during.map((c) => c.count)).to.deep.equal([1_000_000, 1_000_000]);
    expect(t.counts, 'one background count').to.equal(2);
    t.release();
    await settle();
    const after = await counts.get('evt_queue', BIG, t.count);
    expect(after.count).to.equal(1_000_100);
    expect(after.ageMs).to.equal(250);
  });

  it('waits ten times what counting took before it counts again', async () => {
    const t = new FakeTable();
    const counts = new TableCounts(() => t.clock);
    t.tookMs = 2_000; // a very big table: counting again at most every 20 s
    await counts.get('evt_queue', BIG, t.count);
    t.clock += MIN_REFRESH_MS + 1_000;
    await counts.get('evt_queue', BIG, t.count);
    expect(t.counts).to.equal(1);
    t.clock += 20_000;
    await counts.get('evt_queue', BIG, t.count);
    expect(t.counts).to.equal(2);
  });

  it('keeps the old figure when a background count fails, and tries again at the next call', async () => {
    const t = new FakeTable();
    const counts = new TableCounts(() => t.clock);
    t.tookMs = 100;
    t.rows = 50_000;
    await counts.get('evt_queue', BIG, t.count);
    t.clock += MIN_REFRESH_MS;
    t.fail = true;
    expect((await counts.get('evt_queue', BIG, t.count)).count).to.equal(50_000);
    await settle();
    const kept = await counts.get('evt_queue', BIG, t.count);
    expect(kept.count).to.equal(50_000);
    expect(kept.ageMs, 'its age grows').to.be.above(MIN_REFRESH_MS);
    expect(t.counts, 'tried again').to.equal(3);
    t.fail = false;
    t.rows = 50_001;
    await settle();
    expect(
      (await counts.get('evt_queue', BIG, t.count)).count,
      'the kept one while counting',
    ).to.equal(50_000);
    await settle();
    expect((await counts.get('evt_queue', BIG, t.count)).count).to.equal(50_001);
  });

  it('counts a small table at every call, however slow counting is', async () => {
    const t = new FakeTable();
    const counts = new TableCounts(() => t.clock);
    t.tookMs = 300; // a busy pool, a pause: a slow moment of a small table
    for (const rows of [10, 11, 12]) {
      t.rows = rows;
      expect(await counts.get('evt_queue', KEEP_FROM_ROWS - 1, t.count)).to.deep.equal({
        count: rows,
        ageMs: 0,
      });
    }
    // Grown past the bound: the last (slow) count is kept from then on, with its age.
    t.rows = 200_000;
    const kept = await counts.get('evt_queue', 200_000, t.count);
    expect(kept).to.deep.equal({ count: 12, ageMs: 300 });
    t.clock += MIN_REFRESH_MS;
    await counts.get('evt_queue', 200_000, t.count);
    await settle();
    expect(await counts.get('evt_queue', 200_001, t.count)).to.deep.equal({
      count: 200_000,
      ageMs: 300,
    });
    expect(t.counts).to.equal(4);
  });

  it('rejects when a count made for the call fails (nothing kept yet)', async () => {
    const t = new FakeTable();
    t.fail = true;
    const counts = new TableCounts(() => t.clock);
    let error: unknown;
    await counts.get('evt_queue', BIG, t.count).catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal('the database is away');
  });

  it('keeps each table apart', async () => {
    const t = new FakeTable();
    const counts = new TableCounts(() => t.clock);
    t.rows = 3;
    await counts.get('a', BIG, t.count);
    t.rows = 4;
    expect((await counts.get('b', BIG, t.count)).count).to.equal(4);
    t.tookMs = 500;
    t.rows = 9;
    expect((await counts.get('a', BIG, t.count)).count).to.equal(9);
    t.rows = 10;
    expect((await counts.get('a', BIG, t.count)).count, 'a is slow now: kept').to.equal(9);
    t.tookMs = 1;
    expect((await counts.get('b', BIG, t.count)).count, 'b counted again').to.equal(10);
  });
});
