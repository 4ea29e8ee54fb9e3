/**
 * The TLS side of the test database servers (.ci/databases.sh): the CA that signed their
 * certificate (EVT_TEST_DB_CA, which the script prints) and, beside it, the client certificate
 * of the user `evt_cert`. The certificate names `localhost` only. Users: `evt_tls` may only
 * connect with TLS (password `evt_tls` on MariaDB), `evt_cert` signs in by its certificate.
 */
import fs from 'fs';
import path from 'path';
import type { Dialect } from '../../src/storage/sql';
import { TLS_CA_VAR } from './servers';

export interface ServerTls {
  /** PEM files. */
  ca: string;
  clientCert: string;
  clientKey: string;
}

/** The servers' TLS files, or why there are none. */
export function serverTls(): ServerTls | { missing: string } {
  const ca = process.env[TLS_CA_VAR];
  if (!ca) {
    return {
      missing:
        `${TLS_CA_VAR} is not set: the database servers were not started with TLS by ` +
        '.ci/databases.sh (servers given by EVT_TEST_PG_URL / EVT_TEST_MYSQL_URL need it too)',
    };
  }
  const dir = path.dirname(ca);
  const files = {
    ca,
    clientCert: path.join(dir, 'client.pem'),
    clientKey: path.join(dir, 'client.key'),
  };
  const absent = Object.values(files).filter((f) => !fs.existsSync(f));
  if (absent.length > 0) return { missing: `${absent.join(', ')} not found (${TLS_CA_VAR}=${ca})` };
  return files;
}

/**
 * The servers' TLS files for a suite's tests: in a before hook, fails under CI=true when there
 * are none, and otherwise skips the suite saying why.
 */
export function requireServerTls(): { readonly files: ServerTls } {
  const holder = { files: { ca: '', clientCert: '', clientKey: '' } };
  before(function () {
    const found = serverTls();
    if ('missing' in found) {
      if (process.env['CI'] === 'true')
        throw new Error(`No TLS on the test databases: ${found.missing}`);
      process.stderr.write(`NOTE: database TLS tests not run: ${found.missing}\n`);
      this.skip();
    }
    holder.files = found;
  });
  return holder;
}

export interface TlsUrlOptions {
  /** `evt_tls` (TLS only; the default), `evt_cert` (by certificate) or the admin URL's user. */
  user?: 'evt_tls' | 'evt_cert' | 'admin';
  /** `localhost` (the name the certificate holds; the default) or an address. */
  host?: string;
  /** URL parameters, by PostgreSQL's names (translated for MySQL): sslmode, sslrootcert, ... */
  params?: Record<string, string>;
}

const MYSQL_NAMES: Record<string, string> = {
  sslmode: 'ssl-mode',
  sslrootcert: 'ssl-ca',
  sslcert: 'ssl-cert',
  sslkey: 'ssl-key',
};
const MYSQL_MODES: Record<string, string> = {
  disable: 'DISABLED',
  require: 'REQUIRED',
  'verify-ca': 'VERIFY_CA',
  'verify-full': 'VERIFY_IDENTITY',
};

/** A URL of the same server and database as `url`, for `options.user`, with TLS parameters. */
export function tlsUrl(url: string, dialect: Dialect, options: TlsUrlOptions = {}): string {
  const u = new URL(url);
  const user = options.user ?? 'evt_tls';
  if (user !== 'admin') {
    u.username = user;
    u.password = dialect === 'mysql' && user === 'evt_tls' ? 'evt_tls' : '';
  }
  u.hostname = options.host ?? 'localhost';
  for (const [k, v] of Object.entries(options.params ?? {})) {
    if (dialect === 'mysql') {
      u.searchParams.set(MYSQL_NAMES[k] ?? k, k === 'sslmode' ? (MYSQL_MODES[v] ?? v) : v);
    } else u.searchParams.set(k, v);
  }
  return u.toString();
}
