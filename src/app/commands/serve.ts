import crypto from 'crypto';
import fs from 'fs';
import type { Logger } from '../../common/log';
import { parseDuration } from '../../common/time';
import type { DBEventDiscarderOptions } from '../../maintenance/DBEventDiscarder';
import { DISCARDER_DEFAULTS } from '../../maintenance/options';
import { describeConnection, parseDbUrl, type ConnectionConfig } from '../../storage/config';
import { parseUsersEnv, readUsersFile, type Users } from '../../transport/auth';
import { SERVICE_DEFAULTS } from '../options';
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
      'FTN3 credentials "name:secret"; a wrong secret is a SecurityError. With no users at ' +
      'all, a user "demo" with a random secret is created for this run and printed.',
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
      'X-Real-IP.',
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
      'transaction per batch.',
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
    name: 'max-event-bytes',
    arg: 'N',
    env: ['EVTSTREAM_MAX_EVENT_BYTES'],
    default: String(SERVICE_DEFAULTS.maxEventBytes),
    summary: 'largest event data accepted, bytes of JSON',
    details: `(at most ${MAX_EVENT_BYTES_LIMIT}, to fit an FTN18 1.1 message).`,
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
interface ftn18es.admin:1.0 over HTTP and WebSocket at the same URL, the web console at
<URL>console/ and Prometheus metrics at <URL>metrics. When ready it prints one line:
"evtstream listening on <URL> ...".
SIGINT or SIGTERM stop it cleanly (exit code 0).

Every option may also come from the environment variable in brackets; an option on the
command line wins over its variable. Switches take 1 or 0 there.

Options:
${flagsHelp(flagsOf('host', 'port', 'db', 'log-level', 'log-format', 'users', 'admins', 'metrics-open', 'no-console', 'tls-cert', 'tls-key', 'trust-proxy', 'no-secure-loopback'))}

Secure channels: FTN18 requires one for futoin.evt.gen (addEvent). A channel is secure
when served with --tls-cert, when --trust-proxy is set and the proxy says https, or when
the client connects over loopback (127.0.0.1, ::1), unless --no-secure-loopback or
--trust-proxy is given. addEvent on any other channel gets SecurityError "Insecure channel".

Event lifecycle:
${flagsHelp(flagsOf('dwh', 'discard', 'keep-for', 'discard-every'))}

Other options:
${flagsHelp(flagsOf('max-event-bytes', 'help'))}
`;

/** Users of a file and an environment variable (the variable's win). */
function readUsers(file: string | undefined, fromEnv: string | undefined): Users {
  const users: Users = new Map();
  try {
    if (file) for (const [k, v] of readUsersFile(file)) users.set(k, v);
    if (fromEnv) for (const [k, v] of parseUsersEnv(fromEnv)) users.set(k, v);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return users;
}

function loadUsers(
  file: string | undefined,
  env: CliIO['env'],
  log: Logger,
  io: CliIO,
  admins: Users,
): Users {
  const users = readUsers(file, env['EVTSTREAM_USERS']);
  if (users.size === 0 && admins.size === 0) {
    const secret = crypto.randomBytes(12).toString('base64url');
    users.set('demo', secret);
    io.out(`No users configured: created user "demo" with secret "${secret}" for this run`);
    log.warn('No --users file or EVTSTREAM_USERS: using a one-run demo user');
  }
  return users;
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
    ...(warehouse ? { warehouse } : {}),
    ...(discard ? { discard } : {}),
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
  const admins = readUsers(values.string('admins'), io.env['EVTSTREAM_ADMINS']);
  const users = loadUsers(values.string('users'), io.env, log, io, admins);

  const service = await StreamService.start({ ...options, users, admins, log });
  // Listen for signals before announcing readiness: a supervisor may signal at once.
  const stopped = io.stopSignal();
  io.out(
    `evtstream listening on ${service.url} (WebSocket ${service.wsUrl}), database ${describeConnection(options.db)}`,
  );
  if (admins.size === 0) log.info('No --admins: the admin interface and console refuse everyone');
  const signal = await stopped;
  log.info(`${signal}: stopping`);
  await service.close();
  return 0;
}
