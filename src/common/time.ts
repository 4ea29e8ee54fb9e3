/**
 * Durations and times, one grammar each (README, "Durations and times"):
 * - a duration is a number of milliseconds, or a decimal number with an optional unit
 *   `ms`, `s`, `m`, `h` or `d` (no unit: ms), such as `500ms`, `45s`, `1.5h`, `7d`;
 * - a time is an ISO 8601 date or date and time (without a zone: UTC), or an age: a duration
 *   with its unit, meaning that long ago (`15m`, `2h`, `7d`).
 * Databases take times as `YYYY-MM-DD HH:MM:SS`, UTC (sqlUtc).
 */

const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/;

export const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The longest duration accepted, over 300 years: the most the dialects write into SQL. */
export const MAX_DURATION_MS = 1e13;

/** What a duration looks like, for error messages. */
export const DURATION_FORMS = "ms, or e.g. '500ms', '45s', '30m', '12h', '7d'";

/** A duration in whole ms, or null when `value` is none (see the grammar above). */
export function durationMs(value: unknown, unitRequired = false): number | null {
  let ms: number;
  if (typeof value === 'number' && !unitRequired) {
    ms = value;
  } else if (typeof value === 'string') {
    const m = DURATION_RE.exec(value);
    if (!m || (unitRequired && m[2] === undefined)) return null;
    ms = Number(m[1]) * DURATION_UNIT_MS[(m[2] ?? 'ms') as keyof typeof DURATION_UNIT_MS];
  } else {
    return null;
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) return null;
  return Math.floor(ms);
}

/** A duration the way the grammar writes it, in the largest unit it is a whole number of ('1m'). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const u = DURATION_UNIT_MS[unit];
    if (ms >= u && ms % u === 0) return `${ms / u}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * A duration in ms from a number of ms or a string like '7d', '12h', '30m', '45s', '500ms';
 * throws a TypeError naming `what` when it is none.
 */
export function parseDuration(value: number | string, what = 'duration'): number {
  const ms = durationMs(value);
  if (ms === null)
    throw new TypeError(`Invalid ${what}: ${JSON.stringify(value)} (${DURATION_FORMS})`);
  return ms;
}

/** A date and time without a zone: read as UTC (Date.parse would take local time). */
const ZONELESS_RE = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d(?:\.\d+)?)?)$/;

/**
 * An absolute time in ms since the epoch, or null: ISO 8601 (a date and time without a zone is
 * UTC, as is a date alone); other forms JavaScript's Date.parse reads are taken as it reads them.
 */
export function parseInstant(text: string): number | null {
  const t = text.trim();
  const zoneless = ZONELESS_RE.exec(t);
  const ms = Date.parse(zoneless ? `${zoneless[1]}T${zoneless[2]}Z` : t);
  return Number.isFinite(ms) ? ms : null;
}

/** A time (an instant, or an age before `now`) in ms since the epoch, or null. */
export function parseTime(text: string, now = Date.now()): number | null {
  const age = durationMs(text, true);
  return age !== null ? now - age : parseInstant(text);
}

/** ms since the epoch as the databases take times: 'YYYY-MM-DD HH:MM:SS', UTC. */
export function sqlUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** A time (see parseTime) in the SQL form, or null when it is none. */
export function sqlTime(text: string, now = Date.now()): string | null {
  const ms = parseTime(text, now);
  return ms === null ? null : sqlUtc(ms);
}

const FTN18_TS_RE = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})Z$/;

/**
 * An event's timestamp (FTN18 EventTimestamp, `YYYY-MM-DDTHH:MM:SSZ`; other instants are
 * converted to UTC first) in the SQL form; throws on anything else, ages included.
 */
export function sqlTimestamp(ts: string): string {
  const m = FTN18_TS_RE.exec(ts);
  if (m) return `${m[1]} ${m[2]}`;
  const ms = parseInstant(ts);
  if (ms === null) throw new Error(`Not a timestamp: ${JSON.stringify(ts)}`);
  return sqlUtc(ms);
}
