import fs from 'fs';
import path from 'path';
import { parseArgs, type ParseArgsConfig } from 'util';
import crypto from 'crypto';
import { consoleLogger, envLogLevel, isLogLevel, type Logger, type LogLevel } from '../common/log';
import {
  configFromEnv,
  DEFAULT_SQLITE_FILE,
  describeConnection,
  parseDbUrl,
  type ConnectionConfig,
} from '../storage/config';
import { migrate, type SchemaKind } from '../storage/migrate';
import { EventStore } from '../storage/store';
import { parseUsersEnv, readUsersFile, type Users } from '../transport/auth';
import { StreamService } from './service';

const VERSION: string = (
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

const MAIN_HELP = `evtstream ${VERSION}: FutoIn FTN18 event stream service

Usage: evtstream <command> [options]

Commands:
  serve      run the service (HTTP and WebSocket), applying pending migrations first
  migrate    apply pending database migrations and exit
  help       show help for a command: evtstream help serve

Options for every command:
  -h, --help       show help
  -v, --version    print the version

Run "evtstream <command> --help" for the command's options.
`;

const DB_HELP = `  --db URL           database: sqlite:PATH, postgres://user:pass@host:port/db or
                     mysql://user:pass@host:port/db (add ?max=N for the pool size;
                     sqlite:PATH?synchronous=normal trades the last commits on power loss
                     for speed). Default: the DB_EVT_* variables of futoin-database
                     AutoConfig (DB_EVT_TYPE, _HOST, _PORT, _USER, _PASS, _DB, _MAXCONN;
                     for SQLite the file in DB_EVT_SOCKET), else sqlite:${DEFAULT_SQLITE_FILE}
                     in the working folder.
  --log-level L      debug, info, warn, error or silent (default: $EVTSTREAM_LOG or info)`;

const SERVE_HELP = `Usage: evtstream serve [options]

Serves futoin.evt.gen and futoin.evt.poll (FTN18 1.0 and 1.1) over HTTP and WebSocket at
the same URL. When ready it prints one line: "evtstream listening on <URL> ...".
SIGINT or SIGTERM stop it cleanly (exit code 0).

Options:
  --host H           address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --port N           port (default 8080; 0 picks a free one)
${DB_HELP}
  --users FILE       client users, one "name:secret" per line (# starts a comment).
                     Also from EVTSTREAM_USERS="name:secret,name2:secret2". Clients
                     authenticate with FTN3 credentials "name:secret"; a wrong secret is
                     a SecurityError. With no users at all, a user "demo" with a random
                     secret is created for this run and printed.
  --tls-cert FILE    serve HTTPS/WSS with this PEM certificate (needs --tls-key)
  --tls-key FILE     the certificate's PEM private key
  --trust-proxy      TLS is terminated by a reverse proxy in front: trust its
                     X-Forwarded-Proto (https makes the channel secure) and
                     X-Forwarded-For / X-Real-IP
  --no-secure-loopback
                     do not count loopback connections as secure channels

Secure channels: FTN18 requires one for futoin.evt.gen (addEvent). A channel is secure
when served with --tls-cert, when --trust-proxy is set and the proxy says https, or when
the client connects over loopback (127.0.0.1, ::1), unless --no-secure-loopback or
--trust-proxy is given. addEvent on any other channel gets SecurityError "Insecure channel".

Other options:
  --max-event-bytes N  largest event data accepted, bytes of JSON (default 4194304)
`;

const MIGRATE_HELP = `Usage: evtstream migrate [options]

Applies pending migrations of the active store (evt_queue, evt_consumers), or with --dwh of
the warehouse (evt_history), and prints their names. Running it again applies nothing.
Each migration runs in one transaction with its record (on MySQL/MariaDB, DDL commits
statement by statement; our MySQL migrations are written to be re-run after a failure).

Options:
${DB_HELP}
  --dwh              migrate the warehouse schema instead of the active one
`;

const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  db: { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const SERVE_OPTIONS = {
  ...COMMON_OPTIONS,
  host: { type: 'string' },
  port: { type: 'string' },
  users: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'trust-proxy': { type: 'boolean' },
  'no-secure-loopback': { type: 'boolean' },
  'max-event-bytes': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const MIGRATE_OPTIONS = {
  ...COMMON_OPTIONS,
  dwh: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** A mistake in the command line: printed with a hint, exit code 2. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly command = '',
  ) {
    super(message);
  }
}

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
  env: Record<string, string | undefined>;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: () => Promise<string>;
}

const processIO = (): CliIO => ({
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  env: process.env,
  stopSignal: () =>
    new Promise((resolve) => {
      const on = (sig: string): void => {
        process.off('SIGINT', on);
        process.off('SIGTERM', on);
        resolve(sig);
      };
      process.on('SIGINT', on);
      process.on('SIGTERM', on);
    }),
});

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return envLogLevel();
  if (!isLogLevel(value))
    throw new UsageError(`--log-level must be debug, info, warn, error or silent`);
  return value;
}

function dbConfig(url: string | undefined, env: CliIO['env']): ConnectionConfig {
  try {
    if (url) return parseDbUrl(url);
    return configFromEnv('evt', env) ?? parseDbUrl(`sqlite:${DEFAULT_SQLITE_FILE}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function loadUsers(file: string | undefined, env: CliIO['env'], log: Logger, io: CliIO): Users {
  const users: Users = new Map();
  try {
    if (file) for (const [k, v] of readUsersFile(file)) users.set(k, v);
    const fromEnv = env['EVTSTREAM_USERS'];
    if (fromEnv) for (const [k, v] of parseUsersEnv(fromEnv)) users.set(k, v);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (users.size === 0) {
    const secret = crypto.randomBytes(12).toString('base64url');
    users.set('demo', secret);
    io.out(`No users configured: created user "demo" with secret "${secret}" for this run`);
    log.warn('No --users file or EVTSTREAM_USERS: using a one-run demo user');
  }
  return users;
}

async function serve(argv: string[], io: CliIO): Promise<number> {
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
  const port = intOption('port', values.port, 8080, 0, 65535);
  const maxEventBytes = intOption(
    'max-event-bytes',
    values['max-event-bytes'],
    4 * 1024 * 1024,
    1,
    7 * 1024 * 1024,
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
  const users = loadUsers(values.users, io.env, log, io);
  const trustProxy = values['trust-proxy'] ?? false;

  const service = await StreamService.start({
    db,
    host: values.host ?? '127.0.0.1',
    port,
    users,
    log,
    ...(tls ? { tls } : {}),
    trustProxy,
    secureLoopback: !values['no-secure-loopback'] && !trustProxy,
    maxEventBytes,
  });
  // Listen for signals before announcing readiness: a supervisor may signal at once.
  const stopped = io.stopSignal();
  io.out(
    `evtstream listening on ${service.url} (WebSocket ${service.wsUrl}), database ${describeConnection(db)}`,
  );
  const signal = await stopped;
  log.info(`${signal}: stopping`);
  await service.close();
  return 0;
}

async function migrateCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: MIGRATE_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(MIGRATE_HELP);
    return 0;
  }
  const log = consoleLogger(logLevel(values['log-level']));
  const db = dbConfig(values.db, io.env);
  const kind: SchemaKind = values.dwh ? 'dwh' : 'active';
  const store = await EventStore.open(db, { log });
  try {
    const applied = await migrate(store.db, store.dialect, { kind, log });
    if (applied.length === 0) io.out(`${describeConnection(db)}: ${kind} schema is up to date`);
    for (const name of applied) io.out(`applied ${name}`);
  } finally {
    await store.close();
  }
  return 0;
}

const COMMAND_HELP: Record<string, string> = { serve: SERVE_HELP, migrate: MIGRATE_HELP };

/** Runs a command, naming it in usage errors (parseArgs' own included). */
async function withCommand(command: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(err.message, command);
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message, command);
    throw err;
  }
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        io.err(MAIN_HELP);
        return 2;
      case '-h':
      case '--help':
        io.out(MAIN_HELP);
        return 0;
      case '-v':
      case '--version':
        io.out(VERSION);
        return 0;
      case 'help': {
        const help = rest[0] === undefined ? MAIN_HELP : COMMAND_HELP[rest[0]];
        if (help === undefined) throw new UsageError(`Unknown command "${rest[0]}"`);
        io.out(help);
        return 0;
      }
      case 'serve':
        return await withCommand('serve', () => serve(rest, io));
      case 'migrate':
        return await withCommand('migrate', () => migrateCommand(rest, io));
      default:
        throw new UsageError(`Unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`evtstream: ${err.message}`);
      io.err(`Run "evtstream ${err.command ? `${err.command} ` : ''}--help" for usage.`);
      return 2;
    }
    io.err(`evtstream: ${(err as Error).message ?? String(err)}`);
    return 1;
  }
}
