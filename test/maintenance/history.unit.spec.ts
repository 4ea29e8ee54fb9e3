/**
 * The archive's pure parts: FTN18 timestamps as warehouse TIMESTAMPs, and batches cut into
 * multi-row INSERTs by rows and by bytes.
 */
import { expect } from 'chai';
import { createDialect } from '../../src/storage/dialects';
import { sqlTimestamp } from '../../src/common/time';
import type { Event } from '../../src/common/event';
import { historyStatements } from '../../src/storage/history';

const events = (n: number, bytes = 10): Event[] =>
  Array.from({ length: n }, (_v, i) => ({
    id: String(1_000_000_000_000_000 + i),
    type: 'T',
    data: { s: 'x'.repeat(bytes) },
    ts: '2026-11-23T02:36:02Z',
  }));

describe('history rows', () => {
  it('stores FTN18 timestamps as the same UTC wall-clock time', () => {
    expect(sqlTimestamp('2026-11-23T02:36:02Z')).to.equal('2026-11-23 02:36:02');
    expect(sqlTimestamp('2026-11-23T02:36:02.999Z')).to.equal('2026-11-23 02:36:02');
    expect(sqlTimestamp('2026-11-23T04:36:02+02:00')).to.equal('2026-11-23 02:36:02');
    expect(() => sqlTimestamp('yesterday')).to.throw(/Not a timestamp/);
  });

  it('cuts a batch into INSERTs of at most 500 rows, IDs and data exact', () => {
    const d = createDialect('postgresql');
    const list = events(1000);
    const statements = historyStatements(d, 'evt_history', list);
    expect(statements.map((s) => s.ids.length)).to.deep.equal([500, 500]);
    expect(statements.flatMap((s) => s.ids)).to.deep.equal(list.map((e) => e.id));
    const first = statements[0]!;
    expect(first.sql).to.match(/^INSERT INTO "evt_history" \(id, type, data, ts\) VALUES /);
    expect(first.sql).to.match(/ON CONFLICT \(id\) DO NOTHING$/);
    expect(first.params.slice(0, 4)).to.deep.equal([
      list[0]!.id,
      'T',
      JSON.stringify(list[0]!.data),
      '2026-11-23 02:36:02',
    ]);
  });

  it('cuts by bytes too; a row bigger than the budget goes alone', () => {
    const d = createDialect('mysql');
    // 8 events of about 1 MiB: at most 3 fit in 4 MiB (half of MySQL's 8 MiB budget).
    const statements = historyStatements(d, 'evt_history', events(8, 1024 * 1024));
    expect(statements.map((s) => s.ids.length)).to.deep.equal([3, 3, 2]);
    const alone = historyStatements(d, 'evt_history', events(3, 100), 500, 50);
    expect(alone.map((s) => s.ids.length)).to.deep.equal([1, 1, 1]);
  });

  it('stores JSON null for events without data', () => {
    const d = createDialect('sqlite');
    const [s] = historyStatements(d, 'evt_history', [
      { id: '1', type: 'T', data: undefined, ts: '2026-01-01T00:00:00Z' },
    ]);
    expect(s?.params[2]).to.equal('null');
  });
});
