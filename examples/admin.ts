/**
 * Example: operating the stream from code with ftn18es.admin (AdminFace): statistics, the
 * consumers with their lag, and replaying a consumer from a new position.
 *
 *   EVTSTREAM_CREDENTIALS=root:root-secret npx tsx examples/admin.ts
 *   EVTSTREAM_CREDENTIALS=root:root-secret EVTSTREAM_RESET=alice:EXAMPLES EVTSTREAM_RESET_TO=start \
 *     npx tsx examples/admin.ts
 *
 * Settings (environment):
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/)
 *   EVTSTREAM_CREDENTIALS  "name:secret" of an admin (evtstream serve --admins FILE or
 *                          EVTSTREAM_ADMINS); anyone else gets SecurityError
 *   EVTSTREAM_RESET        a consumer (user:component) to move, optionally with
 *   EVTSTREAM_RESET_TO     start (default), newest, an event ID or an ISO 8601 UTC time
 *
 * A moved consumer receives from the new position on its next poll (whatever last_id it
 * sends) or, when pushed to, in a new push session: the service ends the current one and the
 * receiver reconnects. Every move is recorded with who made it and why (listMoves).
 */
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { AdminFace, type ConsumerInfo, ... } from 'ftn18-eventstream';
import type { ConsumerInfo, StreamStats } from '../src/ops/admin';
import { AdminFace, type MoveTarget } from '../src/common/faces/AdminFace';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "name:secret" of an admin of the service');
  process.exit(1);
}
const reset = process.env['EVTSTREAM_RESET'];
const resetTo = process.env['EVTSTREAM_RESET_TO'] || 'start';

/** start/newest, an event ID or a time, as moveConsumer takes them. */
function target(to: string): { to: MoveTarget; id?: string; time?: string } {
  if (to === 'start' || to === 'newest') return { to };
  if (/^\d+$/.test(to)) return { to: 'id', id: to };
  return { to: 'time', time: to };
}

const ccm = new AdvancedCCM();
$as()
  .add(
    (as: AsyncSteps) => {
      AdminFace.register(as, ccm, 'admin', url, credentials);
      as.add((as) => ccm.iface<AdminFace>('admin').stats(as));
      as.add((as, { stats }: { stats: StreamStats }) => {
        console.log(
          `newest event ${stats.newest_id}, ${stats.active_events} active events, ` +
            `${stats.events_per_sec}/s, ${stats.consumers} consumers, ${stats.push_sessions} push sessions`,
        );
        ccm.iface<AdminFace>('admin').listConsumers(as);
      });
      as.add((as, { consumers }: { consumers: ConsumerInfo[] }) => {
        for (const c of consumers) {
          console.log(
            `consumer ${c.ident} ${c.mode} at ${c.pointer}, ${c.lag_events}${c.lag_capped ? '+' : ''} events behind`,
          );
        }
        if (reset) {
          const t = target(resetTo);
          ccm.iface<AdminFace>('admin').moveConsumer(as, reset, t.to, {
            ...t,
            reason: 'replayed by examples/admin.ts',
          });
          as.add((_as, moved: { from: string; pointer: string }) =>
            console.log(`moved ${reset} from ${moved.from} to ${moved.pointer}`),
          );
        }
      });
    },
    (as, err) => {
      console.error(`failed: ${err}: ${String(as.state.error_info ?? '')}`);
      process.exitCode = 1;
      ccm.close();
    },
  )
  .add((_as) => ccm.close())
  .execute();
