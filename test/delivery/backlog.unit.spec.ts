/**
 * Backlog on its own: an active table and a warehouse in memory, with IDs that were never used
 * (rollbacks) next to IDs the discarder deleted, and a discarder that can strike between any two
 * reads. Whatever the limits and the `want` filter, a consumer reading through ChunkReader gets
 * every event after its position exactly once, in ID order, across the seam.
 */
import { expect } from 'chai';
import { cmpIds, type EventId } from '../../src/common/ids';
import type { Logger } from '../../src/common/log';
import { Backlog, type ActiveSource, type Warehouse } from '../../src/delivery/backlog';
import type { ChunkLimits } from '../../src/delivery/limits';
import { ChunkReader } from '../../src/delivery/reader';
import { StreamCounters } from '../../src/storage/counters';
import type { ReadQuery, StoredEvent } from '../../src/storage/store';

const event = (id: number): StoredEvent => ({
  id: String(id),
  type: id % 3 === 0 ? 'THIRD' : 'OTHER',
  data: JSON.stringify({ id }),
  ts: '2026-01-01T00:00:00Z',
});

const select = (rows: readonly StoredEvent[], q: ReadQuery): StoredEvent[] =>
  rows
    .filter((r) => cmpIds(r.id, q.after) > 0 && cmpIds(r.id, q.upTo) <= 0)
    .filter((r) => q.want === null || q.want.includes(r.type))
    .slice(0, q.limit);

/** The active table: events, the lowest deleted first, as the discarder does. */
class FakeActive implements ActiveSource {
  readonly eventTable = 'evt_queue';
  rows: StoredEvent[];
  reads = 0;
  oldestQueries = 0;
  /** Run before each read, and after it has taken its rows: a discarder striking between two statements. */
  beforeRead: (() => void) | null = null;
  afterRead: (() => void) | null = null;

  constructor(
    events: readonly StoredEvent[],
    readonly horizon: EventId,
  ) {
    this.rows = [...events];
  }

  /** Deletes every event up to `id`. */
  deleteUpTo(id: number): void {
    this.rows = this.rows.filter((r) => Number(r.id) > id);
  }

  horizonAbove(): Promise<EventId> {
    return Promise.resolve(this.horizon);
  }

  readEvents(q: ReadQuery): Promise<StoredEvent[]> {
    this.reads++;
    this.beforeRead?.();
    const rows = select(this.rows, q);
    this.afterRead?.();
    return Promise.resolve(rows);
  }

  oldestEventId(): Promise<EventId> {
    this.oldestQueries++;
    return Promise.resolve(this.rows[0]?.id ?? '0');
  }
}

class FakeWarehouse implements Warehouse {
  readonly table = 'evt_history';
  reads = 0;
  readonly store = {
    readEvents: (q: ReadQuery): Promise<StoredEvent[]> => {
      this.reads++;
      expect(q.table).to.equal(this.table);
      return Promise.resolve(select(this.rows, q));
    },
  };

  constructor(readonly rows: readonly StoredEvent[]) {}
}

/** A logger keeping its lines. */
function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (m: string) => lines.push(`${level} ${m}`);
  return {
    lines,
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  };
}

const limits = (maxEvents: number, maxBytes = 1_000_000): ChunkLimits => ({
  maxEvents,
  maxBytes,
  version: '1.1',
});

/** Events 1..60, except IDs never used: 5, 17 to 19, 40, 41. */
const USED = Array.from({ length: 60 }, (_, i) => i + 1).filter(
  (id) => ![5, 17, 18, 19, 40, 41].includes(id),
);
const ALL = USED.map(event);

/** Everything a consumer at `after` reads by repeated chunks, until the horizon. */
async function drain(
  reader: ChunkReader,
  after: EventId,
  want: string[] | null,
  chunk: ChunkLimits,
): Promise<string[]> {
  const got: string[] = [];
  let from = after;
  for (let round = 0; round < 1000; round++) {
    const c = await reader.next(from, want, chunk);
    got.push(...c.events.map((e) => e.id));
    if (c.complete) return got;
    from = c.events[c.events.length - 1]!.id;
  }
  throw new Error('never complete');
}

const expected = (after: number, want: string[] | null): string[] =>
  ALL.filter((e) => Number(e.id) > after && (want === null || want.includes(e.type))).map(
    (e) => e.id,
  );

describe('Backlog: replay from the warehouse', function () {
  it('reads the warehouse below the oldest active event, then the active table: each event once, in order', async function () {
    for (const deletedUpTo of [16, 19, 20, 39, 41, 42]) {
      for (const after of [0, 3, 16, 17, 20, 39]) {
        for (const want of [null, ['THIRD'], ['NONE']]) {
          for (const size of [1, 2, 3, 7, 1000]) {
            const active = new FakeActive(ALL, '60');
            active.deleteUpTo(deletedUpTo);
            // The archiver has everything up to 50; what was deleted is all there.
            const warehouse = new FakeWarehouse(ALL.filter((e) => Number(e.id) <= 50));
            const backlog = new Backlog(
              active,
              () => Promise.resolve(warehouse),
              recordingLog(),
              new StreamCounters(),
            );
            const reader = new ChunkReader(backlog.forConsumer('u:C'));
            const got = await drain(reader, String(after), want, limits(size));
            const what = `deleted ≤ ${deletedUpTo}, after ${after}, want ${String(want)}, chunks of ${size}`;
            expect(got, what).to.deep.equal(expected(after, want));
          }
        }
      }
    }
  });

  it('asks nothing more than the active table when nothing was deleted after the position', async function () {
    const active = new FakeActive(ALL, '60');
    active.deleteUpTo(20);
    let opened = 0;
    const backlog = new Backlog(
      active,
      () => {
        opened++;
        return Promise.resolve(new FakeWarehouse(ALL));
      },
      recordingLog(),
      new StreamCounters(),
    );
    const reader = new ChunkReader(backlog.forConsumer('u:C'));
    expect(await drain(reader, '20', null, limits(10))).to.deep.equal(expected(20, null));
    expect(active.oldestQueries, 'each read started at the next ID').to.equal(0);
    expect(opened).to.equal(0);
  });

  it('goes to the warehouse directly below the oldest event it has seen, and counts what it replays', async function () {
    // No unused IDs in the active part (an active read that does not start at the next ID asks
    // for the oldest event, to be sure).
    const upTo39 = ALL.filter((e) => Number(e.id) <= 39);
    const active = new FakeActive(upTo39, '39');
    active.deleteUpTo(30);
    const warehouse = new FakeWarehouse(ALL);
    const counters = new StreamCounters();
    const log = recordingLog();
    const backlog = new Backlog(active, () => Promise.resolve(warehouse), log, counters);
    const reader = new ChunkReader(backlog.forConsumer('u:C'));
    expect(await drain(reader, '0', null, limits(5))).to.deep.equal(upTo39.map((e) => e.id));
    // The first read found the active table behind; the other warehouse chunks did not ask it.
    expect(active.oldestQueries).to.equal(1);
    expect(active.reads).to.equal(1 + 2);
    expect(counters.consumer('u:C').fromWarehouse).to.equal(expected(0, null).indexOf('31'));
    expect(counters.consumer('u:C').behindRetention).to.equal(0);
    expect(log.lines.filter((l) => l.includes('replaying'))).to.have.length(1);
    expect(log.lines.filter((l) => l.startsWith('warn'))).to.deep.equal([]);
  });

  it('fills in what a discarder deletes past the position while it reads', async function () {
    // A consumer the discarder ignores as stale: deletion runs past its pointer, just before a
    // read of the active table or between it and the question of its oldest event.
    for (const [size, when] of [1, 4, 1000].flatMap((n) => [
      [n, 'before'] as const,
      [n, 'after'] as const,
    ])) {
      const active = new FakeActive(ALL, '60');
      const warehouse = new FakeWarehouse(ALL);
      let strikes = 0;
      const strike = (): void => {
        if (strikes < 3) active.deleteUpTo(10 + 15 * strikes++);
      };
      if (when === 'before') active.beforeRead = strike;
      else active.afterRead = strike;
      const backlog = new Backlog(
        active,
        () => Promise.resolve(warehouse),
        recordingLog(),
        new StreamCounters(),
      );
      const got = await drain(new ChunkReader(backlog.forConsumer('u:C')), '0', null, limits(size));
      expect(got, `chunks of ${size}, deleting ${when} reads`).to.deep.equal(expected(0, null));
    }
  });

  it('without a warehouse: goes on at the oldest event and reports the jump once per view', async function () {
    const active = new FakeActive(ALL, '60');
    active.deleteUpTo(30);
    const counters = new StreamCounters();
    const log = recordingLog();
    const backlog = new Backlog(active, null, log, counters);
    const session = backlog.forConsumer('u:C');
    const reader = new ChunkReader(session);
    expect(await drain(reader, '10', null, limits(4))).to.deep.equal(expected(30, null));
    expect(await drain(reader, '10', null, limits(4))).to.deep.equal(expected(30, null));
    const warnings = log.lines.filter((l) => l.startsWith('warn'));
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include('u:C: reads after event 10, but evt_queue starts at event 31');
    expect(warnings[0]).to.include('events 11 to 30');
    expect(counters.consumer('u:C').behindRetention).to.equal(1);
    // A new session reports it again; a consumer reading on from the oldest event does not.
    await drain(new ChunkReader(backlog.forConsumer('u:C')), '10', null, limits(4));
    await drain(new ChunkReader(backlog.forConsumer('u:D')), '30', null, limits(4));
    expect(counters.consumer('u:C').behindRetention).to.equal(2);
    expect(counters.consumer('u:D').behindRetention).to.equal(0);
  });

  it('a warehouse that fails to open fails the read, and is opened again on the next', async function () {
    const active = new FakeActive(ALL, '60');
    active.deleteUpTo(30);
    let attempts = 0;
    const backlog = new Backlog(
      active,
      () =>
        ++attempts === 1
          ? Promise.reject(new Error('warehouse down'))
          : Promise.resolve(new FakeWarehouse(ALL)),
      recordingLog(),
      new StreamCounters(),
    );
    const reader = new ChunkReader(backlog.forConsumer('u:C'));
    let failed: unknown = null;
    await reader.next('0', null, limits(10)).catch((e: unknown) => (failed = e));
    expect(String(failed)).to.include('warehouse down');
    expect(await drain(reader, '0', null, limits(10))).to.deep.equal(expected(0, null));
    expect(attempts).to.equal(2);
  });
});
