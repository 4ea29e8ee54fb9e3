import { cmpIds, minId, NO_EVENT, type EventId } from '../common/ids';
import type { ConsumerState, EventAge } from '../storage/store';

/**
 * The discarder's decisions, without I/O: how far a pass may go, how far each batch goes, and
 * whether another batch follows. DBEventDiscarder reads what they need and runs the DELETEs;
 * its class comment says why each rule holds.
 */

/**
 * The highest ID a pass may delete: up to the gap-safe horizon and below the newest event (the
 * newest is always kept, so MAX(id) never goes back). Null when that leaves nothing.
 */
export function passCeiling(horizon: EventId, newest: EventId): EventId | null {
  const belowNewest = cmpIds(newest, NO_EVENT) > 0 ? String(BigInt(newest) - 1n) : NO_EVENT;
  const ceiling = minId(horizon, belowNewest);
  return cmpIds(ceiling, NO_EVENT) > 0 ? ceiling : null;
}

/**
 * Whether a consumer is one of the pass's stale ones and still as it was then (idle, at the same
 * pointer): once it acknowledges or is moved, it holds events back again.
 */
export const isIgnored = (c: ConsumerState, stale: readonly ConsumerState[]): boolean =>
  c.idle && stale.some((s) => s.ident === c.ident && s.pointer === c.pointer);

/**
 * How far the next batch may go: the lowest pointer among the consumers that count (not
 * ignored), never above `ceiling`. Null when no consumer counts or the lowest has read nothing.
 */
export function batchBound(
  consumers: readonly ConsumerState[],
  stale: readonly ConsumerState[],
  ceiling: EventId,
): EventId | null {
  let bound: EventId | null = null;
  for (const c of consumers) {
    if (!isIgnored(c, stale)) bound = minId(bound ?? ceiling, c.pointer);
  }
  return bound === null || cmpIds(bound, NO_EVENT) <= 0 ? null : bound;
}

/** One batch: delete the events up to `upTo`, `count` of them. */
export interface Batch {
  upTo: EventId;
  count: number;
}

/**
 * The batch from the first events up to the bound (`ages`, lowest first): the leading old ones,
 * at most `limit`; it stops at the first young one, so the active table stays one unbroken range.
 * Null when the first is young or there is none.
 */
export function planBatch(ages: readonly EventAge[], limit: number): Batch | null {
  let upTo: EventId | null = null;
  let count = 0;
  for (const a of ages) {
    if (!a.old || count >= limit) break;
    upTo = a.id;
    count++;
  }
  return upTo === null ? null : { upTo, count };
}

/**
 * After the DELETE of `batch` removed `deleted` events: the highest ID it removed (the lowest
 * go first; null when none), and whether another batch may follow: only when this one was whole
 * (all it planned, a full `limit` of old events).
 */
export function afterBatch(
  ages: readonly EventAge[],
  batch: Batch,
  deleted: number,
  limit: number,
): { lastId: EventId | null; more: boolean } {
  const lastId = deleted <= 0 ? null : deleted >= batch.count ? batch.upTo : ages[deleted - 1]!.id;
  const more = deleted >= batch.count && batch.count === ages.length && ages.length >= limit;
  return { lastId, more };
}
