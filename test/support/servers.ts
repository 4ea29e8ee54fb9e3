/**
 * The PostgreSQL and MariaDB servers of a test run. Database suites say they need them while
 * mocha loads them (describeDatabases does); mocha's global setup runs after loading, and starts
 * with .ci/databases.sh the servers that have no URL in the environment, unless no database suite
 * was loaded. The global teardown stops those that were not running before (see test/README.md).
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';

export type ServerDialect = 'postgresql' | 'mysql';

/**
 * In a test's title (mocha's tag convention): it restarts a database server, so it runs on its
 * own, after the other tests (see test/run.ts).
 */
export const ALONE_TAG = '#alone';

/** The variable holding the URL of each server, as .ci/databases.sh prints it. */
export const SERVER_URL_VARS: Readonly<Record<ServerDialect, string>> = {
  postgresql: 'EVT_TEST_PG_URL',
  mysql: 'EVT_TEST_MYSQL_URL',
};

/** The CA of the servers' TLS certificates, as .ci/databases.sh prints it. */
export const TLS_CA_VAR = 'EVT_TEST_DB_CA';

/** The name .ci/databases.sh knows each server by. */
const SCRIPT_NAMES: Readonly<Record<ServerDialect, string>> = { postgresql: 'pg', mysql: 'mysql' };

const SCRIPT = path.join(__dirname, '..', '..', '.ci', 'databases.sh');

let needed = false;
const started: ServerDialect[] = [];

/** Declares that a loaded suite runs against database servers. */
export function needServers(): void {
  needed = true;
}

function haveServerProgram(dialect: ServerDialect): boolean {
  if (dialect === 'postgresql') {
    return fs.existsSync('/usr/lib/postgresql') && fs.readdirSync('/usr/lib/postgresql').length > 0;
  }
  return ['/usr/sbin/mariadbd', '/usr/bin/mariadbd'].some((p) => fs.existsSync(p));
}

function running(dialect: ServerDialect): boolean {
  try {
    execFileSync(SCRIPT, ['status', SCRIPT_NAMES[dialect]], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts what the loaded suites need and nobody gave: sets its URL variable. Without the server
 * programs the suites are skipped, or with CI=true the run fails.
 */
export function startNeededServers(): void {
  if (!needed) return;
  for (const dialect of ['postgresql', 'mysql'] as const) {
    const urlVar = SERVER_URL_VARS[dialect];
    if (process.env[urlVar]) continue;
    if (!haveServerProgram(dialect)) {
      const msg =
        `The ${dialect} server program is not installed: its suites will be skipped. ` +
        'Run .ci/run (or install postgresql and mariadb-server) for the full suite.';
      if (process.env['CI'] === 'true') throw new Error(msg);
      process.stderr.write(`NOTE: ${msg}\n`);
      continue;
    }
    const wasRunning = running(dialect);
    const out = execFileSync(SCRIPT, ['start', SCRIPT_NAMES[dialect]], { encoding: 'utf8' });
    if (!wasRunning) started.push(dialect);
    const m = new RegExp(`^export ${urlVar}=(.*)$`, 'm').exec(out);
    if (m?.[1]) process.env[urlVar] = m[1];
    // The servers' TLS CA (see support/tls.ts), unless given.
    const ca = /^export EVT_TEST_DB_CA=(.*)$/m.exec(out);
    if (ca?.[1] && !process.env[TLS_CA_VAR]) process.env[TLS_CA_VAR] = ca[1];
  }
}

/** Stops the servers startNeededServers started, unless EVT_TEST_KEEP_DBS=1. */
export function stopStartedServers(): void {
  if (started.length === 0) return;
  if (process.env['EVT_TEST_KEEP_DBS'] === '1') {
    const names = started.map((d) => SCRIPT_NAMES[d]).join(' ');
    process.stderr.write(
      `NOTE: EVT_TEST_KEEP_DBS=1: the test servers (${names}) keep running; ` +
        'eval "$(.ci/databases.sh env)" uses them, .ci/databases.sh stop stops them.\n',
    );
    return;
  }
  for (const dialect of started.splice(0)) {
    execFileSync(SCRIPT, ['stop', SCRIPT_NAMES[dialect]], { stdio: 'ignore' });
  }
}
