/** The logger the services write to. Plain lines on stderr by default; replace it to route logs. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function isLogLevel(v: string): v is LogLevel {
  return v in ORDER;
}

/** Writes `<ISO time> <LEVEL> <message>` lines to stderr, from `level` up. */
export function consoleLogger(level: LogLevel = 'info', prefix = 'evtstream'): Logger {
  const min = ORDER[level];
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string): void => {
    if (ORDER[lvl] >= min) {
      process.stderr.write(`${new Date().toISOString()} ${lvl.toUpperCase()} [${prefix}] ${msg}\n`);
    }
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
  };
}

/** The level from EVTSTREAM_LOG, or `fallback`. */
export function envLogLevel(fallback: LogLevel = 'info'): LogLevel {
  const v = process.env['EVTSTREAM_LOG'];
  return v && isLogLevel(v) ? v : fallback;
}

export const defaultLogger = (): Logger => consoleLogger(envLogLevel());
