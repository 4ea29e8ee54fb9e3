/**
 * Example: add standalone events to the stream with futoin.evt.gen (GenFace).
 *
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret npx tsx examples/add-event.ts
 *
 * Settings (environment):
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/). The "secure+"
 *                          prefix tells futoin-invoker that the channel is secure: FTN18 lets
 *                          addEvent run on secure channels only, and the service counts loopback
 *                          connections as secure. For a remote service use wss:// or https://.
 *   EVTSTREAM_CREDENTIALS  "user:secret" of a user the service knows (required)
 *
 * Each addEvent call commits one event and succeeds with its ID (a decimal string). Events that
 * must appear together with your own database changes belong in your transaction instead: see
 * xfer-event.ts.
 */
import $as from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { GenFace } from 'ftn18-eventstream';
import { GenFace } from '../src/common/faces/GenFace';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}

const ccm = new AdvancedCCM();
// futoin-invoker limits every endpoint of the 'default' zone to 10 calls per second unless told
// otherwise; a producer needs more than that.
ccm.limitZone('default', {
  concurrent: 100,
  max_queue: 1000,
  rate: 1e6,
  period_ms: 1000,
  burst: 100,
});

const users = [
  { login: 'ada', name: 'Ada Lovelace' },
  { login: 'alan', name: 'Alan Turing' },
  { login: 'grace', name: 'Grace Hopper' },
];

$as()
  .add(
    (as) => {
      // '#evtgen' is the CCM name FutoIn services use for the generator.
      GenFace.register(as, ccm, '#evtgen', url, credentials);

      as.add((as) => {
        const gen = ccm.iface<GenFace>('#evtgen');
        as.forEach(users, (as, _i, user) => {
          // Type: 1-16 characters of A-Z, 0-9 and _. Data: anything JSON can carry.
          gen.addEvent(as, 'USER_CREATED', { ...user, at: new Date().toISOString() });
          as.add((_as, id: string) => {
            console.log(`added USER_CREATED event ${id} for ${user.login}`);
          });
        });
      });
      // A step must take its AsyncSteps argument, even when it does not use it.
      as.add((_as) => {
        console.log(`added ${users.length} events to ${url}`);
        ccm.close();
      });
    },
    (as, err) => {
      // FutoIn errors are codes (SecurityError, InvalidRequest, CommError...) with details in
      // error_info.
      console.error(
        `addEvent failed: ${err}${as.state.error_info ? `: ${as.state.error_info}` : ''}`,
      );
      ccm.close();
      process.exitCode = 1;
    },
  )
  .execute();
