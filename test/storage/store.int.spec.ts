import { expect } from 'chai';
import { describeDatabases } from '../support/db';
import type { EventStore } from '../../src/storage/store';

describeDatabases('EventStore', (fx) => {
  let store: EventStore;

  before(async () => {
    store = await fx.openStore();
  });

  it('stores a batch in one transaction and returns increasing string IDs in order', async () => {
    const ids = await store.addEvents([
      { type: 'A', data: '{"n":1}' },
      { type: 'B', data: '{"n":2}' },
      { type: 'A', data: '"x"' },
    ]);
    expect(ids).to.have.length(3);
    ids.forEach((id) => expect(id).to.match(/^[1-9][0-9]*$/));
    expect(BigInt(ids[1]!) > BigInt(ids[0]!)).to.equal(true);
    const h = await store.horizon();
    const rows = await store.readEvents({ after: '0', upTo: h, limit: 10, want: null });
    expect(rows.map((r) => r.id)).to.deep.equal(ids);
    expect(rows.map((r) => r.data)).to.deep.equal(['{"n":1}', '{"n":2}', '"x"']);
    rows.forEach((r) => expect(r.ts).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/));
  });

  it('returns events in numeric ID order across digit lengths (9 < 10 < 100)', async () => {
    const ids = await store.addEvents(
      Array.from({ length: 120 }, (_v, i) => ({ type: 'N', data: String(i) })),
    );
    const rows = await store.readEvents({
      after: '0',
      upTo: await store.horizon(),
      limit: 1000,
      want: ['N'],
    });
    expect(rows.map((r) => r.id)).to.deep.equal(ids);
    const sorted = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(ids).to.deep.equal(sorted);
  });

  it('filters by type and honours want: [] as "none"', async () => {
    const h = await store.horizon();
    const onlyA = await store.readEvents({ after: '0', upTo: h, limit: 10, want: ['A'] });
    expect(onlyA.map((r) => r.type)).to.deep.equal(['A', 'A']);
    expect(await store.readEvents({ after: '0', upTo: h, limit: 10, want: [] })).to.deep.equal([]);
  });

  it('registers consumers idempotently and moves pointers forward only', async () => {
    expect(await store.registerConsumer('u:C1')).to.equal(true);
    expect(await store.registerConsumer('u:C1')).to.equal(false);
    expect(await store.consumerPointer('u:C1')).to.equal('0');
    expect(await store.consumerPointer('u:nobody')).to.equal(null);
    expect(await store.advanceConsumer('u:C1', '3')).to.equal(true);
    expect(await store.advanceConsumer('u:C1', '2')).to.equal(false);
    expect(await store.consumerPointer('u:C1')).to.equal('3');
  });
});

describeDatabases('EventStore admin and listing routines', (fx) => {
  let store: EventStore;
  let ids: string[];

  before(async () => {
    store = await fx.openStore();
    ids = await store.addEvents(
      ['A', 'B', 'A', 'C', 'A'].map((type, i) => ({ type, data: String(i) })),
    );
  });

  it('ranges, counts and lag', async () => {
    expect(await store.tableRange()).to.deep.equal({
      newest: ids[4],
      oldest: ids[0],
      count: 5,
      countAgeMs: 0,
    });
    expect(await store.countEvents()).to.equal(5);
    expect(await store.countRecentEvents('0', 60_000)).to.equal(5);
    expect(await store.countRecentEvents(ids[2]!, 60_000)).to.equal(2);
    const behind = await store.eventsBehind(ids[0]!, ids[4]!, 2);
    expect(behind).to.include({ events: 2, capped: true });
    expect(behind.oldestTs).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await store.eventsBehind(ids[2]!, ids[4]!, 10)).to.include({
      events: 2,
      capped: false,
    });
    expect(await store.eventsBehind(ids[4]!, ids[4]!, 10)).to.deep.equal({
      events: 0,
      capped: false,
      oldestTs: null,
    });
  });

  it('finds the newest event before a time, up to an ID', async () => {
    expect(await store.newestBefore('2999-01-01 00:00:00', ids[4]!)).to.equal(ids[4]);
    expect(await store.newestBefore('2999-01-01 00:00:00', ids[1]!)).to.equal(ids[1]);
    expect(await store.newestBefore('2000-01-01 00:00:00', ids[4]!)).to.equal('0');
  });

  it('lists events by ID range, types and order', async () => {
    const list = async (q: Omit<Parameters<EventStore['listEvents']>[0], 'limit'>, limit = 10) =>
      (await store.listEvents({ ...q, limit })).map((e) => e.id);
    expect(await list({})).to.deep.equal(ids);
    expect(await list({ fromId: ids[1], toId: ids[3] })).to.deep.equal(ids.slice(1, 4));
    expect(await list({ types: ['A'], descending: true }, 2)).to.deep.equal([ids[4], ids[2]]);
    expect(await list({ since: '2999-01-01 00:00:00' })).to.deep.equal([]);
    expect(await list({ until: '2999-01-01 00:00:00', types: ['B', 'C'] })).to.deep.equal([
      ids[1],
      ids[3],
    ]);
  });

  it('moves a consumer back, recording the move as pending, and drops it', async () => {
    await store.registerConsumer('u:M');
    await store.advanceConsumer('u:M', ids[3]!);
    expect(await store.moveConsumer('u:M', ids[1]!, 'root', 'replay')).to.equal(ids[3]);
    expect(await store.consumerPosition('u:M')).to.deep.include({ pointer: ids[1] });
    expect((await store.consumerPosition('u:M'))?.move).to.be.a('string');
    expect(await store.moveConsumer('u:NOBODY', ids[1]!, 'root', '')).to.equal(null);

    expect(await store.dropConsumer('u:M', 'root', 'gone')).to.equal(true);
    expect(await store.dropConsumer('u:M', 'root', 'again')).to.equal(false);
    expect(await store.consumerPointer('u:M')).to.equal(null);
    const moves = await store.listMoves('u:M', 10);
    expect(moves.map(({ at: _at, ...m }) => m)).to.deep.equal([
      { ident: 'u:M', action: 'drop', from: ids[1], by: 'root', reason: 'gone', applied: true },
      {
        ident: 'u:M',
        action: 'move',
        from: ids[3],
        to: ids[1],
        by: 'root',
        reason: 'replay',
        applied: true,
      },
    ]);
    expect(await store.listMoves(null, 1)).to.have.length(1);
  });

  it('stores events in the caller transaction, and none when it rolls back', async () => {
    const before = await store.countEvents();
    let drawn: string[] = [];
    await store.db
      .transaction(async (tx) => {
        drawn = await store.insertEventsInTx(tx, [
          { type: 'TX', data: '1' },
          { type: 'TX', data: '2' },
        ]);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect(drawn).to.have.length(2);
    expect(await store.countEvents()).to.equal(before);
    const kept = await store.db.transaction((tx) =>
      store.insertEventsInTx(tx, [{ type: 'TX', data: '3' }]),
    );
    const [row] = await store.listEvents({ fromId: kept[0], toId: kept[0], limit: 1 });
    expect(row).to.include({ type: 'TX', data: '3' });
  });
});
