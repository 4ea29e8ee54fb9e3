/**
 * A PgBouncer of a test's own, in front of a PostgreSQL server: on a free loopback port, its
 * files in a scratch folder, stopped by stop(). One pool per mode: `evt_session` and
 * `evt_transaction` (PgBouncer's pool_mode) reach the same database. PgBouncer refuses to run as
 * root: as root, it runs as the postgres (or nobody) user, as .ci/databases.sh runs the servers.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { freePort } from './cli';
import { waitFor } from './wait';

export const PGBOUNCER_BIN = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) =>
  fs.existsSync(p),
);

export interface PgBouncer {
  port: number;
  /** postgres:// URL of the database through the pool of `mode`. */
  url(mode: 'session' | 'transaction'): string;
  stop(): Promise<void>;
}

/** The user a server runs as when we are root (they refuse root). */
export function serviceUser(): string | null {
  if (process.getuid?.() !== 0) return null;
  for (const user of ['postgres', 'nobody']) {
    try {
      execFileSync('id', [user], { stdio: 'ignore' });
      return user;
    } catch {
      // next
    }
  }
  throw new Error('Running as root, and no postgres or nobody user to run servers as');
}

/** A command line that runs `bin args` as `user` (as is, when null). */
export function asUser(user: string | null, bin: string, args: string[]): [string, string[]] {
  return user ? ['runuser', ['-u', user, '--', bin, ...args]] : [bin, args];
}

/**
 * Starts PgBouncer for the database of `target` (a postgres:// URL with a trusted user, as the
 * test servers have), pools of `poolSize` server connections.
 */
export async function startPgBouncer(target: string, poolSize = 4): Promise<PgBouncer> {
  if (!PGBOUNCER_BIN) throw new Error('PgBouncer is not installed (the Debian package pgbouncer)');
  const t = new URL(target);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-pgbouncer-'));
  fs.chmodSync(dir, 0o777);
  const port = await freePort();
  const db = decodeURIComponent(t.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(t.username || 'postgres');
  const server = `host=${t.hostname} port=${t.port || 5432} dbname=${db} user=${user}`;
  const ini = [
    '[databases]',
    `evt_session = ${server} pool_mode=session`,
    `evt_transaction = ${server} pool_mode=transaction`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    `unix_socket_dir = ${dir}`,
    'auth_type = any',
    `default_pool_size = ${poolSize}`,
    'max_client_conn = 200',
    // After a failed login to the server (restarting, failing over) PgBouncer waits this long
    // before it tries again: 15 s by default, which would hold every query up that long.
    'server_login_retry = 1',
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    '',
  ].join('\n');
  const iniFile = path.join(dir, 'pgbouncer.ini');
  fs.writeFileSync(iniFile, ini, { mode: 0o644 });
  const [cmd, args] = asUser(serviceUser(), PGBOUNCER_BIN, [iniFile]);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    () => `PgBouncer listening on ${port} (${stderr})`,
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      }),
  );
  return {
    port,
    url: (mode) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/evt_${mode}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
