import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import { parseArgs, type ParseArgsConfig } from 'util';
import { consoleLogger } from '../../common/log';
import { formatDuration, parseDuration } from '../../common/time';
import type { DBEventDiscarderOptions } from '../../maintenance/DBEventDiscarder';
import { DISCARDER_DEFAULTS } from '../../maintenance/options';
import { describeConnection, parseDbUrl, type ConnectionConfig } from '../../storage/config';
import { AUTH_DEFAULTS, parseUsers, parseUsersEnv, type Users } from '../../transport/auth';
import { normalOrigin } from '../../transport/origin';
import { SERVICE_DEFAULTS } from '../options';
import {
  COORDINATION_DEFAULTS,
  coordinationSettings,
  type CoordinationOptions,
} from '../../storage/coordination/options';
import { StreamService } from '../service';
import {
  COMMON_OPTIONS,
  DB_HELP,
  dbConfig,
  intOption,
  logLevel,
  UsageError,
  type CliIO,
} from './common';

/** --max-event-bytes at most: an FTN18 1.1 message carries 8 MiB, the event and more. */
const MAX_EVENT_BYTES_LIMIT = 7 * 1024 * 1024;

export const SERVE_HELP = `Usage: evtstream serve [options]

Serves futoin.evt.gen, futoin.evt.push and futoin.evt.poll (FTN18 1.0 and 1.1) and the admin
interface ftn18es.admin:1.1 over HTTP and WebSocket at the same URL, the web console at
<URL>console/ and Prometheus metrics at <URL>metrics. When ready it prints one line:
"evtstream listening on <URL> ...". GET <URL>livez answers 200 while the process serves,
GET <URL>readyz 200 while it should get traffic (the database answers, migrations are
applied, not shutting down), else 503 with the reason; other paths that are no FutoIn
call get 404.

SIGINT or SIGTERM stop it cleanly: /readyz turns 503 at once, new push sessions are
refused (DefenseRejected: receivers connect again, elsewhere), the push batches in flight
get their answers and their pointers stored, then it closes and exits with code 0, all
within --shutdown-timeout (a second signal stops it at once).

Options:
  --host H           address to listen on (default ${SERVICE_DEFAULTS.host}; 0.0.0.0 for all)
  --port N           port (default ${SERVICE_DEFAULTS.port}; 0 picks a free one)
${DB_HELP}
  --users FILE       client users, one "name:secret" per line (# starts a comment).
                     Also from EVTSTREAM_USERS="name:secret,name2:secret2". Clients
                     authenticate with FTN3 credentials "name:secret"; a wrong secret is
                     a SecurityError. A file (or variable) given that is missing,
                     unreadable, empty or malformed stops the service (exit code 2).
                     With no users and no admins at all, on a loopback address only, a
                     user "demo" with a random secret is created for this run, also an
                     admin, and printed with the console's URL; on any other address
                     the service refuses to start without users.
  --admins FILE      admin users, "name:secret" lines as --users (also from
                     EVTSTREAM_ADMINS="name:secret,..."): they may call ftn18es.admin
                     (the console, the consumers/consumer/stats commands with --url) and
                     read /metrics, and may do all a user can
  --auth-failure-limit N
                     failed authentications from one client address (IPv6: one /64)
                     within --auth-failure-window before every authentication from
                     there gets DefenseRejected until the window ends (default ${AUTH_DEFAULTS.failure_limit})
  --auth-failure-window AGE
                     that window, from the address's first failure (default ${formatDuration(AUTH_DEFAULTS.failure_window_ms)})
  --metrics-open     serve /metrics without credentials (default: admins only, HTTP
                     Basic auth); for a Prometheus on a trusted network
  --no-console       do not serve the web console at /console
  --tls-cert FILE    serve HTTPS/WSS with this PEM certificate (needs --tls-key)
  --tls-key FILE     the certificate's PEM private key
  --trust-proxy      TLS is terminated by a reverse proxy in front: trust its
                     X-Forwarded-Proto (https makes the channel secure),
                     X-Forwarded-For / X-Real-IP and X-Forwarded-Host
  --admin-origin URL a browser origin besides the service's own from which the
                     admin interface may be called (e.g. https://ops.example.com);
                     repeat it for more. Browsers elsewhere are refused (SecurityError)
  --no-secure-loopback
                     do not count loopback connections as secure channels

Secure channels: FTN18 requires one for futoin.evt.gen (addEvent). A channel is secure
when served with --tls-cert, when --trust-proxy is set and the proxy says https, or when
the client connects over loopback (127.0.0.1, ::1), unless --no-secure-loopback or
--trust-proxy is given. addEvent on any other channel gets SecurityError "Insecure channel".

Event lifecycle:
  --dwh URL          archive the stream to this warehouse database (same forms as --db;
                     may be another kind): the archiver runs in the service as the
                     reliable consumer "-internal:ARCHIVER" and copies every event into
                     evt_history, idempotently, one transaction per batch
  --discard          delete from the active store the events every registered consumer
                     has acknowledged (the archiver included), in batches
  --keep-for AGE     ...but keep events younger than AGE (e.g. 7d, 12h, 30m; default ${DISCARDER_DEFAULTS.keep_for})
  --discard-every AGE
                     time between discard passes (default ${DISCARDER_DEFAULTS.poll_period_ms / 60_000}m)
                     (durations: ms, or a number with ms, s, m, h or d; README,
                     "Durations and times")

Several nodes over one PostgreSQL or MySQL database (README, "High availability"):
  each reliable consumer is pushed by one node at a time, holding a database lock on one
  coordination connection per node; the archiver and the discarder run on one node at a time.
  --node NAME        this node's name in logs, metrics and the consumers' owner_node
                     (default: host name and process ID); unique among running nodes
  --session-db URL   where the connections that need a database session of their own go:
                     the coordination connection (its locks) and LISTEN. A direct address or
                     a PgBouncer session pool (default: --db). Required when --db is a
                     transaction pool (postgres://...?pool_mode=transaction)
  --heartbeat AGE    how often the coordination connection is checked (default ${COORDINATION_DEFAULTS.heartbeat_ms}ms)
  --fence-after AGE  a node that has not heard from the database for this long stops pushing
                     and closes its receivers' connections (default ${COORDINATION_DEFAULTS.fence_ms}ms; at
                     least twice --heartbeat)
  --no-coordination  take no database locks: only for a single node over its database

Other options:
  --max-event-bytes N  largest event data accepted, bytes of JSON (default ${SERVICE_DEFAULTS.maxEventBytes};
                     at most ${MAX_EVENT_BYTES_LIMIT}, to fit an FTN18 1.1 message)
  --shutdown-timeout AGE
                     how long stopping may take, draining push batches in flight and
                     closing (default ${formatDuration(SERVICE_DEFAULTS.shutdownTimeoutMs)}; 0: close at once)
`;

const SERVE_OPTIONS = {
  ...COMMON_OPTIONS,
  host: { type: 'string' },
  port: { type: 'string' },
  users: { type: 'string' },
  admins: { type: 'string' },
  'metrics-open': { type: 'boolean' },
  'no-console': { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'trust-proxy': { type: 'boolean' },
  'admin-origin': { type: 'string', multiple: true },
  'no-secure-loopback': { type: 'boolean' },
  'max-event-bytes': { type: 'string' },
  dwh: { type: 'string' },
  discard: { type: 'boolean' },
  'keep-for': { type: 'string' },
  'discard-every': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'auth-failure-limit': { type: 'string' },
  'auth-failure-window': { type: 'string' },
  node: { type: 'string' },
  'session-db': { type: 'string' },
  heartbeat: { type: 'string' },
  'fence-after': { type: 'string' },
  'no-coordination': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/**
 * Users of a file and of an environment variable (the variable's win). Either one, once given,
 * must hold users: a missing, unreadable, empty or malformed one stops the service rather than
 * let it start with fewer users than meant (or the demo user). Messages name the file or
 * variable and never show a secret.
 */
function readUsers(
  option: string,
  file: string | undefined,
  variable: string,
  env: CliIO['env'],
): Users {
  const users: Users = new Map();
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new UsageError(`${option} ${file}: cannot read it (${e.code ?? e.message})`);
    }
    for (const [k, v] of parsedUsers(`${option} ${file}`, () => parseUsers(text))) users.set(k, v);
  }
  const value = env[variable];
  if (value !== undefined) {
    for (const [k, v] of parsedUsers(variable, () => parseUsersEnv(value))) users.set(k, v);
  }
  return users;
}

function parsedUsers(source: string, parse: () => Users): Users {
  let users: Users;
  try {
    users = parse();
  } catch (err) {
    throw new UsageError(`${source}: ${(err as Error).message}`);
  }
  if (users.size === 0) throw new UsageError(`${source}: holds no users ("name:secret" entries)`);
  return users;
}

/** Whether `host` (--host) is a loopback name or address: only there may a demo user exist. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  return h === '::1' || /^::ffff:127\./.test(h);
}

export async function serve(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: SERVE_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(SERVE_HELP);
    return 0;
  }
  const log = consoleLogger(logLevel(values['log-level']));
  const db = dbConfig(values.db, io.env);
  const port = intOption('port', values.port, SERVICE_DEFAULTS.port, { min: 0, max: 65535 });
  const maxEventBytes = intOption(
    'max-event-bytes',
    values['max-event-bytes'],
    SERVICE_DEFAULTS.maxEventBytes,
    { min: 1, max: MAX_EVENT_BYTES_LIMIT },
  );
  if (!!values['tls-cert'] !== !!values['tls-key'])
    throw new UsageError('--tls-cert and --tls-key go together');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (values['tls-cert'] && values['tls-key']) {
    try {
      tls = { cert: fs.readFileSync(values['tls-cert']), key: fs.readFileSync(values['tls-key']) };
    } catch (err) {
      throw new UsageError(`Cannot read TLS files: ${(err as Error).message}`);
    }
  }
  const host = values.host ?? SERVICE_DEFAULTS.host;
  const admins = readUsers('--admins', values.admins, 'EVTSTREAM_ADMINS', io.env);
  const users = readUsers('--users', values.users, 'EVTSTREAM_USERS', io.env);
  let demoSecret: string | null = null;
  if (users.size === 0 && admins.size === 0) {
    if (!isLoopbackHost(host)) {
      throw new UsageError(
        `No users configured: refusing to serve on ${host} without them (give --users FILE or EVTSTREAM_USERS); the one-run demo user is for loopback addresses only`,
      );
    }
    // A newcomer's first run: one user for this run, also the admin, so /console/ works.
    demoSecret = crypto.randomBytes(12).toString('base64url');
    users.set('demo', demoSecret);
    admins.set('demo', demoSecret);
  }
  const trustProxy = values['trust-proxy'] ?? false;
  let shutdownTimeoutMs: number = SERVICE_DEFAULTS.shutdownTimeoutMs;
  let failureWindowMs: number = AUTH_DEFAULTS.failure_window_ms;
  try {
    if (values['shutdown-timeout'] !== undefined)
      shutdownTimeoutMs = parseDuration(values['shutdown-timeout'], '--shutdown-timeout');
    if (values['auth-failure-window'] !== undefined)
      failureWindowMs = parseDuration(values['auth-failure-window'], '--auth-failure-window');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (failureWindowMs === 0) throw new UsageError('--auth-failure-window must be above 0');
  const failureLimit = intOption(
    'auth-failure-limit',
    values['auth-failure-limit'],
    AUTH_DEFAULTS.failure_limit,
    { min: 1 },
  );
  const adminOrigins = values['admin-origin'] ?? [];
  for (const o of adminOrigins) {
    if (normalOrigin(o) === null)
      throw new UsageError(`--admin-origin: not an http(s) origin: ${o}`);
  }

  let warehouse: ConnectionConfig | undefined;
  try {
    if (values.dwh) warehouse = parseDbUrl(values.dwh);
  } catch (err) {
    throw new UsageError(`--dwh: ${(err as Error).message}`);
  }
  if (!values.discard && (values['keep-for'] || values['discard-every'])) {
    throw new UsageError('--keep-for and --discard-every go with --discard');
  }
  let discard: DBEventDiscarderOptions | undefined;
  if (values.discard) {
    try {
      discard = {
        keep_for: parseDuration(values['keep-for'] ?? DISCARDER_DEFAULTS.keep_for, '--keep-for'),
        poll_period_ms: parseDuration(
          values['discard-every'] ?? DISCARDER_DEFAULTS.poll_period_ms,
          '--discard-every',
        ),
      };
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (discard.poll_period_ms === 0) throw new UsageError('--discard-every must be above 0');
  }

  let sessionDb: ConnectionConfig | undefined;
  try {
    if (values['session-db']) sessionDb = parseDbUrl(values['session-db']);
  } catch (err) {
    throw new UsageError(`--session-db: ${(err as Error).message}`);
  }
  let coordination: CoordinationOptions;
  try {
    coordination = {
      ...(values.node !== undefined ? { node: values.node } : {}),
      ...(values.heartbeat !== undefined
        ? { heartbeat_ms: parseDuration(values.heartbeat, '--heartbeat') }
        : {}),
      ...(values['fence-after'] !== undefined
        ? { fence_ms: parseDuration(values['fence-after'], '--fence-after') }
        : {}),
      ...(values['no-coordination'] ? { enabled: false } : {}),
    };
    coordinationSettings(coordination);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  const service = await StreamService.start({
    db,
    host,
    port,
    users,
    admins,
    metrics: values['metrics-open'] ? 'open' : 'admins',
    console: !values['no-console'],
    log,
    ...(tls ? { tls } : {}),
    trustProxy,
    adminOrigins,
    secureLoopback: !values['no-secure-loopback'] && !trustProxy,
    maxEventBytes,
    ...(warehouse ? { warehouse } : {}),
    ...(discard ? { discard } : {}),
    shutdownTimeoutMs,
    auth: { failure_limit: failureLimit, failure_window_ms: failureWindowMs },
    coordination,
    ...(sessionDb ? { sessionDb } : {}),
  });
  // Listen for signals before announcing readiness: a supervisor may signal at once.
  const stopped = io.stopSignal();
  const consoleUrl = values['no-console'] ? '' : `${service.url}console/`;
  if (demoSecret !== null) {
    io.out(
      `No users configured: created user "demo" with secret "${demoSecret}" for this run, ` +
        (consoleUrl ? `also an admin: console at ${consoleUrl}` : 'also an admin'),
    );
    log.warn('No --users or --admins: using a one-run demo user (also an admin), on loopback only');
  }
  io.out(
    `evtstream listening on ${service.url} (WebSocket ${service.wsUrl}), database ${describeConnection(db)}`,
  );
  if (admins.size === 0) log.info('No --admins: the admin interface and console refuse everyone');
  const signal = await stopped;
  log.info(`${signal}: stopping within ${formatDuration(shutdownTimeoutMs)}`);
  await service.shutdown();
  return 0;
}
