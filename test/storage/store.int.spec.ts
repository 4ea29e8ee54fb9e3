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
