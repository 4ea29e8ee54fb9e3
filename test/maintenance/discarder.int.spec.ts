/**
 * DBEventDiscarder on real databases: it deletes only what every registered consumer has
 * acknowledged, honours keep_for and stale_consumer_ms, works in bounded batches, keeps running
 * after errors, and never takes an event from a consumer under concurrent writers, nor one a
 * pointer moved back (or a consumer registered) while a pass runs holds again.
 */
import { expect } from 'chai';
import { AdvancedCCM } from 'futoin-invoker';
import { cmpIds, type EventId } from '../../src/common/ids';
import type { Logger } from '../../src/common/log';
import { parseDuration } from '../../src/common/time';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/delivery/poll/PollService';
import {
  BATCHES_PER_PASS,
  DBEventDiscarder,
  type DBEventDiscarderOptions,
  type DiscardResult,
} from '../../src/maintenance/DBEventDiscarder';
import type { StreamService } from '../../src/app/service';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import { AdminCore } from '../../src/ops/admin';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases, testLog } from '../support/db';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { sqlFor } from '../support/sql';
import { sleep, waitFor } from '../support/wait';

const HOUR = 3_600_000;

/** A logger that keeps warnings (and passes the rest to the test log). */
function recordingLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...testLog, warnings, warn: (m: string) => warnings.push(m) };
}

describe('DBEventDiscarder options', () => {
  it('parses durations: ms numbers and 7d, 12h, 30m, 45s, 500ms', () => {
    expect(parseDuration(1500)).to.equal(1500);
    expect(parseDuration('7d')).to.equal(7 * 24 * HOUR);
    expect(parseDuration('12h')).to.equal(12 * HOUR);
    expect(parseDuration('30m')).to.equal(30 * 60_000);
    expect(parseDuration('45s')).to.equal(45_000);
    expect(parseDuration('500ms')).to.equal(500);
    expect(parseDuration('1.5h')).to.equal(1.5 * HOUR);
    for (const bad of ['soon', '-1s', '7 days', '', -1, NaN, Infinity]) {
      expect(() => parseDuration(bad), String(bad)).to.throw(TypeError);
    }
  });

  it('refuses invalid options and a second start at once', async () => {
    const ccm = new AdvancedCCM();
    const bad: DBEventDiscarderOptions[] = [
      { keep_for: 'a while' },
      { stale_consumer_ms: -5 },
      { limit_at_once: 0 },
      { limit_at_once: 1.5 },
      { poll_period_ms: 0 },
      { event_table: 'evt_queue; DROP TABLE x' },
      { consumer_table: '' },
    ];
    for (const options of bad) {
      expect(() => new DBEventDiscarder().start(ccm, options), JSON.stringify(options)).to.throw();
    }
    const d = new DBEventDiscarder();
    const errors: string[] = [];
    d.on('workerError', (code) => errors.push(code));
    // No #db.evt and no store: the passes fail with workerError, the start itself does not.
    d.start(ccm, { poll_period_ms: HOUR, log: recordingLog() });
    expect(() => d.start(ccm)).to.throw('Already started');
    await waitFor('workerError', () => errors.length > 0);
    await d.stop();
    ccm.close();
  });
});

describeDatabases('DBEventDiscarder', (fx) => {
  let store: EventStore;
  let ccm: AdvancedCCM;
  let discarder: DBEventDiscarder | null = null;

  before(async () => {
    store = await fx.openStore();
  });
  beforeEach(async () => {
    await store.db.execute('DELETE FROM evt_queue');
    await store.db.execute('DELETE FROM evt_consumers');
    ccm = new AdvancedCCM();
  });
  afterEach(async () => {
    await discarder?.stop();
    discarder = null;
    ccm.close();
  });

  const add = (n: number): Promise<EventId[]> =>
    store.addEvents(Array.from({ length: n }, (_v, i) => ({ type: 'T', data: String(i) })));

  const remaining = async (on: EventStore = store): Promise<EventId[]> =>
    (
      await on.db.query<{ id: string }>(
        `SELECT ${sqlFor(on.dialect.name).idText('e.id')} AS id FROM evt_queue e ORDER BY e.id`,
      )
    ).map((r) => r.id);

  const consumer = async (ident: string, at: EventId): Promise<void> => {
    await store.registerConsumer(ident);
    if (at !== '0') await store.advanceConsumer(ident, at);
  };

  /** Sets ts of the events up to `upTo` (or of that one only) to `ms` ago (database clock). */
  const ageEvents = (upTo: EventId, ms: number, only = false) =>
    store.db.execute(
      `UPDATE evt_queue SET ts = ${sqlFor(store.dialect.name).utcBeforeMs(ms)} WHERE id ${only ? '=' : '<='} ${sqlFor(store.dialect.name).idParam}`,
      [upTo],
    );

  const ageConsumer = (ident: string, ms: number) =>
    store.db.execute(
      `UPDATE evt_consumers SET last_time = ${sqlFor(store.dialect.name).utcBeforeMs(ms)} WHERE ident = ?`,
      [ident],
    );

  /** Starts a discarder on the test store that passes only when asked (runPass()). */
  async function startIdle(options: DBEventDiscarderOptions = {}): Promise<DBEventDiscarder> {
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.start(ccm, { store, poll_period_ms: HOUR, ...options });
    await disc.runPass(); // after start()'s own first pass
    return disc;
  }

  it('deletes only up to the slowest consumer, and more once it moves', async () => {
    const ids = await add(10);
    await consumer('u:FAST', ids[7]!);
    await consumer('u:SLOW', ids[3]!);
    const disc = await startIdle();
    expect(await remaining()).to.deep.equal(ids.slice(4));
    expect(BigInt(ids[4]!)).to.equal(BigInt(ids[3]!) + 1n);

    await store.advanceConsumer('u:SLOW', ids[6]!);
    const r = await disc.runPass();
    expect(r).to.include({ deleted: 3, lastId: ids[6], batches: 1 });
    expect(await remaining()).to.deep.equal(ids.slice(7));

    // Everything delivered: all but the newest event go (MAX(id) never goes back).
    await store.advanceConsumer('u:FAST', ids[9]!);
    await store.advanceConsumer('u:SLOW', ids[9]!);
    await disc.runPass();
    expect(await remaining()).to.deep.equal([ids[9]]);
  });

  it('keeps events younger than keep_for, even delivered; deletes the old delivered ones', async () => {
    const ids = await add(8);
    await consumer('u:A', ids[5]!);
    const disc = await startIdle({ keep_for: '1h' });
    expect(await remaining(), 'all new: nothing deleted').to.deep.equal(ids);

    await ageEvents(ids[2]!, 2 * HOUR);
    await disc.runPass();
    expect(await remaining(), 'old and delivered go').to.deep.equal(ids.slice(3));

    // Old but not delivered (ids[6]) stays, as does the newest.
    await ageEvents(ids[7]!, 2 * HOUR);
    await disc.runPass();
    expect(await remaining()).to.deep.equal(ids.slice(6));
  });

  it('measures keep_for on the database clock to the second', async () => {
    const ids = await add(4);
    await consumer('u:A', ids[3]!);
    await ageEvents(ids[0]!, 61 * 60_000, true);
    await ageEvents(ids[1]!, 31 * 60_000, true);
    await ageEvents(ids[2]!, 29 * 60_000, true);
    await startIdle({ keep_for: 3_600_000 });
    expect(await remaining()).to.deep.equal(ids.slice(1));
    await discarder!.stop();
    await startIdle({ keep_for: '30m' });
    // ids[1] is 31 minutes old; ids[2] 29 (and keeps ids[3] anyway, the newest).
    expect(await remaining()).to.deep.equal(ids.slice(2));
  });

  it('deletes in batches of limit_at_once until nothing is left', async () => {
    const ids = await add(2501);
    await consumer('u:A', ids[2499]!);
    const batches: [number, EventId][] = [];
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('eventDiscard', (n, last) => batches.push([n, last]));
    disc.start(ccm, { store, poll_period_ms: HOUR, limit_at_once: 1000 });
    await disc.runPass();
    expect(await remaining()).to.deep.equal([ids[2500]]);
    await waitFor('3 eventDiscard', () => batches.length >= 3);
    expect(batches).to.deep.equal([
      [1000, ids[999]],
      [1000, ids[1999]],
      [500, ids[2499]],
    ]);
  });

  it('reports every pass with passEnd, also one that deleted nothing', async () => {
    const ids = await add(4);
    await consumer('u:A', ids[1]!);
    const passes: DiscardResult[] = [];
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('passEnd', (r) => passes.push(r));
    disc.start(ccm, { store, poll_period_ms: HOUR });
    const second = await disc.runPass();
    expect(second).to.deep.include({ deleted: 0, lastId: null, batches: 0 });
    await waitFor('2 passEnd', () => passes.length >= 2);
    expect(passes.map((r) => [r.deleted, r.lastId])).to.deep.equal([
      [2, ids[1]],
      [0, null],
    ]);
    // What /metrics shows of it.
    expect(disc.counters).to.deep.include({
      events: 2,
      passes: 2,
      lastId: ids[1],
      failures: 0,
      staleConsumers: 0,
    });
    expect(disc.counters.lastSuccessMs).to.be.within(Date.now() - 60_000, Date.now());
  });

  it(`ends a pass after ${BATCHES_PER_PASS} batches; the next follows soon, not a period later`, async function () {
    this.timeout(60_000);
    const n = BATCHES_PER_PASS * 2 + 50;
    const ids = await add(n + 1);
    await consumer('u:A', ids[n - 1]!);
    const disc = new DBEventDiscarder();
    discarder = disc;
    let batches = 0;
    disc.on('eventDiscard', () => batches++);
    disc.start(ccm, { store, poll_period_ms: HOUR, limit_at_once: 1 });
    // Queued behind start()'s first pass, which stopped at the cap too.
    const r = await disc.runPass();
    expect(r.batches).to.equal(BATCHES_PER_PASS);
    await waitFor('all deleted', async () => (await remaining()).length === 1, 50_000);
    expect(await remaining()).to.deep.equal([ids[n]]);
    await waitFor('every eventDiscard', () => batches === n);
  });

  it('deletes nothing without consumers; a removed consumer no longer holds events back', async () => {
    const ids = await add(6);
    const disc = await startIdle();
    expect(await remaining()).to.deep.equal(ids);

    await consumer('u:A', ids[4]!);
    await consumer('u:NEW', '0');
    await disc.runPass();
    expect(await remaining(), 'a consumer at 0 holds everything').to.deep.equal(ids);

    await store.db.execute('DELETE FROM evt_consumers WHERE ident = ?', ['u:NEW']);
    await disc.runPass();
    expect(await remaining()).to.deep.equal(ids.slice(5));
  });

  it('without stale_consumer_ms (or 0), an idle consumer far behind holds everything back', async () => {
    const ids = await add(6);
    await consumer('u:A', ids[4]!);
    await consumer('u:IDLE', ids[0]!);
    await ageEvents(ids[5]!, 30 * 24 * HOUR);
    await ageConsumer('u:IDLE', 30 * 24 * HOUR);
    await startIdle();
    expect(await remaining()).to.deep.equal(ids.slice(1));
    await discarder!.stop();
    await startIdle({ stale_consumer_ms: 0 }); // 0: off
    expect(await remaining()).to.deep.equal(ids.slice(1));
  });

  it('with stale_consumer_ms, ignores a stale consumer, loudly; a consumer at the head is not stale', async () => {
    const ids = await add(6);
    await consumer('u:A', ids[4]!);
    await consumer('u:IDLE', ids[1]!);
    await consumer('u:HEAD', ids[5]!);
    await ageEvents(ids[5]!, 2 * HOUR);
    await ageConsumer('u:IDLE', 2 * HOUR);
    await ageConsumer('u:HEAD', 2 * HOUR);

    const log = recordingLog();
    const staleEvents: [string, EventId, string][] = [];
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('staleConsumer', (ident, pointer, lastTime) =>
      staleEvents.push([ident, pointer, lastTime]),
    );
    disc.start(ccm, { store, poll_period_ms: HOUR, stale_consumer_ms: '1h', log });
    const r = await disc.runPass();
    expect(r.stale.map((c) => c.ident)).to.deep.equal(['u:IDLE']);
    expect(await remaining()).to.deep.equal(ids.slice(5));
    await waitFor('staleConsumer events', () => staleEvents.length >= 2);
    // Each pass: start()'s and ours.
    expect(staleEvents.map((e) => e.slice(0, 2))).to.deep.equal([
      ['u:IDLE', ids[1]],
      ['u:IDLE', ids[1]],
    ]);
    expect(staleEvents[0]![2]).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(log.warnings).to.have.length(2);
    expect(log.warnings[0]).to.include('u:IDLE').and.include('stale');

    // u:HEAD was idle at the head; a new event does not make it stale until that event is old.
    const more = await add(2);
    await store.advanceConsumer('u:A', more[1]!);
    const r2 = await disc.runPass();
    expect(r2.stale.map((c) => c.ident)).to.deep.equal(['u:IDLE']);
    expect(await remaining(), 'u:HEAD holds its unread events').to.deep.equal(more);

    await ageEvents(more[1]!, 2 * HOUR);
    const r3 = await disc.runPass();
    expect(r3.stale.map((c) => c.ident)).to.have.members(['u:IDLE', 'u:HEAD']);
    // Only u:A holds events back now, and it has them all: only the newest remains.
    expect(await remaining()).to.deep.equal([more[1]]);
  });

  it('deletes nothing when every consumer is stale', async () => {
    const ids = await add(5);
    await consumer('u:IDLE', ids[1]!);
    await ageEvents(ids[4]!, 2 * HOUR);
    await ageConsumer('u:IDLE', 2 * HOUR);
    const r = await (await startIdle({ stale_consumer_ms: HOUR })).runPass();
    expect(r.stale.map((c) => c.ident)).to.deep.equal(['u:IDLE']);
    expect(await remaining()).to.deep.equal(ids);
  });

  it('emits workerError when a pass fails and keeps running', async () => {
    const ids = await add(5);
    await consumer('u:A', ids[2]!);
    const rename = (from: string, to: string) =>
      store.db.execute(`ALTER TABLE ${from} RENAME TO ${to}`);
    await rename('evt_queue', 'evt_queue_away');
    const errors: [string, string | undefined, Error | undefined][] = [];
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('workerError', (code, info, exception) => errors.push([code, info, exception]));
    try {
      disc.start(ccm, { store, poll_period_ms: 20, log: recordingLog() });
      await waitFor('two workerErrors', () => errors.length >= 2);
    } finally {
      await rename('evt_queue_away', 'evt_queue');
    }
    expect(errors[0]![0]).to.equal('InternalError');
    expect(errors[0]![1]).to.match(/evt_queue/);
    expect(errors[0]![2]).to.be.instanceOf(Error);
    const failed = disc.counters.failures;
    expect(failed, 'failed passes counted').to.be.at.least(2);
    expect(disc.counters.lastSuccessMs, 'no pass succeeded yet').to.equal(0);
    await waitFor('deletion after recovery', async () => (await remaining()).length === 2);
    expect(await remaining()).to.deep.equal(ids.slice(3));
    expect(disc.counters.events).to.equal(3);
    expect(disc.counters.passes).to.be.at.least(1);
    expect(disc.counters.lastSuccessMs).to.be.above(0);
  });

  it('reports a table that does not exist (event_table) as workerError', async () => {
    const errors: string[] = [];
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('workerError', (_code, info) => errors.push(info ?? ''));
    disc.start(ccm, { store, poll_period_ms: 20, event_table: 'evt_nowhere', log: recordingLog() });
    await waitFor('workerErrors', () => errors.length >= 2);
    expect(errors[0]).to.match(/evt_nowhere/);
  });

  /**
   * Runs `between` once, right after a pass of the discarder has read the consumers' pointers
   * (before it reads the events and deletes): the interleaving of a move or a registration that
   * commits while a pass is under way, made deterministic. The database stays real.
   */
  function afterPointersRead(between: () => Promise<unknown>): { restore: () => void } {
    const read = store.consumers.bind(store);
    let armed = true;
    store.consumers = async (idleMs?: number, consumerTable?: string) => {
      const pointers = await read(idleMs, consumerTable);
      if (armed) {
        armed = false;
        await between();
      }
      return pointers;
    };
    return { restore: () => delete (store as { consumers?: unknown }).consumers };
  }

  /** What a consumer at `pointer` gets now: the IDs after it in the active table. */
  const replay = async (pointer: EventId): Promise<EventId[]> =>
    (await store.readEvents({ after: pointer, upTo: '999999999', limit: 1000, want: null })).map(
      (e) => e.id,
    );

  it('keeps every event after a pointer moved back while a pass runs (the move commits between its read and its DELETE)', async () => {
    const ids = await add(10);
    await consumer('u:A', ids[6]!);
    await consumer('u:B', ids[8]!);
    const moved: { from: EventId; pointer: EventId }[] = [];
    const hook = afterPointersRead(async () => {
      const { from, pointer } = await new AdminCore(store).moveConsumer('u:A', 'start', 'os:test');
      moved.push({ from, pointer });
    });
    try {
      // start()'s own first pass reads the pointers (u:A at ids[6]), then u:A moves to the start.
      await startIdle();
    } finally {
      hook.restore();
    }
    expect(moved).to.deep.equal([{ from: ids[6], pointer: '0' }]);
    expect(await store.consumerPointer('u:A')).to.equal('0');
    expect(await remaining(), 'nothing deleted after the moved pointer').to.deep.equal(ids);
    expect(await replay('0')).to.deep.equal(ids);

    // Later passes go on from the new pointer.
    await store.advanceConsumer('u:A', ids[2]!);
    const r = await discarder!.runPass();
    expect(r).to.include({ deleted: 3, lastId: ids[2] });
    expect(await remaining()).to.deep.equal(ids.slice(3));
  });

  it('keeps every event for a consumer registered while a pass runs (between its read and its DELETE)', async () => {
    const ids = await add(10);
    await consumer('u:A', ids[8]!);
    const passes: DiscardResult[] = [];
    const hook = afterPointersRead(() => store.registerConsumer('u:NEW'));
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('passEnd', (r) => passes.push(r));
    try {
      disc.start(ccm, { store, poll_period_ms: HOUR });
      await disc.runPass();
    } finally {
      hook.restore();
    }
    // The first pass read u:A alone (at ids[8]), but its DELETE saw u:NEW, at 0.
    expect(passes[0]).to.deep.include({ deleted: 0, lastId: null, batches: 1 });
    expect(await store.consumerPointer('u:NEW')).to.equal('0');
    expect(await remaining()).to.deep.equal(ids);
    expect(await replay('0')).to.deep.equal(ids);
  });

  it('counts a stale consumer again at once when it is moved during a pass', async () => {
    const ids = await add(10);
    await consumer('u:A', ids[8]!);
    await consumer('u:IDLE', ids[4]!);
    await ageEvents(ids[9]!, 2 * HOUR);
    await ageConsumer('u:IDLE', 2 * HOUR);
    // Moved back to where it is (a move resets last_time): no longer idle, so not stale.
    const hook = afterPointersRead(() =>
      new AdminCore(store).moveConsumer('u:IDLE', 'id', 'os:test', { id: ids[4]! }),
    );
    const passes: DiscardResult[] = [];
    const disc = new DBEventDiscarder();
    discarder = disc;
    disc.on('passEnd', (r) => passes.push(r));
    try {
      disc.start(ccm, {
        store,
        poll_period_ms: HOUR,
        stale_consumer_ms: '1h',
        log: recordingLog(),
      });
      await disc.runPass();
    } finally {
      hook.restore();
    }
    // The first pass had found it stale, but its DELETE stopped at its pointer.
    expect(passes[0]!.stale.map((c) => c.ident)).to.deep.equal(['u:IDLE']);
    expect(passes[0]).to.deep.include({ deleted: 5, lastId: ids[4] });
    expect(await remaining()).to.deep.equal(ids.slice(5));
    expect(passes[1]).to.deep.include({ deleted: 0, stale: [] });
  });

  /**
   * Statements of this test database whose text starts with `verb` and that wait for a lock
   * (PostgreSQL), or are under way (MySQL: its INNODB_TRX does not list them in time).
   */
  async function lockWaits(verb: 'DELETE' | 'UPDATE'): Promise<number> {
    const [row] = await store.db.query<{ n: unknown }>(
      store.dialect.name === 'postgresql'
        ? `SELECT COUNT(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'` +
            ` AND datname = current_database() AND query LIKE ?`
        : `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE ?`,
      [`${verb}%`],
    );
    return Number(row?.n ?? 0);
  }

  // SQLite runs one write transaction at a time: a move is wholly before or after a DELETE.
  if (fx.dialect !== 'sqlite')
    it('a move committing while the DELETE runs is either seen by it or answers after it', async function () {
      const ids = await add(10);
      await consumer('u:A', ids[6]!);
      // Known final before the lock below: MySQL's horizon would wait for the locking transaction.
      expect(await store.horizon()).to.equal(ids[9]);
      const holder = await fx.openStore();
      const mover = await fx.openStore();
      const d = sqlFor(store.dialect.name);
      // Another transaction holds the row of ids[0]: the DELETE (past its read of the pointers)
      // waits for it, so the move commits while the DELETE is under way.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holding = holder.db.transaction(async (tx) => {
        await tx.query(`SELECT id FROM evt_queue WHERE id = ${d.idParam} FOR UPDATE`, [ids[0]!]);
        locked();
        await released;
      });
      await isLocked;
      const passes: DiscardResult[] = [];
      const disc = new DBEventDiscarder();
      discarder = disc;
      disc.on('passEnd', (r) => passes.push(r));
      disc.start(ccm, { store, poll_period_ms: HOUR });
      let atAnswer: EventId[] | null = null;
      try {
        await waitFor('the DELETE waiting', async () => (await lockWaits('DELETE')) > 0);
        // What AdminCore.moveConsumer commits, to the start.
        const move = mover.db
          .execute(
            `UPDATE evt_consumers SET last_evt_id = 0, last_time = ${d.nowUtc} WHERE ident = ?`,
            ['u:A'],
          )
          .then(async () => (atAnswer = await remaining(mover)));
        await waitFor(
          'the move answered, or waiting for the DELETE',
          async () => atAnswer !== null || (await lockWaits('UPDATE')) > 0,
        );
        release();
        await holding;
        await move;
      } finally {
        release();
      }
      await waitFor('passEnd', () => passes.length > 0);
      expect(await store.consumerPointer('u:A')).to.equal('0');
      // Nothing it could replay when it answered is deleted afterwards.
      expect(atAnswer, 'the events when the move answered').to.not.equal(null);
      expect(await remaining(), 'nothing deleted after the move answered').to.deep.equal(atAnswer);
      expect(passes[0]!.deleted).to.equal(ids.length - atAnswer!.length);
    });

  it('works the FutoIn way: the store of #db.evt from futoin-database; CCM close stops it', async () => {
    const ids = await add(4);
    await consumer('u:A', ids[2]!);
    const dbCcm = clientCcm();
    await steps((as) => registerFutoinDb(as, dbCcm, 'evt', fx.config, testLog));
    const disc = new DBEventDiscarder();
    discarder = disc;
    const discarded: number[] = [];
    disc.on('eventDiscard', (n) => discarded.push(n));
    disc.start(dbCcm, { poll_period_ms: 20 });
    await waitFor('eventDiscard', () => discarded.length > 0);
    expect(await remaining()).to.deep.equal(ids.slice(3));
    dbCcm.close();
    await waitFor('stopped by the CCM close', () =>
      disc.runPass().then(
        () => false,
        (e: Error) => e.message === 'Not started',
      ),
    );
  });
});

describeDatabases('DBEventDiscarder under concurrent writers', (fx) => {
  const WRITERS = 8;
  const ROUNDS = 40;
  /** Between a writer's rounds, so writing lasts long enough for many passes on every database. */
  const PAUSE_MS = 20;
  let service: StreamService;
  let discarder: DBEventDiscarder | null = null;

  before(async () => {
    service = await startService(fx);
  });
  after(async () => {
    await discarder?.stop();
    await service?.close();
  });

  it('never deletes an event before the consumer got it', async function () {
    this.timeout(120_000);
    const store = service.store;
    const table = sqlFor(store.dialect.name).quote('evt_queue');
    const ccm = clientCcm();
    await steps((as) => PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS));
    const poll = ccm.iface<PollFace>('poll');
    await steps((as) => poll.registerConsumer(as, 'DISC'));
    const ident = `${TEST_USER}:DISC`;
    expect(await store.consumerPointer(ident)).to.equal('0');

    discarder = new DBEventDiscarder();
    let discarded = 0;
    const errors: string[] = [];
    discarder.on('eventDiscard', (n) => (discarded += n));
    discarder.on('workerError', (code, info) => errors.push(`${code}: ${info ?? ''}`));
    // The service's CCM: the discarder shares the service's store (resolveStore).
    discarder.start(service.ccm, { poll_period_ms: 20, limit_at_once: 50 });

    const committed: EventId[] = [];
    let rolledBack = 0;
    const writer = async (w: number): Promise<void> => {
      for (let round = 0; round < ROUNDS; round++) {
        const pick = (w * 7919 + round * 104729) % 100;
        if (pick < 60) {
          // In a transaction held open for 10..49 ms after its IDs are drawn; ~10% roll back.
          const rollback = pick % 10 === 0;
          const holdMs = 10 + (pick % 40);
          let drawn: EventId[] = [];
          try {
            await store.db.transaction(async (tx) => {
              drawn = await store.insertEventsInTx(tx, [
                { type: 'XFER', data: JSON.stringify({ w, round }) },
                { type: 'XFER', data: '{}' },
              ]);
              await sleep(holdMs);
              if (rollback) throw new Error('roll back');
            });
            committed.push(...drawn);
          } catch (err) {
            if (!rollback) throw err;
            rolledBack++;
          }
        } else {
          committed.push(...(await store.addEvents([{ type: 'PLAIN', data: '{}' }])));
        }
        await sleep(PAUSE_MS);
      }
    };

    let writersDone = false;
    const received: EventId[] = [];
    const deadline = Date.now() + 100_000;
    const consumerLoop = (async () => {
      let last: EventId | null = null;
      const newest = () => committed.reduce((m, id) => (cmpIds(id, m) > 0 ? id : m), '0');
      while (Date.now() < deadline) {
        if (writersDone && last !== null && cmpIds(last, newest()) >= 0) break;
        // Acknowledges `last` (the pointer moves to it), then reads what follows.
        const events = await steps<Event[]>((as) => poll.pollEvents(as, 'DISC', last));
        for (const e of events) received.push(e.id);
        if (events.length > 0) last = events[events.length - 1]!.id;
        else await sleep(2); // nothing new yet: poll again soon, without spinning
      }
      // The final acknowledgement.
      await steps((as) => poll.pollEvents(as, 'DISC', last));
    })();

    await Promise.all(Array.from({ length: WRITERS }, (_v, w) => writer(w)));
    writersDone = true;
    const discardedWhileWriting = discarded;
    await consumerLoop;
    committed.sort(cmpIds);
    expect(rolledBack, 'some transactions rolled back').to.be.greaterThan(0);
    expect(received).to.deep.equal(committed);
    // And the discarder was at work meanwhile: all but the newest is gone in the end.
    await waitFor('the discarder catches up', async () => {
      const [row] = await store.db.query<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM ${table}`,
      );
      return Number(row?.n) === 1;
    });
    await waitFor('eventDiscard delivered', () => discarded === committed.length - 1);
    expect(errors).to.deep.equal([]);
    expect(discardedWhileWriting, 'deleted while writers ran').to.be.greaterThan(0);
    if (process.env['EVT_TEST_VERBOSE']) {
      process.stderr.write(
        `      [${fx.dialect}] ${discardedWhileWriting} of ${committed.length} deleted while writers ran\n`,
      );
    }
    ccm.close();
  });
});
