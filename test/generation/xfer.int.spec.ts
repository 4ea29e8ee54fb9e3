/**
 * DBGenFace.addXferEvent: the event is part of the caller's own futoin-database transaction.
 */
import { expect } from 'chai';
import type { L2Face, XferBuilder } from 'futoin-database';
import { AdvancedCCM } from 'futoin-invoker';
import { DBGenFace } from '../../src/generation/DBGenFace';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases, testLog } from '../support/db';
import { steps } from '../support/service';

describeDatabases('DBGenFace.addXferEvent', (fx) => {
  let store: EventStore;
  let ccm: AdvancedCCM;
  let db: L2Face;
  let face: DBGenFace;

  before(async () => {
    store = await fx.openStore();
    ccm = new AdvancedCCM();
    await steps((as) => {
      registerFutoinDb(as, ccm, 'evt', fx.config, testLog);
      // The face is only used for addXferEvent here, which never calls the endpoint.
      DBGenFace.register(as, ccm, 'xgen', 'secure+ws://127.0.0.1:9/', 'u:p');
    });
    db = ccm.iface<L2Face>('#db.evt');
    face = ccm.iface<DBGenFace>('xgen');
    await steps((as) => db.query(as, 'CREATE TABLE biz (name VARCHAR(32) NOT NULL PRIMARY KEY)'));
  });
  after(() => ccm?.close());

  const events = async () =>
    (
      await store.readEvents({ after: '0', upTo: await store.horizon(), limit: 1000, want: null })
    ).map((e) => ({
      type: e.type,
      data: JSON.parse(e.data) as unknown,
    }));

  const run = (build: (xfer: XferBuilder) => void) =>
    steps((as) => {
      const xfer = db.newXfer();
      build(xfer);
      xfer.execute(as);
    });

  it('exists once the transaction commits, with the business row', async () => {
    const data = { name: 'O\'Brien "quoted" \\ back\\slash', emoji: '🎉', n: [1, 2.5, null, true] };
    await run((xfer) => {
      xfer.insert('biz').set('name', 'first');
      face.addXferEvent(xfer, 'BIZ_CREATED', data);
    });
    expect(await events()).to.deep.equal([{ type: 'BIZ_CREATED', data }]);
  });

  it('does not exist when the transaction rolls back', async () => {
    const before = (await events()).length;
    let failed = '';
    await run((xfer) => {
      face.addXferEvent(xfer, 'BIZ_CREATED', { name: 'first' });
      xfer.insert('biz').set('name', 'first'); // duplicate key: the whole transaction rolls back
    }).catch((err: Error) => (failed = err.message));
    expect(failed).to.equal('Duplicate');
    expect(await events()).to.have.length(before);
  });

  it('throws before touching the transaction for an invalid type or data', () => {
    const xfer = db.newXfer();
    // The reference's error for a type, which applications may match.
    for (const type of ['lower', 'TOO_LONG_TYPE_NAME_X']) {
      expect(() => face.addXferEvent(xfer, type, {}), type).to.throw(
        Error,
        new RegExp(`^Invalid event type: ${type}$`),
      );
    }
    const attempts: Array<[string, unknown]> = [
      ['OK', undefined],
      ['OK', Infinity],
      ['OK', { big: 2 ** 60 }],
      ['OK', { f: () => 1 }],
      ['OK', 10n],
    ];
    for (const [type, data] of attempts) {
      expect(() => face.addXferEvent(xfer, type, data), `${type} ${String(data)}`).to.throw(
        'InvalidRequest',
      );
    }
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => face.addXferEvent(xfer, 'OK', cyclic)).to.throw('InvalidRequest');
    // Nothing was added: executing the empty transaction is a no-op.
    expect((xfer as unknown as { _query_list: unknown[] })._query_list).to.deep.equal([]);
  });

  it("refuses data that cannot fit futoin-database's 10,000-character query, with a clear error", () => {
    const xfer = db.newXfer();
    let error: (Error & { info?: string }) | undefined;
    try {
      face.addXferEvent(xfer, 'BIG', { s: 'x'.repeat(10_000) });
    } catch (err) {
      error = err as Error & { info?: string };
    }
    expect(error?.message).to.equal('InvalidRequest');
    expect(error?.info).to.match(/10000-character query limit/);
    // Just under the limit still works.
    return run((x) => face.addXferEvent(x, 'BIG', { s: 'y'.repeat(9_000) }));
  });

  it('writes to another event table when asked', async () => {
    await steps((as) =>
      db.query(
        as,
        fx.dialect === 'postgresql'
          ? 'CREATE TABLE other_queue (id BIGSERIAL PRIMARY KEY, type VARCHAR(16) NOT NULL, data JSON NOT NULL, ts TIMESTAMP NOT NULL)'
          : fx.dialect === 'mysql'
            ? 'CREATE TABLE other_queue (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, type VARCHAR(16) NOT NULL, data LONGTEXT NOT NULL, ts DATETIME NOT NULL)'
            : 'CREATE TABLE other_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, type VARCHAR(16) NOT NULL, data TEXT NOT NULL, ts TIMESTAMP NOT NULL)',
      ),
    );
    await run((xfer) => face.addXferEvent(xfer, 'ELSEWHERE', { a: 1 }, 'other_queue'));
    const rows = await store.readEvents({
      after: '0',
      upTo: await store.horizon('other_queue'),
      limit: 10,
      want: null,
      table: 'other_queue',
    });
    expect(rows.map((r) => r.type)).to.deep.equal(['ELSEWHERE']);
    expect(rows[0]!.ts).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});
