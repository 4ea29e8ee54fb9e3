/**
 * A true drop-in: application code written for futoin-eventstream 1.3.9 — its README's
 * examples, its receivers, archiver, discarder and DBServiceApp, subclasses of its services
 * written against its hooks (fixtures/reference-apps.js, plain JavaScript) — runs with the
 * reference and with us, nothing changed but the package name, on each database, and sees the
 * same. Where we differ on purpose (README "Migrating from futoin-eventstream"), the test says
 * how. Uses dist/ as built (the package's own name resolves to it through `exports`).
 */
import { expect } from 'chai';
import type { Dialect } from '../../src/storage/sql';
import { requireFreshDist } from '../support/cli';
import { selectedDialects } from '../support/db';
import { needServers } from '../support/servers';
import { openConnections, OURS, REFERENCE, runApp, runBoth } from './support';

/** Event as the scenarios show it: id, type, data, and whether ts has FTN18's format. */
type Brief = [string, string, unknown, boolean];

describe('applications written for futoin-eventstream', function () {
  this.timeout(120_000);
  needServers();
  before(requireFreshDist);

  for (const dialect of selectedDialects() as Dialect[]) {
    describe(`[${dialect}]`, function () {
      it("the README's examples: generation, events in a transaction, filtered and LIVE polling", async function () {
        const { reference, ours } = await runBoth<{ live: Brief[]; badType: unknown }>(
          'readme',
          dialect,
        );
        expect(ours).to.deep.equal(reference);
        expect(ours.live.map((e) => e.slice(0, 2))).to.deep.equal([
          ['1', 'INT_EVENT'],
          ['2', 'STR_EVENT'],
          ['3', 'ARRAY_EVENT'],
          ['4', 'OBJECT_EVENT'],
          ['5', 'NULL_EVENT'],
          ['6', 'NEW_ENTRY'],
        ]);
        expect(ours.live.every((e) => e[3])).to.equal(true);
        expect(ours.badType).to.deep.equal([true, 'Invalid event type: bad type']);
      });

      it('a ReliableReceiverService subclass pushed to in process; pushError as the reference emits it', async function () {
        const { reference, ours } = await runBoth<{ received: unknown[] }>('pushReceiver', dialect);
        expect(ours).to.deep.equal(reference);
        expect(ours.received).to.deep.equal([
          ['1', 'USR_ADD'],
          ['3', 'USR_MOD'],
          ['4', 'USR_LOGIN'],
        ]);
      });

      it('LiveReceiver and ReliableReceiver, with and without a component; Already started!', async function () {
        const { reference, ours } = await runBoth<{ consumers: string[]; again: string }>(
          'receivers',
          dialect,
        );
        expect(ours).to.deep.equal(reference);
        // Without a component, nothing registers: it is the LIVE stream.
        expect(ours.consumers).to.deep.equal(['RELIABLE']);
        expect(ours.again).to.equal('Already started!');
      });

      it('the archiver counts processedEvents per warehouse insert, as the reference', async function () {
        // 231 events added one call each, then archived, by both packages: on a loaded machine
        // MariaDB's commits alone took most of two minutes. This only bounds a hang.
        this.timeout(360_000);
        const { reference, ours } = await runBoth<{ total: number; history: unknown[] }>(
          'archiver',
          dialect,
        );
        expect(ours).to.deep.equal(reference);
        expect(ours.total).to.equal(231);
        expect(ours.history).to.have.length(231);
      });

      it('the discarder deletes what every consumer has, but keeps the newest event (a documented difference)', async function () {
        const { reference, ours } = await runBoth<Record<string, unknown>>('discarder', dialect);
        expect(ours['afterSlow'])
          .to.deep.equal(reference['afterSlow'])
          .and.deep.equal(['4', '5', '6']);
        // The reference deletes everything delivered; we keep the newest event, so that IDs never
        // restart on MySQL/MariaDB before 8.0 / 10.2.4 (AUTO_INCREMENT from the highest left).
        expect(reference['afterAll']).to.deep.equal([]);
        expect(ours['afterAll']).to.deep.equal(['6']);
      });

      it('DBServiceApp from databaseConfig; close(done) calls back once our connections are closed', async function () {
        const reference = await runApp('serviceApp', REFERENCE, dialect);
        await reference.drop();
        const ours = await runApp('serviceApp', OURS, dialect);
        try {
          expect(ours.outcome).to.deep.equal(reference.outcome);
          // SQLite: no connection was left to close after the callback (the last one removes
          // the WAL file).
          if (dialect === 'sqlite') expect(ours.walAtClose, 'WAL file at close').to.equal(false);
          // Not before: the next step on the same database finds it free.
          expect(await openConnections(ours.active)).to.equal(dialect === 'sqlite' ? 'delete' : 0);
        } finally {
          await ours.drop();
        }
      });

      it('subclasses of PollService and DBPollService written against its hooks', async function () {
        for (const name of ['customPollService', 'dbPollSubclass']) {
          const { reference, ours } = await runBoth<{ calls: unknown[] }>(name, dialect);
          expect(ours, name).to.deep.equal(reference);
          expect(ours.calls, name).to.not.be.empty;
        }
      });

      it('where we differ on purpose: README example 7 as written works; an unsupported hook is refused', async function () {
        // PollFace speaks FTN18 1.1 by default; the reference serves poll as push's parent 1.0.
        const face = await runBoth<{ poll: string | null }>('pollFaceOnPush', dialect);
        expect(face.reference.poll).to.equal('NotSupportedVersion');
        expect(face.ours.poll).to.equal(null);
        // A DBPushService subclass's _pollEvents would not see push sessions' reads here.
        const hook = await runBoth<{ thrown: string[] | null }>('dbPushPollHook', dialect);
        expect(hook.reference.thrown).to.equal(null);
        expect(hook.ours.thrown?.[0]).to.equal('UnsupportedHookError');
        expect(hook.ours.thrown?.[1]).to.match(/^Filtered overrides _pollEvents/);
      });
    });
  }

  it('a receiver that cannot connect reports Disconnect, as the reference', async function () {
    const reference = await runApp('unreachable', REFERENCE, 'sqlite');
    await reference.drop();
    const ours = await runApp('unreachable', OURS, 'sqlite');
    await ours.drop();
    expect(ours.outcome).to.deep.equal(reference.outcome);
    expect(ours.outcome).to.deep.equal({ first: ['Disconnect', 'Lost connection'] });
  });
});
