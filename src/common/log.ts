/**
 * A value a log line carries besides its message. An Error is written as its message; undefined
 * leaves the field out.
 */
export type LogValue = string | number | boolean | bigint | null | undefined | Error;

/**
 * What a log line is about, by name: `consumer`, `event_id`, `session`, `err` and the like.
 * `time`, `level`, `name` and `msg` are the line's own and cannot be fields.
 */
export type LogFields = Readonly<Record<string, LogValue>>;

/**
 * The logger the services write to. Plain lines on stderr by default; replace it to route logs
 * (a logger that ignores the fields argument still works).
 */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** A failure as a log field: an Error as it is, anything else (a FutoIn error code) as text. */
export const errorOf = (err: unknown): Error | string => (err instanceof Error ? err : String(err));

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function isLogLevel(v: string): v is LogLevel {
  return v in ORDER;
}

/** `text`: `<ISO time> <LEVEL> [<name>] <message> key=value ...`; `json`: one object a line. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(v: string): v is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(v);
}

const RESERVED = new Set(['time', 'level', 'name', 'msg']);

/** A field's value as JSON takes it: text for errors and big integers. */
function plain(v: LogValue): string | number | boolean | null {
  if (v instanceof Error) return v.message;
  if (typeof v === 'bigint') return v.toString();
  return v ?? null;
}

/** ` key=value` per field; text with spaces, quotes, `=` or nothing in it is quoted as JSON. */
function textFields(fields: LogFields): string {
  let out = '';
  for (const key in fields) {
    const v = fields[key];
    if (v === undefined || RESERVED.has(key)) continue;
    const p = plain(v);
    out += ` ${key}=${typeof p === 'string' && (p === '' || /[\s"=\\]/.test(p)) ? JSON.stringify(p) : String(p)}`;
  }
  return out;
}

function jsonLine(
  time: string,
  level: string,
  name: string,
  msg: string,
  fields: LogFields | undefined,
): string {
  const line: Record<string, string | number | boolean | null> = { time, level, name, msg };
  if (fields) {
    for (const key in fields) {
      const v = fields[key];
      if (v !== undefined && !RESERVED.has(key)) line[key] = plain(v);
    }
  }
  return JSON.stringify(line);
}

/**
 * Writes lines from `level` up to stderr (or `write`): `<ISO time> <LEVEL> [<prefix>] <message>`
 * with the fields appended as `key=value`, or in the json format one object per line:
 * `{"time":"...","level":"info","name":"<prefix>","msg":"...", ...fields}`.
 */
export function consoleLogger(
  level: LogLevel = 'info',
  prefix = 'evtstream',
  format: LogFormat = 'text',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = ORDER[level];
  const line = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (ORDER[lvl] < min) return;
    const time = new Date().toISOString();
    write(
      format === 'json'
        ? `${jsonLine(time, lvl, prefix, msg, fields)}\n`
        : `${time} ${lvl.toUpperCase()} [${prefix}] ${msg}${fields ? textFields(fields) : ''}\n`,
    );
  };
  return {
    debug: (m, f) => line('debug', m, f),
    info: (m, f) => line('info', m, f),
    warn: (m, f) => line('warn', m, f),
    error: (m, f) => line('error', m, f),
  };
}

/** The level from EVTSTREAM_LOG_LEVEL (or EVTSTREAM_LOG), or `fallback`. */
export function envLogLevel(fallback: LogLevel = 'info'): LogLevel {
  const v = process.env['EVTSTREAM_LOG_LEVEL'] || process.env['EVTSTREAM_LOG'];
  return v && isLogLevel(v) ? v : fallback;
}

/** The format from EVTSTREAM_LOG_FORMAT, or text. */
export function envLogFormat(): LogFormat {
  const v = process.env['EVTSTREAM_LOG_FORMAT'];
  return v && isLogFormat(v) ? v : 'text';
}

export const defaultLogger = (): Logger =>
  consoleLogger(envLogLevel(), 'evtstream', envLogFormat());
