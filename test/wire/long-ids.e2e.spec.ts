/**
 * IDs of 18 digits through every path besides polling (test/wire/interop.e2e.spec.ts): push to a
 * reliable consumer and its stored pointer, the archiver's copy and pointer, and the discarder's
 * batch planning. Such IDs have no exact double: any detour through a JS number (a driver
 * returning numbers, `Number(id)`, a `+ 1` on a number) changes them, and the equality checks
 * below fail. Breaking changes tried: comparing IDs as numbers (`cmpIds` in common/ids.ts), and
 * `Number(newest) - 1` in the discard planner's passCeiling.
 */
import { expect } from 'chai';
import { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import type { EventId } from '../../src/common/ids';
import { DBEventArchiver } from '../../src/maintenance/DBEventArchiver';
import { DBEventDiscarder } from '../../src/maintenance/DBEventDiscarder';
import { EventStore } from '../../src/storage/store';
import { DbFixture, describeDatabases, testLog } from '../support/db';
import { connectRaw } from '../support/push';
import { startService, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { moveIdSequence, sqlFor } from '../support/sql';
import { waitFor } from '../support/wait';

/** The first ID: 18 digits, far above 2^53 and below 2^63. */
const FIRST = 123_456_789_012_345_678n;

const idsIn = async (store: EventStore, table: string): Promise<EventId[]> =>
  (
    await store.db.query<{ id: string }>(
      `SELECT ${sqlFor(store.dialect.name).idText('e.id')} AS id FROM ${table} e ORDER BY e.id`,
    )
  ).map((r) => r.id);

describeDatabases('event IDs of 18 digits', (fx) => {
  let service: StreamService;
  let ids: EventId[] = [];
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    expect(Number(FIRST.toString()).toString()).to.not.equal(FIRST.toString());
    service = await startService(fx);
    await moveIdSequence(service.store, FIRST);
    ids = await service.store.addEvents(
      Array.from({ length: 12 }, (_v, i) => ({ type: 'LONG_ID', data: JSON.stringify({ i }) })),
    );
    expect(ids[0]).to.equal(FIRST.toString());
    expect(ids[11]).to.equal((FIRST + 11n).toString());
  });
  after(async () => {
    for (const f of cleanup.reverse()) await f();
    await service?.close();
  });

  const pointer = (component: string) => service.store.consumerPointer(`${TEST_USER}:${component}`);

  it('pushes them exactly and stores the exact pointer', async function () {
    this.timeout(60_000);
    const consumer = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'LONG_PUSH');
    cleanup.push(() => consumer.close());
    // A new reliable consumer gets what exists too, then what comes after.
    const more = await service.store.addEvents([
      { type: 'LONG_ID', data: '{"pushed":1}' },
      { type: 'LONG_ID', data: '{"pushed":2}' },
    ]);
    await consumer.until(() => consumer.events.some((e) => e.id === more[1]));
    expect(consumer.events.map((e) => e.id)).to.deep.equal([...ids, ...more]);
    await waitFor('the stored pointer', async () => (await pointer('LONG_PUSH')) === more[1]);
    ids.push(...more);
  });

  it('archives them exactly, with the exact pointer', async function () {
    this.timeout(120_000);
    const wfx = new DbFixture(fx.dialect);
    await wfx.create();
    cleanup.push(() => wfx.drop());
    const ccm = new AdvancedCCM();
    const archiver = new DBEventArchiver(ccm, { log: testLog, warehouse: wfx.config });
    cleanup.push(async () => {
      archiver.stop();
      ccm.close();
      await archiver.whenStopped();
    });
    // The archiver's consumer starts from the beginning of the active table.
    archiver.start(service.wsUrl, TEST_CREDENTIALS, { component: 'LONG_ARCH' });
    const history = await EventStore.open(wfx.config, { log: testLog });
    cleanup.push(() => history.close());
    const last = ids[ids.length - 1]!;
    await waitFor(
      'the archive to hold every event',
      async () => (await idsIn(history, 'evt_history').catch((): EventId[] => [])).includes(last),
      60_000,
    );
    expect(await idsIn(history, 'evt_history')).to.deep.equal(ids);
    await waitFor('the archiver pointer', async () => (await pointer('LONG_ARCH')) === last);
  });

  it('discards them in exact batches, up to the slowest consumer', async function () {
    this.timeout(60_000);
    const store = service.store;
    // The slowest consumer stops inside the run, between two IDs a double cannot tell apart.
    await store.registerConsumer('u:SLOW');
    await store.advanceConsumer('u:SLOW', ids[6]!);
    const ccm = new AdvancedCCM();
    const discarder = new DBEventDiscarder();
    // Batches of 4: their bounds are computed from the IDs.
    discarder.start(ccm, { store, poll_period_ms: 3_600_000, limit_at_once: 4, log: testLog });
    cleanup.push(async () => {
      await discarder.stop();
      ccm.close();
    });
    await discarder.runPass();
    expect(await idsIn(store, 'evt_queue')).to.deep.equal(ids.slice(7));
    await store.advanceConsumer('u:SLOW', ids[ids.length - 1]!);
    await discarder.runPass();
    // The newest event always stays (MAX(id) never goes back), at its exact ID.
    expect(await idsIn(store, 'evt_queue')).to.deep.equal(ids.slice(-1));
  });
});
