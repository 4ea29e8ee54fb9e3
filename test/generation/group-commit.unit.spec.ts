/**
 * Group commit on its own: a fake sink whose inserts the test answers one by one, so which
 * events share an insert, and who gets which ID or error, is seen exactly.
 */
import { expect } from 'chai';
import type { EventId } from '../../src/common/ids';
import { GroupCommit, type EventSink } from '../../src/generation/GroupCommit';
import type { NewEvent } from '../../src/storage/dialects';

interface Insert {
  types: string[];
  table: string | undefined;
  commit(ids: EventId[]): Promise<void>;
  fail(err: Error): Promise<void>;
}

/** Lets the committer take an answer and start its next insert. */
const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

class FakeSink implements EventSink {
  readonly inserts: Insert[] = [];

  addEvents(events: readonly NewEvent[], table?: string): Promise<EventId[]> {
    return new Promise<EventId[]>((resolve, reject) => {
      this.inserts.push({
        types: events.map((e) => e.type),
        table,
        commit: (ids) => (resolve(ids), settled()),
        fail: (err) => (reject(err), settled()),
      });
    });
  }

  get last(): Insert {
    return this.inserts[this.inserts.length - 1]!;
  }
}

const event = (type: string): NewEvent => ({ type, data: '{}' });

/** An add, settled as its ID or `error: <message>` (handled at once, never unhandled). */
const settle = (p: Promise<EventId>): Promise<string> =>
  p.then(
    (id) => id,
    (e: Error) => `error: ${e.message}`,
  );

function setup(limits = { maxEvents: 100, maxBytes: 1_000_000 }, table?: string) {
  const sink = new FakeSink();
  const gc = new GroupCommit(() => Promise.resolve(sink), limits, table);
  const add = (type: string, bytes = 10): Promise<string> => settle(gc.add(event(type), bytes));
  return { sink, gc, add };
}

describe('GroupCommit', function () {
  it('commits a lone event at once, in an insert of its own', async function () {
    const { sink, add } = setup();
    const id = add('A');
    await settled();
    expect(sink.inserts.map((i) => i.types)).to.deep.equal([['A']]);
    await sink.last.commit(['7']);
    expect(await id).to.equal('7');
  });

  it('puts the events added while an insert commits into the next one, and hands out IDs in order', async function () {
    const { sink, gc, add } = setup();
    const a = add('A');
    await settled();
    const rest = ['B', 'C', 'D'].map((t) => add(t));
    await settled();
    expect(sink.inserts, 'B, C and D wait for A').to.have.length(1);
    expect(gc.waiting).to.equal(3);
    await sink.last.commit(['1']);
    expect(sink.inserts.map((i) => i.types)).to.deep.equal([['A'], ['B', 'C', 'D']]);
    expect(gc.waiting).to.equal(0);
    await sink.last.commit(['2', '3', '4']);
    expect(await Promise.all([a, ...rest])).to.deep.equal(['1', '2', '3', '4']);
  });

  it('answers no caller before its own insert committed', async function () {
    const { sink, add } = setup();
    let answered = 0;
    const a = add('A').then(() => answered++);
    await settled();
    const b = add('B').then(() => answered++);
    await settled();
    expect(answered).to.equal(0);
    await sink.last.commit(['1']);
    expect(answered).to.equal(1);
    await sink.last.commit(['2']);
    await Promise.all([a, b]);
    expect(answered).to.equal(2);
  });

  it('cuts batches by events and by bytes; an event over the byte limit goes alone', async function () {
    const { sink, add } = setup({ maxEvents: 2, maxBytes: 100 });
    const first = add('A');
    await settled();
    const rest = [
      add('B'),
      add('C'),
      add('D'),
      add('E', 60),
      add('F', 60),
      add('G', 500),
      add('H', 1),
    ];
    await settled();
    await sink.last.commit(['1']);
    const expected = [['B', 'C'], ['D', 'E'], ['F'], ['G'], ['H']];
    let id = 2;
    for (const types of expected) {
      expect(sink.last.types).to.deep.equal(types);
      await sink.last.commit(types.map(() => String(id++)));
    }
    expect(sink.inserts).to.have.length(1 + expected.length);
    expect(await Promise.all([first, ...rest])).to.deep.equal([
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
    ]);
  });

  // Breaking change it catches: a batch cut before it reaches maxBytes exactly (>= for >).
  it('fills a batch up to maxBytes exactly', async function () {
    const { sink, add } = setup({ maxEvents: 10, maxBytes: 100 });
    const first = add('A');
    await settled();
    const rest = [add('B', 40), add('C', 60), add('D', 1)];
    await settled();
    await sink.last.commit(['1']);
    expect(sink.last.types).to.deep.equal(['B', 'C']);
    await sink.last.commit(['2', '3']);
    expect(sink.last.types).to.deep.equal(['D']);
    await sink.last.commit(['4']);
    expect(await Promise.all([first, ...rest])).to.deep.equal(['1', '2', '3', '4']);
  });

  // Breaking change it catches: the committer not marked idle once its queue ran empty.
  it('starts a new insert for an event that comes after the queue ran empty', async function () {
    const { sink, add, gc } = setup();
    const first = add('A');
    await settled();
    await sink.last.commit(['1']);
    expect(await first).to.equal('1');
    expect(gc.waiting).to.equal(0);
    const later = add('B');
    await settled();
    expect(sink.inserts.map((i) => i.types)).to.deep.equal([['A'], ['B']]);
    await sink.last.commit(['2']);
    expect(await later).to.equal('2');
  });

  it('fails exactly the callers whose events the database refuses', async function () {
    const { sink, add } = setup();
    const a = add('A');
    await settled();
    const batch = ['B', 'BAD', 'C'].map((t) => add(t));
    await settled();
    await sink.last.commit(['1']);
    // The insert of B, BAD and C fails: each goes again alone, so one bad event does not fail
    // its neighbours.
    expect(sink.last.types).to.deep.equal(['B', 'BAD', 'C']);
    const later = add('D');
    await sink.last.fail(new Error('refused'));
    expect(sink.last.types).to.deep.equal(['B']);
    await sink.last.commit(['2']);
    expect(sink.last.types).to.deep.equal(['BAD']);
    await sink.last.fail(new Error('bad row'));
    expect(sink.last.types).to.deep.equal(['C']);
    await sink.last.commit(['3']);
    // The next batch is not touched by the failure.
    expect(sink.last.types).to.deep.equal(['D']);
    await sink.last.commit(['4']);
    expect(await Promise.all([a, ...batch, later])).to.deep.equal([
      '1',
      '2',
      'error: bad row',
      '3',
      '4',
    ]);
  });

  it('fails a lone event with its error, and goes on with the next', async function () {
    const { sink, add } = setup();
    const a = add('A');
    await settled();
    const b = add('B');
    await sink.last.fail(new Error('down'));
    expect(sink.inserts.map((i) => i.types)).to.deep.equal([['A'], ['B']]);
    await sink.last.commit(['5']);
    expect(await Promise.all([a, b])).to.deep.equal(['error: down', '5']);
  });

  it('fails the callers of a batch when the store cannot be had', async function () {
    let attempts = 0;
    const gc = new GroupCommit(() => (++attempts, Promise.reject(new Error('no store'))), {
      maxEvents: 10,
      maxBytes: 1_000,
    });
    const all = ['A', 'B'].map((t) => settle(gc.add(event(t), 10)));
    expect(await Promise.all(all)).to.deep.equal(['error: no store', 'error: no store']);
    expect(attempts).to.equal(2);
  });

  it('writes to the table it was made for', async function () {
    const { sink, add } = setup(undefined, 'evt_other');
    const a = add('A');
    await settled();
    expect(sink.last.table).to.equal('evt_other');
    await sink.last.commit(['1']);
    await a;
  });
});
