import fs from 'fs';
import path from 'path';
import type { ParseArgsConfig } from 'util';
import {
  consoleLogger,
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  type LogFormat,
  type Logger,
  type LogLevel,
} from '../../common/log';
import { describeInt, parseInteger, type IntRange } from '../../common/options';
import {
  configFromEnv,
  DEFAULT_SQLITE_FILE,
  parseDbUrl,
  type ConnectionConfig,
} from '../../storage/config';
import { UsageError } from './errors';
import { flagsHelp, type Flag } from './flags';

export { UsageError } from './errors';

/** What the commands share: help text, options, the I/O they talk through, usage errors. */

export const VERSION: string = (
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

/** What every command takes besides its own options (see flags.ts). */
export const COMMON_FLAGS = {
  help: { name: 'help', short: 'h', summary: 'show help' },
  version: { name: 'version', short: 'v', summary: 'print the version' },
  db: {
    name: 'db',
    arg: 'URL',
    env: ['EVTSTREAM_DB', 'DATABASE_URL'],
    default: `sqlite:${DEFAULT_SQLITE_FILE}`,
    summary: 'the database: sqlite:PATH, postgres://user:pass@host:port/db or mysql://...',
    details:
      '(?max=N: pool size; PostgreSQL TLS: ?sslmode=verify-full&sslrootcert=CA.pem, also ' +
      'sslcert, sslkey; MySQL: ?ssl-mode=VERIFY_IDENTITY&ssl-ca=CA.pem, also ssl-cert, ssl-key; ' +
      'README, "On a managed database"; sqlite:PATH?synchronous=normal trades the last commits on power ' +
      'loss for speed). Without a URL, the DB_EVT_* variables of futoin-database AutoConfig ' +
      '(DB_EVT_TYPE, _HOST, _PORT, _USER, _PASS, _DB, _MAXCONN; for SQLite the file in ' +
      'DB_EVT_SOCKET) are read before the default (with DATABASE_URL too, it is an error).',
  },
  'log-level': {
    name: 'log-level',
    arg: 'L',
    env: ['EVTSTREAM_LOG_LEVEL', 'EVTSTREAM_LOG'],
    default: 'info',
    summary: 'the least a log line must be: debug, info, warn, error or silent',
  },
  'log-format': {
    name: 'log-format',
    arg: 'F',
    env: ['EVTSTREAM_LOG_FORMAT'],
    default: 'text',
    summary: 'log lines on stderr: text, or json (one object per line)',
  },
} as const satisfies Record<string, Flag>;

/** The common options of every command's help: database and logs. */
export const DB_HELP = flagsHelp([
  COMMON_FLAGS.db,
  COMMON_FLAGS['log-level'],
  COMMON_FLAGS['log-format'],
]);

export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  db: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
  env: Record<string, string | undefined>;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: () => Promise<string>;
}

export const processIO = (): CliIO => ({
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

type Env = CliIO['env'];

/** The first of an option's variables that is set (see Flag.env). */
function fromEnv(flag: Flag, env: Env): { value: string; from: string } | undefined {
  for (const name of flag.env ?? []) {
    const value = env[name];
    if (value) return { value, from: name };
  }
  return undefined;
}

/** The log level of --log-level (`value`), else of its variables, else info. */
export function logLevel(value: string | undefined, env: Env = {}): LogLevel {
  const given =
    value !== undefined ? { value, from: '--log-level' } : fromEnv(COMMON_FLAGS['log-level'], env);
  if (given === undefined) return 'info';
  if (!isLogLevel(given.value))
    throw new UsageError(`${given.from} must be debug, info, warn, error or silent`);
  return given.value;
}

/** The log format of --log-format (`value`), else of its variable, else text. */
export function logFormat(value: string | undefined, env: Env = {}): LogFormat {
  const given =
    value !== undefined
      ? { value, from: '--log-format' }
      : fromEnv(COMMON_FLAGS['log-format'], env);
  if (given === undefined) return 'text';
  if (!isLogFormat(given.value))
    throw new UsageError(`${given.from} must be ${LOG_FORMATS.join(' or ')}`);
  return given.value;
}

/** The logger of a command: stderr, at the level and in the format asked for. */
export function cliLogger(
  values: { 'log-level'?: string | undefined; 'log-format'?: string | undefined },
  env: Env,
): Logger {
  return consoleLogger(
    logLevel(values['log-level'], env),
    'evtstream',
    logFormat(values['log-format'], env),
  );
}

/**
 * The database of --db (`url`), else of EVTSTREAM_DB, DATABASE_URL or futoin-database's DB_EVT_*
 * variables, else the SQLite file in the working folder. DATABASE_URL and DB_EVT_TYPE together
 * are refused: which one was meant cannot be told.
 */
export function dbConfig(url: string | undefined, env: Env, from = '--db'): ConnectionConfig {
  const given = url !== undefined ? { value: url, from } : fromEnv(COMMON_FLAGS.db, env);
  if (given?.from === 'DATABASE_URL' && env['DB_EVT_TYPE']) {
    throw new UsageError(
      'Both DATABASE_URL and DB_EVT_TYPE are set: say which database with --db or EVTSTREAM_DB',
    );
  }
  try {
    if (given) return parseDbUrl(given.value);
    return configFromEnv('evt', env) ?? parseDbUrl(`sqlite:${DEFAULT_SQLITE_FILE}`);
  } catch (err) {
    throw new UsageError(
      given ? `${given.from}: ${(err as Error).message}` : (err as Error).message,
    );
  }
}

/**
 * The integer of an option, within `range` (common/options, as the components check theirs);
 * `label` (`--port`, or the variable it came from) names it in the error.
 */
export function intOption(
  label: string,
  value: string | undefined,
  fallback: number,
  range: IntRange,
): number {
  if (value === undefined) return fallback;
  const n = parseInteger(value, range);
  if (n === null) throw new UsageError(`${label} must be ${describeInt(range)}`);
  return n;
}
