/**
 * Example: the event stream inside your own service process (DBServiceApp, all in one).
 *
 *   EVTSTREAM_USERS=alice:alice-secret EVTSTREAM_DWH=sqlite:warehouse.sqlite \
 *   npx tsx examples/app.ts
 *
 * Settings (environment):
 *   EVTSTREAM_DB     the active database: sqlite:PATH, postgres://... or mysql://... (default
 *                    sqlite:evtstream.sqlite in the working folder); migrated at start
 *   EVTSTREAM_DWH    a warehouse to archive every event to (default: no archiving)
 *   EVTSTREAM_KEEP_FOR  delivered events younger than this stay in the active database
 *                    (default 7d); older ones every consumer has are discarded
 *   EVTSTREAM_USERS  "user:secret,..." allowed to call the services (required)
 *   EVTSTREAM_PORT   HTTP and WebSocket port on 127.0.0.1 (default 8080; 0 picks a free one)
 *
 * One DBServiceApp gives your process: futoin-database's #db.evt (and #db.evtdwh) in the CCM for
 * your own transactions; futoin.evt.gen, futoin.evt.push and futoin.evt.poll served to other
 * processes over HTTP and WebSocket; the faces #evtgen, #evtpush and #evtpoll for in-process
 * calls; the archiver and the discarder. Here the "business" is an orders table: each order row
 * commits together with its ORDER_PLACED event. Consumers elsewhere (examples/poll-consumer.ts,
 * push-consumer.ts) receive the events from the port printed at start.
 */
import crypto from 'crypto';
import http from 'http';
import type { AddressInfo } from 'net';
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { L2Face } from 'futoin-database';
import { AdvancedCCM } from 'futoin-invoker';
// In your project: import { ... } from 'ftn18-eventstream';
import { DBServiceApp } from '../src/app/DBServiceApp';
import { SPEC_DIRS_ALL } from '../src/common/constants';
import type { DBGenFace } from '../src/generation/DBGenFace';
import { parseDbUrl } from '../src/storage/config';
import { loadDatabaseModules } from '../src/storage/preload';
import { parseUsers, UsersSecurityProvider } from '../src/transport/auth';
import { EvtNodeExecutor } from '../src/transport/executor';

const usersText = process.env['EVTSTREAM_USERS'];
if (!usersText) {
  console.error('Set EVTSTREAM_USERS to "user:secret,..." of the users allowed to call');
  process.exit(1);
}
const database = parseDbUrl(process.env['EVTSTREAM_DB'] || 'sqlite:evtstream.sqlite');
const warehouse = process.env['EVTSTREAM_DWH'] ? parseDbUrl(process.env['EVTSTREAM_DWH']) : null;
const port = Number(process.env['EVTSTREAM_PORT'] ?? 8080);

/** Your business logic: an order row and its event, in one transaction of #db.evt. */
function placeOrder(as: AsyncSteps, ccm: AdvancedCCM, order: string, total: number): void {
  const db = ccm.iface<L2Face>('#db.evt');
  const gen = ccm.iface<DBGenFace>('#evtgen');
  const xfer = db.newXfer();
  xfer.insert('orders').set({ id: order, total });
  gen.addXferEvent(xfer, 'ORDER_PLACED', { order, total });
  xfer.execute(as);
}

async function main(): Promise<void> {
  // First the database modules, then the executor: NodeExecutor freezes Object.prototype
  // (secureObjectPrototype), and some driver modules cannot load after that.
  await loadDatabaseModules(database.dialect, ...(warehouse ? [warehouse.dialect] : []));

  const ccm = new AdvancedCCM();
  const server = http.createServer();
  const executor = new EvtNodeExecutor(ccm, {
    httpServer: server,
    httpPath: '/',
    specDirs: SPEC_DIRS_ALL,
    securityProvider: new UsersSecurityProvider(parseUsers(usersText!, /,/)),
    // Plain HTTP on loopback counts as secure here; serve TLS for anything else.
    secureLoopback: true,
  });
  const app = await DBServiceApp.start({
    ccm,
    executor,
    database,
    ...(warehouse ? { warehouse, enableArchiver: true } : {}),
    enableDiscarder: true,
    discarderOptions: { keep_for: process.env['EVTSTREAM_KEEP_FOR'] || '7d' },
  });

  // Your own code, FutoIn-style (AsyncSteps): a table, then an order with its event.
  await new Promise<void>((resolve, reject) => {
    $as()
      .add(
        (as) => {
          ccm
            .iface<L2Face>('#db.evt')
            .query(
              as,
              'CREATE TABLE IF NOT EXISTS orders (id VARCHAR(32) NOT NULL PRIMARY KEY, total INTEGER NOT NULL)',
            );
          as.add((as) => placeOrder(as, ccm, `ord-${crypto.randomBytes(4).toString('hex')}`, 42));
          as.add((_as) => resolve());
        },
        (as, err) => reject(new Error(`${err}: ${String(as.state.error_info ?? '')}`)),
      )
      .execute();
  });
  console.log('placed an order with its ORDER_PLACED event');

  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: actual } = server.address() as AddressInfo;
  console.log(
    `listening on http://127.0.0.1:${actual}/ (WebSocket ws://127.0.0.1:${actual}/)` +
      (warehouse ? ', archiving' : ''),
  );

  const stop = (): void => {
    // Stops the archiver and discarder, the executor and the CCM, then closes the databases.
    void app.close().then(() => server.close(() => console.log('stopped')));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
