/**
 * Example: a reliable polling consumer of futoin.evt.poll (PollFace).
 *
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret npx tsx examples/poll-consumer.ts
 *
 * Settings (environment):
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/)
 *   EVTSTREAM_CREDENTIALS  "user:secret" of a user the service knows (required)
 *   EVTSTREAM_COMPONENT    the consumer's component name (default example); the service keeps
 *                          one position per user and component
 *   EVTSTREAM_MAX_EVENTS   stop after this many events (default: run until Ctrl+C)
 *   EVTSTREAM_IDLE_EXIT_MS stop after this long without events (default: never)
 *
 * Reliable delivery: a registered consumer gets every event, in ID order, at least once. Each
 * pollEvents(component, last_id) acknowledges everything up to last_id, and the service stores
 * that position; it returns the events after it. After a restart, poll with the last ID you
 * processed (stored with your own data, ideally in the same transaction), or with none to go on
 * from the stored position: events after your last acknowledgement come again, so processing
 * must tolerate seeing an event twice.
 */
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { PollFace, type Event } from 'ftn18-eventstream';
import { PollFace } from '../src/common/faces/PollFace';
import type { Event } from '../src/delivery/poll/PollService';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}
const component = process.env['EVTSTREAM_COMPONENT'] || 'example';

function positiveInt(name: string): number | null {
  const value = process.env[name];
  if (!value) return null;
  if (!/^[1-9]\d*$/.test(value)) {
    console.error(`${name} must be a positive integer, not "${value}"`);
    process.exit(1);
  }
  return Number(value);
}
const maxEvents = positiveInt('EVTSTREAM_MAX_EVENTS') ?? Infinity;
const idleExitMs = positiveInt('EVTSTREAM_IDLE_EXIT_MS');

/** Polling delay: none while events keep coming, then doubling from 20 ms up to 1 s. */
const MIN_DELAY_MS = 20;
const MAX_DELAY_MS = 1000;

const ccm = new AdvancedCCM();
let lastId: string | null = null;
let received = 0;
let lastEventAt = Date.now();
let delayMs = 0;

// Ctrl+C (SIGINT) or SIGTERM: finish the poll in progress, acknowledge, close, exit 0.
let stopping: string | null = null;
let wakeUp: (() => void) | null = null;
const stop = (why: string): void => {
  stopping ??= why;
  wakeUp?.();
};
const onSignal = (signal: string): void => stop(signal);
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
const done = (exitCode: number): void => {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  ccm.close();
  process.exitCode = exitCode;
};

/** Waits `ms` (ended early by stop()). */
function sleep(as: AsyncSteps, ms: number): void {
  as.add((as) => {
    if (ms <= 0 || stopping) return;
    const timer = setTimeout(() => {
      wakeUp = null;
      as.success();
    }, ms);
    wakeUp = () => {
      wakeUp = null;
      clearTimeout(timer);
      as.success();
    };
    // Waits for as.success() from outside the step; clears the timer if the steps are canceled.
    as.setCancel(() => clearTimeout(timer));
  });
}

/** What to do with an event: here, print it. */
function handle(event: Event): void {
  console.log(`event ${event.id} ${event.type} ${event.ts} ${JSON.stringify(event.data)}`);
}

$as()
  .add(
    (as) => {
      // pollEvents answers at once (with no events when there are none), so a short call
      // timeout is safe. It also bounds how long a call waits for a WebSocket that cannot
      // connect (futoin-invoker then fails it with Timeout rather than CommError).
      PollFace.register(as, ccm, '#evtpoll', url, credentials, { callTimeoutMS: 5000 });
      as.add((as) => {
        const poll = ccm.iface<PollFace>('#evtpoll');
        // Registration makes the service keep this consumer's position (and keep its events).
        // It is idempotent: call it at every start.
        poll.registerConsumer(as, component);
        as.add((_as) => {
          console.log(`consumer "${component}" registered at ${url}`);
        });

        as.loop((as) => {
          if (stopping) as.break();
          if (idleExitMs !== null && Date.now() - lastEventAt >= idleExitMs) {
            stopping = `no events for ${idleExitMs} ms`;
            as.break();
          }
          as.add(
            (as) => poll.pollEvents(as, component, lastId),
            (as, err) => {
              // The service is unreachable (restarting?): wait and try again. Other errors, such
              // as SecurityError, end the consumer.
              if (err !== 'CommError' && err !== 'Timeout') return;
              console.error(
                `poll failed (${err}${as.state.error_info ? `: ${as.state.error_info}` : ''}); retrying`,
              );
              as.success([]);
            },
          );
          as.add((as, events: Event[]) => {
            for (const event of events) {
              handle(event);
              // Only now is the event processed: the next poll acknowledges it.
              lastId = event.id;
              if (++received >= maxEvents) {
                stopping = `received ${received} events`;
                break;
              }
            }
            if (events.length > 0) lastEventAt = Date.now();
            // Poll again at once while there are events; back off while there are none.
            delayMs =
              events.length > 0 ? 0 : Math.min(Math.max(delayMs * 2, MIN_DELAY_MS), MAX_DELAY_MS);
            sleep(as, delayMs);
          });
        });

        // Acknowledge the last events processed, so that the next run goes on after them (the
        // events this poll returns are not processed, so they come again next time).
        as.add((as) => {
          if (lastId !== null) poll.pollEvents(as, component, lastId);
        });
        as.add((_as) => {
          console.log(`stopped (${stopping}): ${received} events, last_id ${lastId ?? 'none'}`);
          done(0);
        });
      });
    },
    (as, err) => {
      console.error(
        `poll-consumer failed: ${err}${as.state.error_info ? `: ${as.state.error_info}` : ''}`,
      );
      done(1);
    },
  )
  .execute();
