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
  type KeptCount,
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

  /** The kept counts, on this table's clock. */
  readonly kept = new TableCounts(() => this.clock);

  /** One look at this table's count, its IDs spanning `span`. */
  look(span = BIG, table = 'evt_queue'): Promise<KeptCount> {
    return this.kept.get(table, span, this.count);
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TableCounts', () => {
  it('counts a table that is quick to count at every call: exact, age 0', async () => {
    const t = new FakeTable();
    t.tookMs = SLOW_COUNT_MS;
    for (const rows of [5, 7, 7, 2]) {
      t.rows = rows;
      expect(await t.look()).to.deep.equal({ count: rows, ageMs: 0 });
    }
    expect(t.counts).to.equal(4);
  });

  it('keeps a slow count, says its age, and counts again in the background once it is old', async () => {
    const t = new FakeTable();
    t.tookMs = 250;
    t.rows = 1_000_000;
    // The first call has nothing kept: it waits for the count.
    expect(await t.look()).to.deep.equal({
      count: 1_000_000,
      ageMs: 0,
    });
    t.rows = 1_000_100;
    t.clock += 1_000;
    expect(await t.look()).to.deep.equal({
      count: 1_000_000,
      ageMs: 1_250,
    });
    expect(t.counts, 'no count while the kept one is young').to.equal(1);

    // Old enough (at least MIN_REFRESH_MS, and ten times what counting took): one background
    // count, however many calls come meanwhile, each served the kept figure.
    t.clock += MIN_REFRESH_MS;
    t.hold = true;
    const during = [await t.look(), await t.look()];
    expect(during.map((c) => c.count)).to.deep.equal([1_000_000, 1_000_000]);
    expect(t.counts, 'one background count').to.equal(2);
    t.release();
    await settle();
    const after = await t.look();
    expect(after.count).to.equal(1_000_100);
    expect(after.ageMs).to.equal(250);
  });

  it('waits ten times what counting took before it counts again', async () => {
    const t = new FakeTable();
    t.tookMs = 2_000; // a very big table: counting again at most every 20 s
    await t.look();
    t.clock += MIN_REFRESH_MS + 1_000;
    await t.look();
    expect(t.counts).to.equal(1);
    t.clock += 20_000;
    await t.look();
    expect(t.counts).to.equal(2);
  });

  it('keeps the old figure when a background count fails, and tries again at the next call', async () => {
    const t = new FakeTable();
    t.tookMs = 100;
    t.rows = 50_000;
    await t.look();
    t.clock += MIN_REFRESH_MS;
    t.fail = true;
    expect((await t.look()).count).to.equal(50_000);
    await settle();
    const kept = await t.look();
    expect(kept.count).to.equal(50_000);
    expect(kept.ageMs, 'its age grows').to.be.above(MIN_REFRESH_MS);
    expect(t.counts, 'tried again').to.equal(3);
    t.fail = false;
    t.rows = 50_001;
    await settle();
    expect((await t.look()).count, 'the kept one while counting').to.equal(50_000);
    await settle();
    expect((await t.look()).count).to.equal(50_001);
  });

  it('counts a small table at every call, however slow counting is', async () => {
    const t = new FakeTable();
    t.tookMs = 300; // a busy pool, a pause: a slow moment of a small table
    for (const rows of [10, 11, 12]) {
      t.rows = rows;
      expect(await t.look(KEEP_FROM_ROWS - 1)).to.deep.equal({
        count: rows,
        ageMs: 0,
      });
    }
    // Grown past the bound: the last (slow) count is kept from then on, with its age.
    t.rows = 200_000;
    const kept = await t.look(200_000);
    expect(kept).to.deep.equal({ count: 12, ageMs: 300 });
    t.clock += MIN_REFRESH_MS;
    await t.look(200_000);
    await settle();
    expect(await t.look(200_001)).to.deep.equal({
      count: 200_000,
      ageMs: 300,
    });
    expect(t.counts).to.equal(4);
  });

  it('rejects when a count made for the call fails (nothing kept yet)', async () => {
    const t = new FakeTable();
    t.fail = true;
    let error: unknown;
    await t.look().catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal('the database is away');
  });

  it('keeps each table apart', async () => {
    const t = new FakeTable();
    t.rows = 3;
    await t.look(BIG, 'a');
    t.rows = 4;
    expect((await t.look(BIG, 'b')).count).to.equal(4);
    t.tookMs = 500;
    t.rows = 9;
    expect((await t.look(BIG, 'a')).count).to.equal(9);
    t.rows = 10;
    expect((await t.look(BIG, 'a')).count, 'a is slow now: kept').to.equal(9);
    t.tookMs = 1;
    expect((await t.look(BIG, 'b')).count, 'b counted again').to.equal(10);
  });
});
