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
  /** UTC times as 'YYYY-MM-DD HH:MM:SS' (common/time's sqlTime), inclusive. */
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
