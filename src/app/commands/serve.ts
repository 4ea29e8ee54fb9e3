import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import { formatDuration, parseDuration } from '../../common/time';
import { PUSH_DEFAULTS } from '../../delivery/push/options';
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
import { StreamService, type ServiceConfig } from '../service';
import { cliLogger, COMMON_FLAGS, dbConfig, intOption, UsageError, type CliIO } from './common';
import { flagsHelp, readFlags, type Flag, type FlagValues } from './flags';

/** --max-event-bytes at most: an FTN18 1.1 message carries 8 MiB, the event and more. */
const MAX_EVENT_BYTES_LIMIT = 7 * 1024 * 1024;

/** serve's options, in the order --help and the README list them (see flags.ts). */
export const SERVE_FLAGS: readonly Flag[] = [
  {
    name: 'host',
    arg: 'H',
    env: ['EVTSTREAM_HOST'],
    default: SERVICE_DEFAULTS.host,
    summary: 'address to listen on (0.0.0.0: all interfaces)',
  },
  {
    name: 'port',
    arg: 'N',
    env: ['EVTSTREAM_PORT'],
    default: String(SERVICE_DEFAULTS.port),
    summary: 'port to listen on (0 picks a free one)',
  },
  COMMON_FLAGS.db,
  COMMON_FLAGS['log-level'],
  COMMON_FLAGS['log-format'],
  {
    name: 'users',
    arg: 'FILE',
    env: ['EVTSTREAM_USERS_FILE'],
    summary: 'client users, one "name:secret" per line (# starts a comment)',
    details:
      '. Also inline: EVTSTREAM_USERS="name:secret,name2:secret2". Clients authenticate with ' +
      'FTN3 credentials "name:secret"; a wrong secret is a SecurityError. A file (or variable) ' +
      'given that is missing, unreadable, empty or malformed stops the service (exit code 2). ' +
      'With no users and no admins at all, on a loopback address only, a user "demo" with a ' +
      "random secret is created for this run, also an admin, and printed with the console's " +
      'URL; on any other address the service refuses to start without users.',
  },
  {
    name: 'admins',
    arg: 'FILE',
    env: ['EVTSTREAM_ADMINS_FILE'],
    summary: 'admin users, "name:secret" lines as --users',
    details:
      '(also inline: EVTSTREAM_ADMINS="name:secret,..."): they may call ftn18es.admin (the ' +
      'console, the consumers/consumer/stats commands with --url) and read /metrics, and may ' +
      'do all a user can.',
  },
  {
    name: 'auth-failure-limit',
    arg: 'N',
    env: ['EVTSTREAM_AUTH_FAILURE_LIMIT'],
    default: String(AUTH_DEFAULTS.failure_limit),
    summary: 'failed authentications from one client address within --auth-failure-window',
    details:
      '(IPv6: one /64) before every authentication from there gets DefenseRejected until the ' +
      'window ends.',
  },
  {
    name: 'auth-failure-window',
    arg: 'AGE',
    env: ['EVTSTREAM_AUTH_FAILURE_WINDOW'],
    default: formatDuration(AUTH_DEFAULTS.failure_window_ms),
    summary: "that window, from the address's first failure",
  },
  {
    name: 'metrics-open',
    env: ['EVTSTREAM_METRICS_OPEN'],
    default: 'off',
    summary: 'serve /metrics without credentials',
    details: '(otherwise admins only, HTTP Basic auth); for a Prometheus on a trusted network.',
  },
  {
    name: 'no-console',
    env: ['EVTSTREAM_NO_CONSOLE'],
    default: 'off',
    summary: 'do not serve the web console at /console',
  },
  {
    name: 'tls-cert',
    arg: 'FILE',
    env: ['EVTSTREAM_TLS_CERT'],
    summary: 'serve HTTPS/WSS with this PEM certificate (needs --tls-key)',
  },
  {
    name: 'tls-key',
    arg: 'FILE',
    env: ['EVTSTREAM_TLS_KEY'],
    summary: "the certificate's PEM private key",
  },
  {
    name: 'trust-proxy',
    env: ['EVTSTREAM_TRUST_PROXY'],
    default: 'off',
    summary: 'TLS is terminated by a reverse proxy in front',
    details:
      ': trust its X-Forwarded-Proto (https makes the channel secure) and X-Forwarded-For / ' +
      'X-Real-IP and X-Forwarded-Host.',
  },
  {
    name: 'admin-origin',
    arg: 'URL',
    multiple: true,
    env: ['EVTSTREAM_ADMIN_ORIGINS'],
    summary: "a browser origin besides the service's own that may call the admin interface",
    details:
      '(e.g. https://ops.example.com); repeat it for more (the variable: comma-separated). ' +
      'Browsers elsewhere are refused (SecurityError).',
  },
  {
    name: 'no-secure-loopback',
    env: ['EVTSTREAM_NO_SECURE_LOOPBACK'],
    default: 'off',
    summary: 'do not count loopback connections as secure channels',
  },
  {
    name: 'dwh',
    arg: 'URL',
    env: ['EVTSTREAM_DWH'],
    summary: 'archive the stream to this warehouse database (same forms as --db)',
    details:
      '; it may be another kind: the archiver runs in the service as the reliable consumer ' +
      '"-internal:ARCHIVER" and copies every event into evt_history, idempotently, one ' +
      'transaction per batch; reliable consumers behind the active store (reset to the start, ' +
      'say) read what the discarder deleted from there.',
  },
  {
    name: 'discard',
    env: ['EVTSTREAM_DISCARD'],
    default: 'off',
    summary: 'delete from the active store the events every registered consumer has acknowledged',
    details: '(the archiver included), in batches.',
  },
  {
    name: 'keep-for',
    arg: 'AGE',
    env: ['EVTSTREAM_KEEP_FOR'],
    default: String(DISCARDER_DEFAULTS.keep_for),
    summary: '...but keep events younger than AGE (e.g. 7d, 12h, 30m)',
  },
  {
    name: 'discard-every',
    arg: 'AGE',
    env: ['EVTSTREAM_DISCARD_EVERY'],
    default: `${DISCARDER_DEFAULTS.poll_period_ms / 60_000}m`,
    summary: 'time between discard passes',
    details: '(durations: ms, or a number with ms, s, m, h or d; README, "Durations and times").',
  },
  {
    name: 'node',
    arg: 'NAME',
    env: ['EVTSTREAM_NODE'],
    default: 'host name and process ID',
    summary: "this node's name in logs, metrics and the consumers' owner_node",
    details: '; unique among running nodes.',
  },
  {
    name: 'session-db',
    arg: 'URL',
    env: ['EVTSTREAM_SESSION_DB'],
    default: '--db',
    summary: 'where the connections that need a database session of their own go',
    details:
      ': the coordination connection (its locks) and LISTEN. A direct address or a PgBouncer ' +
      'session pool. Required when --db is a transaction pool ' +
      '(postgres://...?pool_mode=transaction).',
  },
  {
    name: 'heartbeat',
    arg: 'AGE',
    env: ['EVTSTREAM_HEARTBEAT'],
    default: formatDuration(COORDINATION_DEFAULTS.heartbeat_ms),
    summary: 'how often the coordination connection is checked',
  },
  {
    name: 'fence-after',
    arg: 'AGE',
    env: ['EVTSTREAM_FENCE_AFTER'],
    default: formatDuration(COORDINATION_DEFAULTS.fence_ms),
    summary: 'a node that has not heard from the database for this long stops pushing',
    details: "and closes its receivers' connections (at least twice --heartbeat).",
  },
  {
    name: 'no-coordination',
    env: ['EVTSTREAM_NO_COORDINATION'],
    default: 'off',
    summary: 'take no database locks: only for a single node over its database',
  },
  {
    name: 'max-event-bytes',
    arg: 'N',
    env: ['EVTSTREAM_MAX_EVENT_BYTES'],
    default: String(SERVICE_DEFAULTS.maxEventBytes),
    summary: 'largest event data accepted, bytes of JSON',
    details: `(at most ${MAX_EVENT_BYTES_LIMIT}, to fit an FTN18 1.1 message).`,
  },
  {
    name: 'live-calls-per-s',
    arg: 'N',
    env: ['EVTSTREAM_LIVE_CALLS_PER_S'],
    default: String(PUSH_DEFAULTS.live_calls_per_s),
    summary: 'onEvents calls a second that all LIVE sessions share at most',
    details:
      '(0: no limit), per node in equal shares: with N LIVE sessions each calls at most every ' +
      'N / this seconds (a whole batch goes at once), with the events of that time, so that ' +
      'what LIVE watchers cost is bounded.',
  },
  {
    name: 'reliable-calls-per-s',
    arg: 'N',
    env: ['EVTSTREAM_RELIABLE_CALLS_PER_S'],
    default: String(PUSH_DEFAULTS.reliable_calls_per_s),
    summary: 'onEvents calls a second that all reliable sessions share for new events',
    details:
      '(0: no limit), per node in equal shares: with N reliable sessions each calls at most ' +
      'every N / this seconds with the new events of that time; a backlog and a whole batch go ' +
      'at once, so that many consumers do not cost a call per event each.',
  },
  {
    name: 'shutdown-timeout',
    arg: 'AGE',
    env: ['EVTSTREAM_SHUTDOWN_TIMEOUT'],
    default: formatDuration(SERVICE_DEFAULTS.shutdownTimeoutMs),
    summary: 'how long stopping may take, draining push batches in flight and closing',
    details: '(0: close at once).',
  },
  COMMON_FLAGS.help,
];

const flagsOf = (...names: string[]): Flag[] =>
  names.map((n) => {
    const f = SERVE_FLAGS.find((x) => x.name === n);
    if (!f) throw new Error(`No serve option ${n}`);
    return f;
  });

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

Every option may also come from the environment variable in brackets; an option on the
command line wins over its variable. Switches take 1 or 0 there.

Options:
${flagsHelp(flagsOf('host', 'port', 'db', 'log-level', 'log-format', 'users', 'admins', 'auth-failure-limit', 'auth-failure-window', 'metrics-open', 'no-console', 'tls-cert', 'tls-key', 'trust-proxy', 'admin-origin', 'no-secure-loopback'))}

Secure channels: FTN18 requires one for futoin.evt.gen (addEvent). A channel is secure
when served with --tls-cert, when --trust-proxy is set and the proxy says https, or when
the client connects over loopback (127.0.0.1, ::1), unless --no-secure-loopback or
--trust-proxy is given. addEvent on any other channel gets SecurityError "Insecure channel".

Event lifecycle:
${flagsHelp(flagsOf('dwh', 'discard', 'keep-for', 'discard-every'))}

Several nodes over one PostgreSQL or MySQL database (README, "High availability"):
  each reliable consumer is pushed by one node at a time, holding a database lock on one
  coordination connection per node; the archiver and the discarder run on one node at a time.
${flagsHelp(flagsOf('node', 'session-db', 'heartbeat', 'fence-after', 'no-coordination'))}

Other options:
${flagsHelp(flagsOf('max-event-bytes', 'live-calls-per-s', 'reliable-calls-per-s', 'shutdown-timeout', 'help'))}
`;

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

/** What `serve` starts, as its options and their variables say (users and admins apart). */
export type ServeOptions = Omit<ServiceConfig, 'users' | 'admins' | 'log'>;

/** Reads serve's options (a flag wins over its variables) into what StreamService takes. */
export function serveOptions(values: FlagValues, env: CliIO['env']): ServeOptions {
  const db = dbConfig(values.string('db'), env, values.from('db'));
  const port = intOption(values.from('port'), values.string('port'), SERVICE_DEFAULTS.port, {
    min: 0,
    max: 65535,
  });
  const maxEventBytes = intOption(
    values.from('max-event-bytes'),
    values.string('max-event-bytes'),
    SERVICE_DEFAULTS.maxEventBytes,
    { min: 1, max: MAX_EVENT_BYTES_LIMIT },
  );
  const liveCallsPerS = intOption(
    values.from('live-calls-per-s'),
    values.string('live-calls-per-s'),
    PUSH_DEFAULTS.live_calls_per_s,
    { min: 0 },
  );
  const reliableCallsPerS = intOption(
    values.from('reliable-calls-per-s'),
    values.string('reliable-calls-per-s'),
    PUSH_DEFAULTS.reliable_calls_per_s,
    { min: 0 },
  );
  const certFile = values.string('tls-cert');
  const keyFile = values.string('tls-key');
  if (!!certFile !== !!keyFile) throw new UsageError('--tls-cert and --tls-key go together');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (certFile && keyFile) {
    try {
      tls = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
    } catch (err) {
      throw new UsageError(`Cannot read TLS files: ${(err as Error).message}`);
    }
  }
  const trustProxy = values.on('trust-proxy');

  let warehouse: ConnectionConfig | undefined;
  const dwh = values.string('dwh');
  try {
    if (dwh) warehouse = parseDbUrl(dwh);
  } catch (err) {
    throw new UsageError(`${values.from('dwh')}: ${(err as Error).message}`);
  }
  const discarding = values.on('discard');
  for (const name of ['keep-for', 'discard-every']) {
    if (!discarding && values.given(name))
      throw new UsageError(`${values.from(name)} goes with --discard (EVTSTREAM_DISCARD=1)`);
  }
  let discard: DBEventDiscarderOptions | undefined;
  if (discarding) {
    try {
      discard = {
        keep_for: parseDuration(
          values.string('keep-for') ?? DISCARDER_DEFAULTS.keep_for,
          values.from('keep-for'),
        ),
        poll_period_ms: parseDuration(
          values.string('discard-every') ?? DISCARDER_DEFAULTS.poll_period_ms,
          values.from('discard-every'),
        ),
      };
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (discard.poll_period_ms === 0)
      throw new UsageError(`${values.from('discard-every')} must be above 0`);
  }
  let shutdownTimeoutMs: number = SERVICE_DEFAULTS.shutdownTimeoutMs;
  let failureWindowMs: number = AUTH_DEFAULTS.failure_window_ms;
  try {
    const timeout = values.string('shutdown-timeout');
    if (timeout !== undefined)
      shutdownTimeoutMs = parseDuration(timeout, values.from('shutdown-timeout'));
    const window = values.string('auth-failure-window');
    if (window !== undefined)
      failureWindowMs = parseDuration(window, values.from('auth-failure-window'));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (failureWindowMs === 0)
    throw new UsageError(`${values.from('auth-failure-window')} must be above 0`);
  const failureLimit = intOption(
    values.from('auth-failure-limit'),
    values.string('auth-failure-limit'),
    AUTH_DEFAULTS.failure_limit,
    { min: 1 },
  );
  const adminOrigins = values.strings('admin-origin');
  for (const o of adminOrigins) {
    if (normalOrigin(o) === null)
      throw new UsageError(`${values.from('admin-origin')}: not an http(s) origin: ${o}`);
  }
  let sessionDb: ConnectionConfig | undefined;
  const sessionUrl = values.string('session-db');
  try {
    if (sessionUrl) sessionDb = parseDbUrl(sessionUrl);
  } catch (err) {
    throw new UsageError(`${values.from('session-db')}: ${(err as Error).message}`);
  }
  let coordination: CoordinationOptions;
  try {
    const node = values.string('node');
    const heartbeat = values.string('heartbeat');
    const fence = values.string('fence-after');
    coordination = {
      ...(node !== undefined ? { node } : {}),
      ...(heartbeat !== undefined
        ? { heartbeat_ms: parseDuration(heartbeat, values.from('heartbeat')) }
        : {}),
      ...(fence !== undefined
        ? { fence_ms: parseDuration(fence, values.from('fence-after')) }
        : {}),
      ...(values.on('no-coordination') ? { enabled: false } : {}),
    };
    coordinationSettings(coordination);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    db,
    host: values.string('host') ?? SERVICE_DEFAULTS.host,
    port,
    metrics: values.on('metrics-open') ? 'open' : 'admins',
    console: !values.on('no-console'),
    ...(tls ? { tls } : {}),
    trustProxy,
    secureLoopback: !values.on('no-secure-loopback') && !trustProxy,
    maxEventBytes,
    push: { live_calls_per_s: liveCallsPerS, reliable_calls_per_s: reliableCallsPerS },
    ...(warehouse ? { warehouse } : {}),
    ...(discard ? { discard } : {}),
    shutdownTimeoutMs,
    auth: { failure_limit: failureLimit, failure_window_ms: failureWindowMs },
    adminOrigins,
    coordination,
    ...(sessionDb ? { sessionDb } : {}),
  };
}

export async function serve(argv: string[], io: CliIO): Promise<number> {
  const values = readFlags(SERVE_FLAGS, argv, io.env);
  if (values.on('help')) {
    io.out(SERVE_HELP);
    return 0;
  }
  const log = cliLogger(
    { 'log-level': values.string('log-level'), 'log-format': values.string('log-format') },
    io.env,
  );
  const options = serveOptions(values, io.env);
  const admins = readUsers(
    values.from('admins'),
    values.string('admins'),
    'EVTSTREAM_ADMINS',
    io.env,
  );
  const users = readUsers(values.from('users'), values.string('users'), 'EVTSTREAM_USERS', io.env);
  let demoSecret: string | null = null;
  if (users.size === 0 && admins.size === 0) {
    if (!isLoopbackHost(options.host)) {
      throw new UsageError(
        `No users configured: refusing to serve on ${options.host} without them (give --users FILE or EVTSTREAM_USERS); the one-run demo user is for loopback addresses only`,
      );
    }
    // A newcomer's first run: one user for this run, also the admin, so /console/ works.
    demoSecret = crypto.randomBytes(12).toString('base64url');
    users.set('demo', demoSecret);
    admins.set('demo', demoSecret);
  }

  const service = await StreamService.start({ ...options, users, admins, log });
  // Listen for signals before announcing readiness: a supervisor may signal at once.
  const stopped = io.stopSignal();
  const consoleUrl = options.console ? `${service.url}console/` : '';
  if (demoSecret !== null) {
    io.out(
      `No users configured: created user "demo" with secret "${demoSecret}" for this run, ` +
        (consoleUrl ? `also an admin: console at ${consoleUrl}` : 'also an admin'),
    );
    log.warn('No --users or --admins: using a one-run demo user (also an admin), on loopback only');
  }
  io.out(
    `evtstream listening on ${service.url} (WebSocket ${service.wsUrl}), database ${describeConnection(options.db)}`,
  );
  if (admins.size === 0) log.info('No --admins: the admin interface and console refuse everyone');
  const signal = await stopped;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? SERVICE_DEFAULTS.shutdownTimeoutMs;
  log.info(`${signal}: stopping within ${formatDuration(shutdownTimeoutMs)}`);
  await service.shutdown();
  return 0;
}
