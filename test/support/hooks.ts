/**
 * Mocha global setup: makes sure the PostgreSQL and MariaDB servers the suites need are there.
 * When EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL are not set and the server programs are installed,
 * it starts throw-away servers with .ci/databases.sh (data in a temp folder). With CI=true a
 * database that cannot be reached fails the run instead of skipping its suites.
 */
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');

function haveServerPrograms(): boolean {
  const pg =
    fs.existsSync('/usr/lib/postgresql') && fs.readdirSync('/usr/lib/postgresql').length > 0;
  const maria = ['/usr/sbin/mariadbd', '/usr/bin/mariadbd'].some((p) => fs.existsSync(p));
  return pg && maria;
}

export function mochaGlobalSetup(): void {
  if (process.env['EVT_TEST_PG_URL'] && process.env['EVT_TEST_MYSQL_URL']) return;
  if (!haveServerPrograms()) {
    const msg =
      'PostgreSQL/MariaDB server programs are not installed: their suites will be skipped. ' +
      'Run .ci/run (or install postgresql and mariadb-server) for the full suite.';
    if (process.env['CI'] === 'true') throw new Error(msg);
    process.stderr.write(`NOTE: ${msg}\n`);
    return;
  }
  const out = execFileSync(path.join(ROOT, '.ci', 'databases.sh'), ['start'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line.trim());
    if (m && m[1] && m[2] && !process.env[m[1]]) process.env[m[1]] = m[2];
  }
}
