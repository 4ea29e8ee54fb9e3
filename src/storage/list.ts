import { TABLES } from '../common/constants';
import type { EventId } from '../common/ids';
import type { SqlValue } from './sql';
import { assertIdentifier, type EventStore, type StoredEvent } from './store';

/** Which events to list: every condition given must hold. */
export interface ListQuery {
  /** evt_queue (default) or evt_history, or another event table. */
  table?: string;
  fromId?: EventId;
  toId?: EventId;
  types?: readonly string[];
  /** UTC times as 'YYYY-MM-DD HH:MM:SS', inclusive. */
  since?: string;
  until?: string;
  limit: number;
  /** Newest first instead of oldest first. */
  descending?: boolean;
}

export const ACTIVE_TABLE = TABLES.events;
export const HISTORY_TABLE = TABLES.history;

/**
 * Events of an event table (the active queue or the warehouse history) by ID range, types and
 * time range, for people to look at: unlike delivery reads, it is not bounded by the horizon.
 */
export async function listEvents(store: EventStore, q: ListQuery): Promise<StoredEvent[]> {
  const d = store.dialect;
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (q.fromId) {
    where.push(`e.id >= ${d.idParam}`);
    params.push(q.fromId);
  }
  if (q.toId) {
    where.push(`e.id <= ${d.idParam}`);
    params.push(q.toId);
  }
  if (q.types && q.types.length > 0) {
    where.push(`e.type IN (${q.types.map(() => '?').join(', ')})`);
    params.push(...q.types);
  }
  if (q.since) {
    where.push(`e.ts >= ${d.tsParam}`);
    params.push(q.since);
  }
  if (q.until) {
    where.push(`e.ts <= ${d.tsParam}`);
    params.push(q.until);
  }
  const table = d.quote(assertIdentifier(q.table ?? ACTIVE_TABLE));
  const sql =
    `SELECT ${d.idText('e.id')} AS id, e.type, ${d.dataText('e.data')} AS data, ${d.tsText('e.ts')} AS ts` +
    ` FROM ${table} e${where.length ? ` WHERE ${where.join(' AND ')}` : ''}` +
    ` ORDER BY e.id${q.descending ? ' DESC' : ''} LIMIT ${Math.max(0, Math.floor(q.limit))}`;
  return store.db.query<StoredEvent & Record<string, unknown>>(sql, params);
}

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
