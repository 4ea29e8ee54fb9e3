/**
 * Replay from the warehouse, against our real service on every database, with a warehouse of
 * the same kind and of another: 50,000 events archived and discarded (the active table keeps
 * only the newest), IDs left unused here and there (rollbacks) — right below the seam too —
 * then consumers reset to the start and to an event in the middle, by poll and by push, while
 * writers keep adding. Each gets every event after its position once, in ID order, across the
 * seam between the warehouse and the active table. Without a warehouse, the jump is reported.
 */
import { expect } from 'chai';
import type { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/common/event';
import { cmpIds, type EventId } from '../../src/common/ids';
import type { Logger } from '../../src/common/log';
import type { Dialect } from '../../src/storage/sql';
import { EventStore } from '../../src/storage/store';
import { DbFixture, describeDatabases, testLog } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { waitFor, waitForValue } from '../support/wait';

const EVENTS = 50_000;
const HOUR = 3_600_000;
/** Bound of the waits here: archiving and replaying 50,000 events on a shared machine. */
const LONG_WAIT_MS = 120_000;

const OTHER: Record<Dialect, Dialect> = {
  sqlite: 'postgresql',
  postgresql: 'mysql',
  mysql: 'sqlite',
};

/** Makes the next `n` IDs of evt_queue go unused, as rolled-back inserts do. */
async function burnIds(store: EventStore, n: number): Promise<void> {
  if (store.dialect.name === 'sqlite') {
    // SQLite takes back the IDs of a rollback; skip them in its sequence instead.
    await store.db.execute(`UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'evt_queue'`, [
      n,
    ]);
    return;
  }
  const events = Array.from({ length: n }, () => ({ type: 'GONE', data: '{}' }));
  await store.db
    .transaction(async (tx) => {
      await store.insertEventsInTx(tx, events);
      throw new Error('rolled back on purpose');
    })
    .catch((err: unknown) => {
      if (!String(err).includes('on purpose')) throw err;
    });
}

/** Adds `n` events, `batch` per statement; types alternate ODD/EVEN by count. */
async function addEvents(store: EventStore, n: number, batch = 1000): Promise<EventId[]> {
  const ids: EventId[] = [];
  for (let done = 0; done < n; done += batch) {
    const size = Math.min(batch, n - done);
    const events = Array.from({ length: size }, (_, i) => ({
      type: (done + i) % 2 === 1 ? 'ODD' : 'EVEN',
      data: JSON.stringify({ n: done + i, pad: 'x'.repeat(40) }),
    }));
    ids.push(...(await store.addEvents(events)));
  }
  return ids;
}

/** A logger keeping warnings (and passing everything on to the tests' log). */
function keepingWarnings(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug: (m, f) => testLog.debug(m, f),
    info: (m, f) => testLog.info(m, f),
    warn: (m, f) => {
      warnings.push(m);
      testLog.warn(m, f);
    },
    error: (m, f) => testLog.error(m, f),
  };
}

/** A polling consumer: polls over WebSocket (FTN18 1.1) until it has got `until`. */
class Poller {
  readonly ids: EventId[] = [];
  readonly types: string[] = [];
  private lastId: EventId | null = null;
  until: EventId | null = null;

  constructor(
    private readonly ccm: AdvancedCCM,
    readonly component: string,
    readonly want: string[] | null = null,
  ) {}

  /** Polls until it has got the event `until` (set later by the test) or anything after it. */
  async run(): Promise<void> {
    for (;;) {
      const events = await steps<Event[]>((as) =>
        this.ccm.iface<PollFace>('poll').pollEvents(as, this.component, this.lastId, this.want),
      );
      for (const e of events) {
        this.ids.push(e.id);
        this.types.push(e.type);
      }
      const last = events[events.length - 1];
      if (last) this.lastId = last.id;
      const until = this.until;
      if (until !== null && this.lastId !== null && cmpIds(this.lastId, until) >= 0) return;
      if (events.length === 0) {
        // Pacing only: nothing new yet, the writers are adding.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

function expectOnceInOrder(got: readonly EventId[], expected: readonly EventId[], who: string) {
  for (let i = 1; i < got.length; i++) {
    if (cmpIds(got[i - 1]!, got[i]!) >= 0)
      throw new Error(`${who}: ${got[i]} after ${got[i - 1]} (at ${i})`);
  }
  expect(got.length, `${who}: events received`).to.equal(expected.length);
  expect(got[0], `${who}: first`).to.equal(expected[0]);
  expect(got[got.length - 1], `${who}: last`).to.equal(expected[expected.length - 1]);
  expect([...got], who).to.deep.equal([...expected]);
}

describeDatabases('replay from the warehouse', (fx) => {
  for (const kind of ['same', 'other'] as const) {
    describe(`with a warehouse of ${kind === 'same' ? 'the same' : 'another'} kind`, function () {
      const active = kind === 'same' ? fx : new DbFixture(fx.dialect);
      const wfx = new DbFixture(kind === 'same' ? fx.dialect : OTHER[fx.dialect]);
      let service: StreamService;
      let warehouse: EventStore;
      let ccm: AdvancedCCM;
      const log = keepingWarnings();
      /** Every event added, in ID order. */
      const added: EventId[] = [];
      let middle: EventId;
      let seam: EventId;

      before(async function () {
        this.timeout(LONG_WAIT_MS * 2);
        if (!wfx.available) {
          if (process.env['CI'] === 'true') throw new Error(`No ${wfx.dialect} server (CI=true)`);
          this.skip();
        }
        if (active !== fx) await active.create();
        await wfx.create();
        service = await startService(active, {
          warehouse: wfx.config,
          discard: { poll_period_ms: HOUR },
          log,
        });
        const store = service.store;
        // Unused IDs in the middle and right below the seam (the newest event, which stays).
        added.push(...(await addEvents(store, EVENTS / 2 - 1)));
        await burnIds(store, 2);
        added.push(...(await addEvents(store, 1)));
        middle = added[added.length - 1]!;
        await burnIds(store, 3);
        added.push(...(await addEvents(store, EVENTS / 2 - 1)));
        await burnIds(store, 2);
        added.push(...(await addEvents(store, 1)));
        seam = added[added.length - 1]!;
        expect(added).to.have.length(EVENTS);

        warehouse = await EventStore.open(wfx.config, { log: testLog });
        await waitForValue(
          'the archiver to copy every event',
          () => warehouse.countEvents('evt_history').catch(() => 0),
          (n) => n === EVENTS,
          LONG_WAIT_MS,
        );
        await waitForValue(
          "the archiver's pointer at the newest event",
          () => store.consumerPointer('-internal:ARCHIVER'),
          (p) => p === seam,
          LONG_WAIT_MS,
        );
        const pass = await service.app.discarder!.runPass();
        expect(pass.deleted).to.equal(EVENTS - 1);
        expect(await store.tableRange()).to.deep.include({ oldest: seam, newest: seam, count: 1 });

        ccm = clientCcm();
        await steps((as) => {
          PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS, {
            secureChannel: true,
          });
        });
      });

      after(async function () {
        this.timeout(60_000);
        ccm?.close();
        await warehouse?.close();
        await service?.close();
        await wfx.drop();
        if (active !== fx) await active.drop();
      });

      /** Registers `component`, moves it to the head, then back to after `to` (null: the start). */
      async function resetConsumer(component: string, to: EventId | null): Promise<void> {
        const ident = `${TEST_USER}:${component}`;
        await service.store.registerConsumer(ident);
        const admin = service.app.admin!;
        await admin.moveConsumer(ident, 'newest', 'test');
        if (to === null) await admin.moveConsumer(ident, 'start', 'test', { reason: 'replay' });
        else await admin.moveConsumer(ident, 'id', 'test', { id: to, reason: 'replay' });
      }

      it('replays to consumers reset to the start and to the middle, by poll and by push, across the seam, while writers add', async function () {
        this.timeout(LONG_WAIT_MS * 3);
        await resetConsumer('P_START', null);
        await resetConsumer('P_MID', middle);
        await resetConsumer('P_ODD', null);
        await resetConsumer('S_START', null);
        await resetConsumer('S_MID', middle);

        // Writers keep adding (unused IDs among theirs too) until every consumer has crossed
        // the seam.
        let writing = true;
        const writer = (async () => {
          while (writing) {
            added.push(...(await addEvents(service.store, 25, 25)));
            if (added.length % 100 === 0) await burnIds(service.store, 1);
          }
        })();

        const pollers = [
          new Poller(ccm, 'P_START'),
          new Poller(ccm, 'P_MID'),
          new Poller(ccm, 'P_ODD', ['ODD']),
        ];
        const polling = pollers.map((p) => p.run());
        const pushed: RawReceiver[] = [];
        for (const component of ['S_START', 'S_MID']) {
          const r = await connectRaw(
            service.wsUrl,
            TEST_CREDENTIALS,
            component,
            null,
            '1.1',
            (r) => {
              r.ordered = true;
            },
          );
          pushed.push(r);
        }
        try {
          const crossed = (ids: readonly EventId[]): boolean =>
            ids.some((id) => cmpIds(id, seam) > 0);
          await waitFor(
            () =>
              `every consumer past the seam ${seam} (${pollers.map((p) => p.ids.length).join(', ')} polled, ${pushed.map((r) => r.events.length).join(', ')} pushed)`,
            () =>
              pollers.every((p) => crossed(p.ids)) &&
              pushed.every((r) => crossed(r.events.map((e) => e.id))),
            LONG_WAIT_MS,
          );
        } finally {
          writing = false;
          await writer;
        }
        const newest = added[added.length - 1]!;
        expect(cmpIds(newest, seam)).to.be.greaterThan(0);
        for (const p of pollers) p.until = p.want === null ? newest : null;
        // The ODD poller stops at the newest ODD event.
        const oddIds = await oddEventIds(service.store);
        pollers[2]!.until = oddIds[oddIds.length - 1]!;
        await Promise.all(polling);
        for (const r of pushed) {
          await r.until(() => r.events.some((e) => e.id === newest), LONG_WAIT_MS);
        }
        for (const r of pushed) r.close();

        const after = (from: EventId | null): EventId[] =>
          added.filter((id) => from === null || cmpIds(id, from) > 0);
        expectOnceInOrder(pollers[0]!.ids, after(null), 'P_START');
        expectOnceInOrder(pollers[1]!.ids, after(middle), 'P_MID');
        expectOnceInOrder(pollers[2]!.ids, oddIds, 'P_ODD');
        expect(new Set(pollers[2]!.types)).to.deep.equal(new Set(['ODD']));
        expectOnceInOrder(
          pushed[0]!.events.map((e) => e.id),
          after(null),
          'S_START',
        );
        expectOnceInOrder(
          pushed[1]!.events.map((e) => e.id),
          after(middle),
          'S_MID',
        );
        const counts = service.store.counters.consumers;
        expect(counts.get(`${TEST_USER}:P_START`)?.fromWarehouse).to.be.at.least(
          after(null).indexOf(seam),
        );
        expect(counts.get(`${TEST_USER}:S_MID`)?.fromWarehouse).to.be.greaterThan(0);
        for (const c of counts.values()) expect(c.behindRetention).to.equal(0);
        expect(log.warnings.filter((w) => w.includes('behind_retention'))).to.deep.equal([]);
      });

      /** The IDs of ODD events, in ID order (from the warehouse and the active table). */
      async function oddEventIds(store: EventStore): Promise<EventId[]> {
        const top = await store.newestEventId();
        const old = await warehouse.readEvents({
          after: '0',
          upTo: top,
          limit: 10_000_000,
          want: ['ODD'],
          table: 'evt_history',
        });
        const held = await store.readEvents({
          after: '0',
          upTo: top,
          limit: 10_000_000,
          want: ['ODD'],
        });
        const ids = new Set([...old, ...held].map((e) => e.id));
        return [...ids].sort(cmpIds);
      }
    });
  }

  describe('without a warehouse', function () {
    const active = new DbFixture(fx.dialect);
    let service: StreamService;
    let ccm: AdvancedCCM;
    const log = keepingWarnings();

    before(async function () {
      this.timeout(60_000);
      await active.create();
      service = await startService(active, { discard: { poll_period_ms: HOUR }, log });
      ccm = clientCcm();
      await steps((as) => {
        PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS, {
          secureChannel: true,
        });
      });
    });
    after(async () => {
      ccm?.close();
      await service?.close();
      await active.drop();
    });

    it('goes on at the oldest event held, and reports the jump in the log and the metrics', async function () {
      this.timeout(60_000);
      const store = service.store;
      const ident = `${TEST_USER}:BEHIND`;
      await store.registerConsumer(ident);
      const ids = await addEvents(store, 50, 10);
      await service.app.admin!.moveConsumer(ident, 'newest', 'test');
      const pass = await service.app.discarder!.runPass();
      expect(pass.deleted).to.equal(49);
      await service.app.admin!.moveConsumer(ident, 'start', 'test');

      const first = await steps<Event[]>((as) =>
        ccm.iface<PollFace>('poll').pollEvents(as, 'BEHIND', null),
      );
      expect(first.map((e) => e.id)).to.deep.equal([ids[49]]);
      const again = await steps<Event[]>((as) =>
        ccm.iface<PollFace>('poll').pollEvents(as, 'BEHIND', ids[49]),
      );
      expect(again).to.deep.equal([]);
      const warnings = log.warnings.filter((w) =>
        w.includes('evtstream_consumer_behind_retention'),
      );
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.include(
        `${ident}: reads after event 0, but evt_queue starts at event ${ids[49]}`,
      );
      expect(store.counters.consumer(ident).behindRetention).to.equal(1);

      // By push, once per session.
      await store.addEvents([{ type: 'EVEN', data: '{}' }]);
      await service.app.admin!.moveConsumer(ident, 'start', 'test');
      const r = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'BEHIND');
      try {
        await r.until(() => r.events.length >= 2);
        expect(r.events.map((e) => e.id)[0]).to.equal(ids[49]);
      } finally {
        r.close();
      }
      await waitFor(
        'the second report',
        () => store.counters.consumer(ident).behindRetention === 2,
      );
    });
  });
});
