/**
 * Example: a reliable push consumer (ReliableReceiver over futoin.evt.push).
 *
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret npx tsx examples/push-consumer.ts
 *
 * Settings (environment):
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/)
 *   EVTSTREAM_CREDENTIALS  "user:secret" of a user the service knows (required)
 *   EVTSTREAM_COMPONENT    the consumer's component name (default pusher)
 *   EVTSTREAM_WANT         event types to receive, comma-separated (default: all)
 *   EVTSTREAM_MAX_EVENTS   stop after this many events (default: run until Ctrl+C)
 *
 * The service pushes the consumer's backlog, then new events within milliseconds, in ID order,
 * over the WebSocket. An onEvents call that succeeds is the acknowledgement: the service moves
 * the consumer's stored position past those events. If _onEvents fails (or the process dies),
 * the service sends the unacknowledged events again, so handling must tolerate seeing an event
 * twice. The receiver reconnects by itself, with growing delays, after any failure.
 */
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { ReliableReceiver, type Event } from 'ftn18-eventstream/receiver';
import type { Event } from '../src/delivery/poll/PollService';
import { ReliableReceiver } from '../src/receiving/ReliableReceiver';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}
const component = process.env['EVTSTREAM_COMPONENT'] || 'pusher';
const want = process.env['EVTSTREAM_WANT'] ? process.env['EVTSTREAM_WANT'].split(',') : null;
const maxEvents = Number(process.env['EVTSTREAM_MAX_EVENTS'] || Infinity);

const ccm = new AdvancedCCM();
let received = 0;

const stop = (why: string): void => {
  console.log(`stopped (${why}): ${received} events`);
  // Closing the CCM stops the receiver too.
  ccm.close();
};

class Printer extends ReliableReceiver {
  /** Called with each pushed group, in order; add steps here for asynchronous work. */
  protected override _onEvents(_as: AsyncSteps, events: Event[]): void {
    for (const event of events) {
      console.log(`event ${event.id} ${event.type} ${event.ts} ${JSON.stringify(event.data)}`);
      if (++received === maxEvents) setImmediate(() => stop(`received ${received} events`));
    }
  }
}

const receiver = new Printer(ccm);
receiver.on('ready', () => console.log(`consumer "${component}" receiving from ${url}`));
receiver.on('workerError', (code, info) =>
  console.error(`connection: ${code}${info ? `: ${info}` : ''}; retrying`),
);
receiver.start(url, credentials, { component, want });

process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
