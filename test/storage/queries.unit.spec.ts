/**
 * The statements of the three dialects, without a database: each takes the parameters its
 * routine passes (the same number on every dialect), and the hot texts are built once per shape.
 */
import { expect } from 'chai';
import { createDialect } from '../../src/storage/dialects';
import {
  byShape,
  cacheShapes,
  MAX_SHAPES,
  type ConsumerSql,
  type EventSql,
  type ParkingSql,
} from '../../src/storage/queries';
import type { Dialect } from '../../src/storage/sql';

const DIALECTS: readonly Dialect[] = ['sqlite', 'postgresql', 'mysql'];

const marks = (text: string): number => text.split('?').length - 1;

/**
 * Each statement with the number of parameters its routine passes. PostgreSQL's insert takes one
 * more, last: the origin its notification carries (see SqlDialect.listen).
 */
const eventStatements = (e: EventSql, dialect: Dialect): [string, string, number][] => [
  ['insert(3)', e.insert(3), dialect === 'postgresql' ? 7 : 6],
  ['insertInTx(3)', e.insertInTx(3), 6],
  ['read(0, 10)', e.read(0, 10), 2],
  ['read(3, 10)', e.read(3, 10), 5],
  ['newest', e.newest, 0],
  ['oldest', e.oldest, 0],
  ['ages', e.ages(10), 2],
  ['agesOlderThan', e.agesOlderThan(10), 3],
  ['deleteUpTo(0)', e.deleteUpTo('evt_consumers', 0, 10), 1],
  ['deleteUpTo(2)', e.deleteUpTo('evt_consumers', 2, 10), 1 + 1 + 4],
  ['behind', e.behind(10), 2],
  ['newestBefore', e.newestBefore, 2],
  ['range', e.range, 0],
  ['count', e.count, 0],
  ['countRecent', e.countRecent, 2],
  [
    'list(none)',
    e.list({
      fromId: false,
      toId: false,
      types: 0,
      since: false,
      until: false,
      descending: false,
      limit: 5,
    }),
    0,
  ],
  [
    'list(all)',
    e.list({
      fromId: true,
      toId: true,
      types: 2,
      since: true,
      until: true,
      descending: true,
      limit: 5,
    }),
    6,
  ],
  ['copy(2)', e.copy(2), 8],
];

const consumerStatements = (c: ConsumerSql): [string, string, number][] => [
  ['register', c.register, 1],
  ['pointer', c.pointer, 1],
  ['position', c.position, 1],
  ['advance', c.advance, 3],
  ['advanceFrom', c.advanceFrom, 4],
  ['advanceMany(1)', c.advanceMany(1), 4],
  ['advanceMany(3)', c.advanceMany(3), 12],
  ['pointers(3)', c.pointers(3), 3],
  ['all', c.all, 0],
  ['allIdle', c.allIdle, 1],
  ['setPointer', c.setPointer, 2],
  ['remove', c.remove, 1],
  ['recordMove', c.recordMove, 9],
  ['movesApplied', c.movesApplied, 2],
  ['allMovesApplied', c.allMovesApplied, 1],
  ['listMoves(all)', c.listMoves(false, 5), 0],
  ['listMoves(one)', c.listMoves(true, 5), 1],
];

const parkingStatements = (p: ParkingSql): [string, string, number][] => [
  ['rule', p.rule, 1],
  ['rules', p.rules, 0],
  ['setRule', p.setRule, 2],
  ['bumpStreak', p.bumpStreak, 1],
  ['clearStreak', p.clearStreak, 1],
  ['removeRule', p.removeRule, 1],
  ['park', p.park, 10],
  ['pick(all)', p.pick(false, false), 1],
  ['pick(one)', p.pick(true, true), 2],
  ['replay(all)', p.replay(false), 3],
  ['replay(one)', p.replay(true), 4],
  ['skip(all)', p.skip(false), 3],
  ['skip(one)', p.skip(true), 4],
  ['replays', p.replays(10), 2],
  ['replayed(3)', p.replayed(3), 4],
  ['list(all)', p.list(false, false, 5), 0],
  ['list(one, unresolved)', p.list(true, true, 5), 1],
  ['counts', p.counts, 0],
];

describe('store statements', () => {
  for (const name of DIALECTS) {
    it(`${name}: every statement takes the parameters its routine passes`, () => {
      const q = createDialect(name).queries;
      for (const [what, text, params] of [
        ...eventStatements(q.events('evt_queue'), name),
        ...consumerStatements(q.consumers('evt_consumers')),
        ...parkingStatements(q.parking()),
      ]) {
        expect(marks(text), `${name} ${what}: ${text}`).to.equal(params);
      }
    });
  }

  it('names the tables it was built for, quoted as each dialect quotes', () => {
    expect(createDialect('sqlite').queries.events('my_events').count).to.contain('"my_events"');
    expect(createDialect('postgresql').queries.events('my_events').count).to.contain('"my_events"');
    expect(createDialect('mysql').queries.events('my_events').count).to.contain('`my_events`');
    const del = createDialect('mysql').queries.events('evt_queue').deleteUpTo('my_consumers', 0, 1);
    expect(del).to.contain('`my_consumers`');
  });

  it('builds the hot texts once per shape', () => {
    let built = 0;
    const raw = createDialect('postgresql').queries.events('evt_queue');
    const counted: EventSql = {
      ...raw,
      read: (types, limit) => {
        built++;
        return raw.read(types, limit);
      },
      insert: (rows) => {
        built++;
        return raw.insert(rows);
      },
    };
    const sql = cacheShapes(counted);
    expect(sql.read(2, 100)).to.equal(raw.read(2, 100));
    expect(sql.read(2, 100)).to.equal(sql.read(2, 100));
    expect(sql.insert(4)).to.equal(sql.insert(4));
    expect(built).to.equal(2);
    expect(sql.read(2, 50)).to.equal(raw.read(2, 50));
    expect(built).to.equal(3);
  });

  it('keeps at most MAX_SHAPES texts, and still builds the others right', () => {
    let built = 0;
    const text = byShape((a, b) => {
      built++;
      return `${a}:${b}`;
    });
    for (let i = 0; i < MAX_SHAPES + 10; i++) expect(text(1, i)).to.equal(`1:${i}`);
    built = 0;
    text(1, 0);
    text(1, MAX_SHAPES + 5);
    text(1, MAX_SHAPES + 5);
    expect(built, 'only those beyond the cap are built again').to.equal(2);
  });
});
