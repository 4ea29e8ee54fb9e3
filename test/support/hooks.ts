/**
 * Mocha global setup and teardown: the PostgreSQL and MariaDB servers the loaded suites need.
 * When EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL are not set and the server programs are installed,
 * the setup starts throw-away servers with .ci/databases.sh, and the teardown stops the ones it
 * started (EVT_TEST_KEEP_DBS=1 keeps them). With CI=true a database that cannot be reached
 * fails the run instead of skipping its suites.
 */
import { startNeededServers, stopStartedServers } from './servers';

export function mochaGlobalSetup(): void {
  startNeededServers();
}

export function mochaGlobalTeardown(): void {
  stopStartedServers();
}
