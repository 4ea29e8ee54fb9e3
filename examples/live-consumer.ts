/**
 * Example: a LIVE consumer (LiveReceiver): new events as they happen, best effort, no
 * registration and no stored position. A slow LIVE consumer may miss events (the service drops
 * the oldest queued ones); a reliable consumer (push-consumer.ts) never does.
 *
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret npx tsx examples/live-consumer.ts
 *
 * Settings (environment): EVTSTREAM_URL, EVTSTREAM_CREDENTIALS (required), EVTSTREAM_WANT
 * (comma-separated types, default all), EVTSTREAM_MAX_EVENTS (default: until Ctrl+C).
 */
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { LiveReceiver, type Event } from 'ftn18-eventstream/receiver';
import type { Event } from '../src/delivery/poll/PollService';
import { LiveReceiver } from '../src/receiving/LiveReceiver';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}
const want = process.env['EVTSTREAM_WANT'] ? process.env['EVTSTREAM_WANT'].split(',') : null;
const maxEvents = Number(process.env['EVTSTREAM_MAX_EVENTS'] || Infinity);

const ccm = new AdvancedCCM();
let received = 0;
const stop = (why: string): void => {
  console.log(`stopped (${why}): ${received} events`);
  ccm.close();
};

class Printer extends LiveReceiver {
  protected override _onEvents(_as: AsyncSteps, events: Event[]): void {
    for (const event of events) {
      console.log(`live ${event.id} ${event.type} ${JSON.stringify(event.data)}`);
      if (++received === maxEvents) setImmediate(() => stop(`received ${received} events`));
    }
  }
}

const receiver = new Printer(ccm);
receiver.on('ready', () => console.log(`live consumer receiving from ${url}`));
receiver.on('workerError', (code, info) =>
  console.error(`connection: ${code}${info ? `: ${info}` : ''}; retrying`),
);
receiver.start(url, credentials, { want });

process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
