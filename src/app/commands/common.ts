import fs from 'fs';
import path from 'path';
import type { ParseArgsConfig } from 'util';
import { envLogLevel, isLogLevel, type LogLevel } from '../../common/log';
import { describeInt, parseInteger, type IntRange } from '../../common/options';
import {
  configFromEnv,
  DEFAULT_SQLITE_FILE,
  parseDbUrl,
  type ConnectionConfig,
} from '../../storage/config';

/** What the commands share: help text, options, the I/O they talk through, usage errors. */

export const VERSION: string = (
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

export const DB_HELP = `  --db URL           database: sqlite:PATH, postgres://user:pass@host:port/db or
                     mysql://user:pass@host:port/db (add ?max=N for the pool size;
                     sqlite:PATH?synchronous=normal trades the last commits on power loss
                     for speed). Default: the DB_EVT_* variables of futoin-database
                     AutoConfig (DB_EVT_TYPE, _HOST, _PORT, _USER, _PASS, _DB, _MAXCONN;
                     for SQLite the file in DB_EVT_SOCKET), else sqlite:${DEFAULT_SQLITE_FILE}
                     in the working folder.
  --log-level L      debug, info, warn, error or silent (default: $EVTSTREAM_LOG or info)`;

export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  db: { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** A mistake in the command line: printed with a hint, exit code 2. */
export class UsageError extends Error {
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

export function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return envLogLevel();
  if (!isLogLevel(value))
    throw new UsageError(`--log-level must be debug, info, warn, error or silent`);
  return value;
}

export function dbConfig(url: string | undefined, env: CliIO['env']): ConnectionConfig {
  try {
    if (url) return parseDbUrl(url);
    return configFromEnv('evt', env) ?? parseDbUrl(`sqlite:${DEFAULT_SQLITE_FILE}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The integer of `--name`, within `range` (common/options, as the components check theirs). */
export function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  range: IntRange,
): number {
  if (value === undefined) return fallback;
  const n = parseInteger(value, range);
  if (n === null) throw new UsageError(`--${name} must be ${describeInt(range)}`);
  return n;
}
