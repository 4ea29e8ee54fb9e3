/**
 * Example: keep the active database small (DBEventDiscarder as its own process).
 *
 *   DB_EVT_TYPE=sqlite DB_EVT_PORT=evtstream.sqlite EVTSTREAM_KEEP_FOR=7d \
 *   npx tsx examples/discarder.ts
 *
 * Settings (environment):
 *   DB_EVT_TYPE, DB_EVT_HOST, DB_EVT_PORT, DB_EVT_USER, DB_EVT_PASS, DB_EVT_DB
 *                          the service's database, as futoin-database AutoConfig reads it (see
 *                          examples/xfer-event.ts; default: sqlite, evtstream.sqlite here)
 *   EVTSTREAM_KEEP_FOR     keep events younger than this even when delivered (e.g. 7d, 12h, 30m;
 *                          default 0)
 *   EVTSTREAM_DISCARD_EVERY  time between passes (default 10m)
 *   EVTSTREAM_PASSES       stop after this many passes (default: run until Ctrl+C)
 *
 * Each pass deletes from evt_queue, in batches of limit_at_once events (each its own short
 * transaction), the events that every registered reliable consumer has acknowledged: up to the
 * lowest consumer position, never past what readers know to be final. The newest event always
 * stays, so IDs keep growing on every database. No consumer at all means nothing is deleted:
 * register the archiver (or any consumer) first. A consumer that stopped reading holds events
 * back until it is removed, unless stale_consumer_ms says when to stop waiting for it.
 *
 * `evtstream serve --discard --keep-for 7d` runs the same discarder inside the service.
 */
import path from 'path';
import $as from 'futoin-asyncsteps';
import AutoConfig from 'futoin-database/AutoConfig';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { DBEventDiscarder, parseDuration } from 'ftn18-eventstream';
import { parseDuration } from '../src/common/time';
import { DBEventDiscarder } from '../src/maintenance/DBEventDiscarder';

const keepFor = parseDuration(process.env['EVTSTREAM_KEEP_FOR'] || 0, 'EVTSTREAM_KEEP_FOR');
const every = parseDuration(
  process.env['EVTSTREAM_DISCARD_EVERY'] || '10m',
  'EVTSTREAM_DISCARD_EVERY',
);
const maxPasses = Number(process.env['EVTSTREAM_PASSES'] || Infinity);

// The DB_EVT_* variables, SQLite in the working folder by default (as in xfer-event.ts).
const dbEnv: Record<string, string | undefined> = { ...process.env };
dbEnv['DB_EVT_TYPE'] ||= 'sqlite';
if (dbEnv['DB_EVT_TYPE'] === 'sqlite') {
  dbEnv['DB_EVT_SOCKET'] = path.resolve(
    dbEnv['DB_EVT_SOCKET'] || dbEnv['DB_EVT_PORT'] || 'evtstream.sqlite',
  );
}

const ccm = new AdvancedCCM();
const discarder = new DBEventDiscarder();
let passes = 0;
let total = 0;

let stopped = false;
const stop = (why: string): void => {
  if (stopped) return;
  stopped = true;
  // Resolves after the statement in progress, if any; closing the CCM closes the database.
  void discarder.stop().then(() => {
    console.log(`stopped (${why}): ${total} events discarded in ${passes} passes`);
    ccm.close();
  });
};

// One line per DELETE batch (listeners run asynchronously, in order).
discarder.on('eventDiscard', (count, lastId) =>
  console.log(`discarded ${count} events up to ${lastId}`),
);
discarder.on('passEnd', (result) => {
  passes++;
  total += result.deleted;
  console.log(`pass ${passes}: ${result.deleted} events deleted in ${result.batches} batches`);
  if (passes >= maxPasses) stop(`${passes} passes`);
});
discarder.on('staleConsumer', (ident, pointer) =>
  console.log(`ignored stale consumer ${ident} at ${pointer}`),
);
discarder.on('workerError', (code, info) =>
  console.error(`discarder: ${code}${info ? `: ${info}` : ''}; next pass retries`),
);

$as()
  .add(
    (as) => {
      // Registers #db.evt; the discarder finds the event tables through it.
      AutoConfig(as, ccm, { evt: {} }, dbEnv);
      as.add((_as) => {
        discarder.start(ccm, { keep_for: keepFor, poll_period_ms: every });
        console.log(`discarding every ${every} ms, keeping events younger than ${keepFor} ms`);
      });
    },
    (as, err) => {
      console.error(`failed: ${err}: ${String(as.state.error_info ?? '')}`);
      ccm.close();
      process.exitCode = 1;
    },
  )
  .execute();

process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
