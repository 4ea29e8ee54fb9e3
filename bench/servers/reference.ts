/**
 * The reference server, run as its own process: futoin-eventstream 1.3.9's DBGenService and
 * DBPushService (which also serves polling: futoin.evt.push inherits futoin.evt.poll) on a
 * futoin-executor NodeExecutor, HTTP and WebSocket on a free loopback port, with
 * LegacySecurityProvider users, on futoin-database AutoConfig's `#db.evt` (DB_EVT_* variables)
 * with the reference's own schema (sql/active/<dialect>, applied in Flyway version order).
 *
 * Settings, the same as ours gets where there is a choice: SQLite in WAL mode with
 * synchronous=NORMAL; DB_EVT_MAXCONN connections for PostgreSQL/MySQL; prodMode (no response
 * validation, as our service runs); secureChannel, as futoin.evt.gen requires one and our
 * service counts loopback as secure. Everything else is the reference's defaults.
 *
 * Self-contained (no imports of this repository): bench/servers/launch.ts transpiles it to plain
 * JavaScript and runs it with `node`, so that no TypeScript loader inflates its memory.
 *
 * Environment: DB_EVT_* (AutoConfig), BENCH_USERS ("name:secret,..."), BENCH_SCHEMA_DIR.
 * Prints "reference listening on <URL> (WebSocket <URL>), database <type>" once ready; stops on
 * SIGTERM/SIGINT.
 */
// NodeExecutor freezes Object.prototype; moment (loaded by futoin-database's query drivers)
// assigns prototype methods when loaded, so the drivers must be loaded before any NodeExecutor.
import 'futoin-database/MySQLDriver';
import 'futoin-database/PostgreSQLDriver';
import 'futoin-database/SQLiteDriver';
import fs from 'fs';
import http, { type IncomingMessage } from 'http';
import type net from 'net';
import path from 'path';
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { L2Face } from 'futoin-database';
import AutoConfig from 'futoin-database/AutoConfig';
import { type Executor, NodeExecutor } from 'futoin-executor';
import LegacySecurityProvider from 'futoin-executor/LegacySecurityProvider';
import { AdvancedCCM } from 'futoin-invoker';

/** The reference services: untyped CommonJS, typed here from their sources. */
interface RefServiceClass {
  register(as: AsyncSteps, executor: Executor, options?: Record<string, unknown>): RefService;
}
interface RefService {
  on(event: string, handler: (...args: unknown[]) => void): void;
}
/* eslint-disable @typescript-eslint/no-require-imports -- see RefServiceClass */
const RefDBGenService = require('futoin-eventstream/DBGenService') as RefServiceClass;
const RefDBPushService = require('futoin-eventstream/DBPushService') as RefServiceClass;
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * futoin-executor 2.3.7's NodeExecutor with one guard: when a WebSocket closes while a call to
 * the client is in flight (a push), its 'close' listener fails that call with AsyncSteps#error,
 * which always throws — an uncaught exception that would end the process when the benchmark
 * client disconnects. (A futoin-executor bug, not the reference's; our service guards it too.)
 */
class GuardedNodeExecutor extends NodeExecutor {
  override handleWSConnection(upgradeReq: IncomingMessage, ws: unknown): void {
    const socket = ws as { on(event: string, listener: (...args: unknown[]) => void): unknown };
    const on = socket.on.bind(socket);
    socket.on = (event, listener) =>
      on(event, (...args: unknown[]) => {
        try {
          listener(...args);
        } catch (e) {
          if (event !== 'close' || (e as Error).message !== 'CommError') throw e;
        }
      });
    try {
      super.handleWSConnection(upgradeReq, ws);
    } finally {
      socket.on = on;
    }
  }
}

/** V18.1__Tables.sql -> [18, 1]: Flyway order puts V18.1 before V18.1.1. */
function flywayVersion(file: string): number[] {
  const m = /^V([0-9.]+)__/.exec(file);
  if (!m) throw new Error(`Not a Flyway migration: ${file}`);
  return m[1]!.split('.').map(Number);
}

function byFlywayVersion(a: string, b: string): number {
  const va = flywayVersion(a);
  const vb = flywayVersion(b);
  for (let i = 0; i < Math.max(va.length, vb.length); i++) {
    const d = (va[i] ?? -1) - (vb[i] ?? -1);
    if (d) return d;
  }
  return 0;
}

function main(): void {
  const type = process.env['DB_EVT_TYPE'] ?? '';
  const schemaDir = process.env['BENCH_SCHEMA_DIR'] ?? '';
  const users = (process.env['BENCH_USERS'] ?? '')
    .split(',')
    .filter(Boolean)
    .map((u) => u.split(':') as [string, string]);
  const server = http.createServer();
  const sockets = new Set<net.Socket>();
  server.on('connection', (sock: net.Socket) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  const ccm = new AdvancedCCM();
  let executor: NodeExecutor | null = null;
  const db = (): L2Face => ccm.db?.('evt') as L2Face;

  $as()
    .add(
      (as) => {
        const raw =
          type === 'sqlite' ? { pragmas: ['journal_mode=WAL', 'synchronous=NORMAL'] } : {};
        AutoConfig(as, ccm, { evt: { raw } });
        as.add((as) => {
          const files = fs.readdirSync(schemaDir).filter((f) => f.endsWith('.sql'));
          for (const file of files.sort(byFlywayVersion)) {
            const sql = fs.readFileSync(path.join(schemaDir, file), 'utf8');
            for (const statement of sql.split(';')) {
              const code = statement.replace(/--[^\n]*/g, '').trim();
              if (code) db().query(as, code);
            }
          }
        });
        as.add((as) => {
          server.listen(0, '127.0.0.1', () => as.success());
          as.waitExternal();
        });
        as.add((as) => {
          const security = new LegacySecurityProvider(as, ccm);
          for (const [user, secret] of users) security.addUser(user, secret);
          executor = new GuardedNodeExecutor(ccm, {
            httpServer: server,
            httpPath: '/',
            securityProvider: security,
            secureChannel: true,
            prodMode: true,
          });
          executor.on('notExpected', (...args: unknown[]) =>
            process.stderr.write(`reference notExpected: ${args.map(String).join(' ')}\n`),
          );
          RefDBGenService.register(as, executor);
          const push = RefDBPushService.register(as, executor);
          push.on('pushError', (...args: unknown[]) =>
            process.stderr.write(`reference pushError: ${args.map(String).join(' ')}\n`),
          );
          push.on('queueOverflow', (...args: unknown[]) =>
            process.stderr.write(`reference queueOverflow: ${args.map(String).join(' ')}\n`),
          );
        });
        as.add((_as) => {
          const port = (server.address() as net.AddressInfo).port;
          process.stdout.write(
            `reference listening on http://127.0.0.1:${port}/ (WebSocket ws://127.0.0.1:${port}/), database ${type}\n`,
          );
        });
      },
      (as, err) => {
        process.stderr.write(`reference failed to start: ${err} ${String(as.state.error_info)}\n`);
        process.exit(1);
      },
    )
    .execute();

  const stop = (): void => {
    executor?.close();
    for (const sock of sockets) sock.destroy();
    server.close();
    ccm.close();
    // The push worker may be sleeping (up to 3 s) before it notices; nothing is left to keep.
    setTimeout(() => process.exit(0), 100);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main();
