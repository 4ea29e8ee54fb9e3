import { TABLES } from '../common/constants';

export const ACTIVE_TABLE = TABLES.events;
export const HISTORY_TABLE = TABLES.history;

/**
 * A time for ListQuery: ISO 8601 (`2026-11-23T10:00:00Z`, `2026-11-23`; a time without a zone
 * is taken as UTC) or an age (`90s`, `15m`, `2h`, `7d`: that long ago). Null when invalid.
 */
export function parseTime(text: string, now = Date.now()): string | null {
  const age = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  let ms: number;
  if (age) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[age[2] as 's' | 'm' | 'h' | 'd'];
    ms = now - Number(age[1]) * unit;
  } else {
    // Date and time without a zone: UTC (Date.parse would take local time).
    const local = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(:\d\d(\.\d+)?)?)$/.exec(text.trim());
    ms = Date.parse(local ? `${local[1]}T${local[2]}Z` : text.trim());
  }
  if (!Number.isFinite(ms)) return null;
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}
