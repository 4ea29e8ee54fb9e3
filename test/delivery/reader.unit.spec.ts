/**
 * ChunkReader on its own: a fake event source in memory, so every fetch it makes is seen.
 */
import { expect } from 'chai';
import { ErrorCode } from '../../src/common/errors';
import type { EventId } from '../../src/common/ids';
import { eventBytes, FTN18_1_1_EVENT_ROOM, type ChunkLimits } from '../../src/delivery/limits';
import { ChunkReader, EventTooLarge, type EventSource } from '../../src/delivery/reader';
import type { ReadQuery, StoredEvent } from '../../src/storage/store';

/** A stored event of `bytes` bytes as eventBytes counts them. */
function row(id: number, bytes = 100, type = 'T'): StoredEvent {
  const e = { id: String(id), type, data: '', ts: '2024-01-01T00:00:00Z' };
  e.data = JSON.stringify('x'.repeat(Math.max(0, bytes - eventBytes(e) - 2)));
  expect(eventBytes(e)).to.equal(bytes);
  return e;
}

class FakeSource implements EventSource {
  readonly fetches: number[] = [];
  readonly horizons: [EventId, number][] = [];

  constructor(
    private readonly rows: StoredEvent[],
    private readonly horizon = rows[rows.length - 1]?.id ?? '0',
  ) {}

  async horizonAbove(after: EventId, slack: number): Promise<EventId> {
    this.horizons.push([after, slack]);
    return this.horizon;
  }

  async readEvents(q: ReadQuery): Promise<StoredEvent[]> {
    this.fetches.push(q.limit);
    return this.rows
      .filter((r) => BigInt(r.id) > BigInt(q.after) && BigInt(r.id) <= BigInt(q.upTo))
      .filter((r) => q.want === null || q.want.includes(r.type))
      .slice(0, q.limit);
  }
}

const rows = (from: number, to: number, bytes = 100): StoredEvent[] => {
  const out: StoredEvent[] = [];
  for (let id = from; id <= to; id++) out.push(row(id, bytes));
  return out;
};

const limits = (maxEvents: number, maxBytes: number, version = '1.1'): ChunkLimits => ({
  maxEvents,
  maxBytes,
  version,
});

const ids = (events: readonly StoredEvent[]): string[] => events.map((e) => e.id);

describe('ChunkReader', function () {
  it('stops at maxEvents, and says whether anything is left up to the horizon', async function () {
    const source = new FakeSource(rows(1, 10), '12');
    const reader = new ChunkReader(source);
    const a = await reader.next('0', null, limits(4, 1_000_000));
    expect(ids(a.events)).to.deep.equal(['1', '2', '3', '4']);
    expect(a).to.include({ complete: false, horizon: '12' });
    const b = await reader.next('4', null, limits(4, 1_000_000));
    expect(ids(b.events)).to.deep.equal(['5', '6', '7', '8']);
    expect(b.complete).to.equal(false);
    const c = await reader.next('8', null, limits(4, 1_000_000));
    expect(ids(c.events)).to.deep.equal(['9', '10']);
    expect(c).to.include({ complete: true, horizon: '12' });
  });

  it('stops before the event that would pass maxBytes', async function () {
    const reader = new ChunkReader(new FakeSource(rows(1, 10)));
    const chunk = await reader.next('0', null, limits(1000, 350));
    expect(ids(chunk.events)).to.deep.equal(['1', '2', '3']);
    expect(chunk.complete).to.equal(false);
    const exact = await new ChunkReader(new FakeSource(rows(1, 10))).next(
      '0',
      null,
      limits(1000, 300),
    );
    expect(ids(exact.events), 'up to the limit exactly').to.deep.equal(['1', '2', '3']);
  });

  it('asks for a horizon near `after` with maxEvents of slack, unless given one', async function () {
    const source = new FakeSource(rows(1, 10));
    const reader = new ChunkReader(source);
    await reader.next('3', null, limits(50, 1_000_000));
    expect(source.horizons).to.deep.equal([['3', 50]]);
    const chunk = await reader.next('3', null, limits(50, 1_000_000), '6');
    expect(source.horizons, 'not asked again').to.have.length(1);
    expect(ids(chunk.events)).to.deep.equal(['4', '5', '6']);
    expect(chunk).to.include({ complete: true, horizon: '6' });
  });

  it('reads only the types wanted', async function () {
    const all = [row(1, 100, 'A'), row(2, 100, 'B'), row(3, 100, 'A'), row(4, 100, 'C')];
    const chunk = await new ChunkReader(new FakeSource(all)).next('0', ['A', 'C'], limits(10, 1e6));
    expect(ids(chunk.events)).to.deep.equal(['1', '3', '4']);
    expect(chunk.complete).to.equal(true);
  });

  it('fetches again when its guess of the row size was too small, never returning less than fits', async function () {
    // 100-byte rows, guessed at 256 bytes: the first fetch asks for fewer rows than fit.
    const source = new FakeSource(rows(1, 2_000));
    const chunk = await new ChunkReader(source).next('0', null, limits(1000, 60_000));
    expect(chunk.events).to.have.length(600);
    expect(chunk.complete).to.equal(false);
    expect(source.fetches.length, 'more than one fetch').to.be.greaterThan(1);
    expect(source.fetches[0]).to.be.lessThan(600);
  });

  it('learns the row size, so large rows are not fetched by the thousand', async function () {
    const source = new FakeSource(rows(1, 300, 10_000));
    const reader = new ChunkReader(source);
    let after = '0';
    for (let i = 0; i < 10; i++) {
      const chunk = await reader.next(after, null, limits(1000, 64_000));
      expect(chunk.events).to.have.length(6);
      after = chunk.events[chunk.events.length - 1]!.id;
    }
    // Six rows fit; having learned their size, it asks for about that many.
    expect(source.fetches[source.fetches.length - 1]).to.be.within(6, 12);
  });

  it('refuses an event that alone is larger than one message carries', async function () {
    const big = row(3, 5_000);
    const source = new FakeSource([...rows(1, 2), big, ...rows(4, 5)]);
    const reader = new ChunkReader(source);
    const before = await reader.next('0', null, limits(100, 1_000, '1.0'));
    expect(ids(before.events), 'what comes before it').to.deep.equal(['1', '2']);
    expect(before.complete).to.equal(false);
    let err: unknown;
    try {
      await reader.next('2', null, limits(100, 1_000, '1.0'));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(EventTooLarge);
    const tooLarge = err as EventTooLarge;
    expect(tooLarge).to.include({ eventId: '3', bytes: 5_000, limit: 1_000, version: '1.0' });
    // FTN18 1.1 messages carry it: the caller should upgrade.
    expect(tooLarge.code).to.equal(ErrorCode.NotSupportedVersion);
  });

  it('says when no FTN18 message carries an event, or the caller speaks 1.1 already', async function () {
    const huge = row(1, FTN18_1_1_EVENT_ROOM + 1);
    const big = row(1, 5_000);
    const cases: [StoredEvent, ChunkLimits][] = [
      [huge, limits(100, FTN18_1_1_EVENT_ROOM, '1.1')],
      [huge, limits(100, 60_000, '1.0')],
      [big, limits(100, 1_000, '1.1')],
    ];
    for (const [event, lim] of cases) {
      let err: unknown;
      try {
        await new ChunkReader(new FakeSource([event])).next('0', null, lim);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(EventTooLarge);
      expect((err as EventTooLarge).code, `${event.id}: ${JSON.stringify(lim)}`).to.equal(
        ErrorCode.InternalError,
      );
    }
  });

  it('tells the operator what to do, in words', function () {
    const upgrade = new EventTooLarge('7', 5_000, 1_000, '1.0');
    expect(upgrade.name).to.equal('EventTooLarge');
    expect(upgrade.info).to.equal(
      'Event 7 takes 5000 bytes, more than one message of this channel carries (1000);' +
        ' use FTN18 1.1 (8 MiB messages)',
    );
    const none = new EventTooLarge('8', FTN18_1_1_EVENT_ROOM + 1, 1_000, '1.0');
    expect(none.info).to.equal(
      `Event 8 takes ${FTN18_1_1_EVENT_ROOM + 1} bytes, more than one message of this channel` +
        ` carries (1000); no FTN18 message carries it (8 MiB at most)`,
    );
    // Exactly what an FTN18 1.1 message carries: upgrading helps.
    expect(new EventTooLarge('9', FTN18_1_1_EVENT_ROOM, 1_000, '1.0').code).to.equal(
      ErrorCode.NotSupportedVersion,
    );
  });

  // Breaking changes it catches: the room left counted up instead of down, in events or bytes.
  it('sizes each fetch by the room left, in events and in bytes', async function () {
    // 100-byte rows, a first guess of 256 bytes a row: 1000 bytes is 5 rows at first (with a
    // quarter more); after them the guess is 192, so the 500 bytes left are 4 more rows; then
    // one at a time for the last 100 bytes and for the row that no longer fits.
    const bytes = new FakeSource(rows(1, 50));
    const chunk = await new ChunkReader(bytes).next('0', null, limits(100, 1_000));
    expect(chunk.events).to.have.length(10);
    expect(bytes.fetches).to.deep.equal([5, 4, 1, 1]);
    // By events: 5 rows fit the guess, 3 are left of 8.
    const count = new FakeSource(rows(1, 50));
    const byCount = await new ChunkReader(count).next('0', null, limits(8, 1_000));
    expect(byCount.events).to.have.length(8);
    expect(count.fetches).to.deep.equal([5, 3]);
  });
});
