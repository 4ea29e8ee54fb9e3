/**
 * Example: an event inside your own database transaction (the "transactional outbox").
 *
 * DBGenFace#addXferEvent adds the event INSERT to a futoin-database transaction (XferBuilder) of
 * yours, so the event exists if and only if that transaction commits: no event for a change that
 * was rolled back, and no change without its event. It needs the same database as the event
 * stream service, which delivers the event like any other once the transaction commits.
 *
 *   DB_EVT_TYPE=sqlite DB_EVT_PORT=evtstream.sqlite \
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret npx tsx examples/xfer-event.ts
 *
 * Settings (environment):
 *   DB_EVT_TYPE, DB_EVT_HOST, DB_EVT_PORT, DB_EVT_USER, DB_EVT_PASS, DB_EVT_DB
 *                          the service's database, as futoin-database AutoConfig reads it:
 *                          TYPE is sqlite, postgresql or mysql. For SQLite the file goes in
 *                          DB_EVT_SOCKET or DB_EVT_PORT (default: sqlite, evtstream.sqlite in the
 *                          working folder, where "evtstream serve" puts it by default).
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/)
 *   EVTSTREAM_CREDENTIALS  "user:secret" of a user the service knows (required)
 *
 * The tables (evt_queue) must exist: start the service once or run "evtstream migrate" first.
 */
import crypto from 'crypto';
import path from 'path';
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { L2Face } from 'futoin-database';
import AutoConfig from 'futoin-database/AutoConfig';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { DBGenFace } from 'ftn18-eventstream';
import { DBGenFace } from '../src/generation/DBGenFace';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}

// The DB_EVT_* variables, with SQLite in the working folder as the default. AutoConfig reads
// DB_EVT_PORT as a number, so a SQLite file name given there is passed on as DB_EVT_SOCKET,
// which AutoConfig takes as it is.
const dbEnv: Record<string, string | undefined> = { ...process.env };
dbEnv['DB_EVT_TYPE'] ||= 'sqlite';
if (dbEnv['DB_EVT_TYPE'] === 'sqlite') {
  dbEnv['DB_EVT_SOCKET'] = path.resolve(
    dbEnv['DB_EVT_SOCKET'] || dbEnv['DB_EVT_PORT'] || 'evtstream.sqlite',
  );
}
const where =
  dbEnv['DB_EVT_TYPE'] === 'sqlite'
    ? `sqlite:${dbEnv['DB_EVT_SOCKET']}`
    : `${dbEnv['DB_EVT_TYPE']}://${dbEnv['DB_EVT_HOST'] ?? 'localhost'}/${dbEnv['DB_EVT_DB'] ?? ''}`;

const EVENT_TABLE = 'evt_queue';
const ccm = new AdvancedCCM();

/** The newest event ID now ('0' when there is none). */
function lastEventId(as: AsyncSteps, db: L2Face): void {
  db.select(EVENT_TABLE).get('last_id', 'COALESCE(MAX(id), 0)').execute(as);
  as.add((as, res: unknown) => {
    // A number or a string, depending on the database driver.
    const lastId = db.associateResult(res)[0]?.['last_id'] as number | string | undefined;
    as.success(String(lastId ?? '0'));
  });
}

/** The ACCOUNT_OPENED events after `afterId` about `account` (ID and data of each). */
function accountEvents(as: AsyncSteps, db: L2Face, afterId: string, account: string): void {
  db.select(EVENT_TABLE)
    .get(['id', 'data'])
    .where('id >', afterId)
    .where('type', 'ACCOUNT_OPENED')
    .execute(as);
  as.add((as, res: unknown) => {
    const events = db
      .associateResult(res)
      .map((row) => ({
        id: String(row['id']),
        // JSON text on SQLite and MySQL; PostgreSQL's driver parses its JSON column already.
        data: (typeof row['data'] === 'string' ? JSON.parse(row['data']) : row['data']) as {
          account?: string;
          owner?: string;
        },
      }))
      .filter((e) => e.data.account === account);
    as.success(events);
  });
}

/** How many rows of `accounts` have this ID, and the owner of the first one. */
function accountRows(as: AsyncSteps, db: L2Face, account: string): void {
  db.select('accounts').get(['id', 'owner']).where('id', account).execute(as);
  as.add((as, res: unknown) => {
    const rows = db.associateResult(res);
    as.success(rows.length, rows[0]?.['owner']);
  });
}

const account = `acc-${crypto.randomBytes(4).toString('hex')}`;
let before = '0';

$as()
  .add(
    (as) => {
      // Registers #db.evt from the DB_EVT_* variables (one more database connection of yours).
      // MySQL/MariaDB: the mysql driver talks 3-byte utf8 unless told otherwise, and emoji in
      // event data would fail; ask for utf8mb4.
      AutoConfig(
        as,
        ccm,
        { evt: dbEnv['DB_EVT_TYPE'] === 'mysql' ? { raw: { charset: 'UTF8MB4_UNICODE_CI' } } : {} },
        dbEnv,
      );
      // A DBGenFace instance for addXferEvent. addXferEvent itself never calls the service: it
      // only adds an INSERT to your transaction. The same face can also addEvent over the network.
      DBGenFace.register(as, ccm, '#evtgen', url, credentials);

      as.add((as) => {
        const db = ccm.iface<L2Face>('#db.evt');
        const gen = ccm.iface<DBGenFace>('#evtgen');
        console.log(`database ${where}`);

        // Your own business table (SQL that SQLite, PostgreSQL and MySQL/MariaDB all accept).
        db.query(
          as,
          'CREATE TABLE IF NOT EXISTS accounts (' +
            'id VARCHAR(32) NOT NULL PRIMARY KEY, owner VARCHAR(64) NOT NULL, balance INTEGER NOT NULL)',
        );
        as.add((as) => lastEventId(as, db));
        as.add((as, lastId: string) => {
          before = lastId;

          // 1. One transaction: the account row and its event. Both commit, or neither does.
          const xfer = db.newXfer();
          xfer.insert('accounts').set({ id: account, owner: 'Ada', balance: 100 });
          gen.addXferEvent(xfer, 'ACCOUNT_OPENED', {
            account,
            owner: 'Ada',
            balance: 100,
            note: 'Welcome! 🎉',
          });
          xfer.execute(as);
        });
        as.add((as) => accountEvents(as, db, before, account));
        as.add((as, events: Array<{ id: string }>) => {
          if (events.length !== 1) as.error('UnexpectedResult', 'the committed event is missing');
          console.log(
            `committed: account ${account} and its ACCOUNT_OPENED event ${events[0]?.id}`,
          );
        });

        // 2. A transaction that fails: the event INSERT runs first, then the account INSERT hits
        //    the primary key (Duplicate). The whole transaction rolls back, the event with it:
        //    no consumer ever sees an ACCOUNT_OPENED for an account that was never opened.
        //    (On PostgreSQL and MySQL the rolled-back INSERT still used up an event ID: IDs grow
        //    but may have gaps, which the service's delivery takes into account.)
        as.add(
          (as) => {
            const xfer = db.newXfer();
            gen.addXferEvent(xfer, 'ACCOUNT_OPENED', { account, owner: 'Mallory', balance: 1e6 });
            xfer.insert('accounts').set({ id: account, owner: 'Mallory', balance: 1e6 });
            xfer.execute(as);
            as.add((as) => as.error('UnexpectedResult', 'the duplicate account was accepted'));
          },
          (as, err) => {
            if (err !== 'Duplicate') return; // anything else: let it fail the example
            console.log(`rolled back: the second transaction failed with ${err}`);
            as.success();
          },
        );
        as.add((as) => accountRows(as, db, account));
        as.add((as, count: number, owner: unknown) => {
          if (count !== 1 || owner !== 'Ada') as.error('UnexpectedResult', 'accounts changed');
          accountEvents(as, db, before, account);
        });
        as.add((as, events: Array<{ data: { owner?: string } }>) => {
          if (events.length !== 1 || events.some((e) => e.data.owner === 'Mallory'))
            as.error('UnexpectedResult', 'the rolled-back event is in evt_queue');
          console.log('after the rollback: still one account row and one event, none from Mallory');
          ccm.close();
        });
      });
    },
    (as, err) => {
      console.error(
        `xfer-event failed: ${err}${as.state.error_info ? `: ${as.state.error_info}` : ''}`,
      );
      ccm.close();
      process.exitCode = 1;
    },
  )
  .execute();
