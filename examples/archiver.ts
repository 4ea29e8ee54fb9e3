/**
 * Example: archive the stream into a warehouse database (DBEventArchiver as its own process).
 *
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret EVTSTREAM_DWH=sqlite:warehouse.sqlite \
 *   npx tsx examples/archiver.ts
 *
 * Settings (environment):
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/)
 *   EVTSTREAM_CREDENTIALS  "user:secret" of a user the service knows (required)
 *   EVTSTREAM_DWH          the warehouse: sqlite:PATH, postgres://... or mysql://... (default
 *                          sqlite:warehouse.sqlite in the working folder); it may be another kind
 *                          of database than the service's. Its evt_history table is created.
 *   EVTSTREAM_MAX_EVENTS   stop after archiving this many events (default: run until Ctrl+C)
 *
 * The archiver is a reliable consumer, ARCHIVER, of the caller's user: the service pushes it every
 * event, and each pushed batch is written to evt_history in one warehouse transaction before the
 * push is answered, so the service moves the archiver's position only past what is stored. A
 * batch sent again after a failure is written once: rows are keyed by event ID. Without a
 * WebSocket (an http:// URL) it polls instead. It reconnects by itself after any failure.
 *
 * `evtstream serve --dwh URL` runs the same archiver inside the service. Read the warehouse with
 * `evtstream events --dwh URL`.
 */
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { DBEventArchiver, describeConnection, parseDbUrl } from 'ftn18-eventstream';
import { DBEventArchiver } from '../src/maintenance/DBEventArchiver';
import { describeConnection, parseDbUrl } from '../src/storage/config';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}
const warehouse = parseDbUrl(process.env['EVTSTREAM_DWH'] || 'sqlite:warehouse.sqlite');
const maxEvents = Number(process.env['EVTSTREAM_MAX_EVENTS'] || Infinity);

const ccm = new AdvancedCCM();
// Without options.warehouse, the archiver writes through futoin-database's #db.evtdwh of `ccm`,
// as the reference's does (register it with AutoConfig and the DB_EVTDWH_* variables).
const archiver = new DBEventArchiver(ccm, { warehouse });
let archived = 0;

let stopped = false;
const stop = (why: string): void => {
  if (stopped) return;
  stopped = true;
  console.log(`stopped (${why}): ${archived} events archived`);
  archiver.stop();
  ccm.close();
  // Resolves once the batch in progress, if any, is written and the warehouse closed.
  void archiver.whenStopped().then(() => process.exit(0));
};

archiver.on('ready', () => console.log(`archiving ${url} into ${describeConnection(warehouse)}`));
// Emitted once a batch is committed in the warehouse, per INSERT: their count and the events.
archiver.on('processedEvents', (count, events) => {
  archived += count;
  console.log(`archived ${count} events up to ${events.at(-1)?.id ?? '?'}`);
  if (archived >= maxEvents) stop(`archived ${archived} events`);
});
archiver.on('workerError', (code, info) =>
  console.error(`archiver: ${code}${info ? `: ${info}` : ''}; retrying`),
);
archiver.start(url, credentials);

process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
