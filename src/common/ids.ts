/**
 * Event IDs are decimal strings of up to 18 digits (FTN18 EventID). They exceed 2^53, so they are
 * never turned into a JS number: compare them by length, then lexically.
 */
export type EventId = string;

const EVENT_ID_RE = /^[1-9][0-9]{0,17}$/;

export const isEventId = (v: unknown): v is EventId => typeof v === 'string' && EVENT_ID_RE.test(v);

/** Negative, zero or positive as `a` is below, equal to or above `b`. Accepts '0' as "none". */
export function cmpIds(a: EventId, b: EventId): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export const maxId = (a: EventId, b: EventId): EventId => (cmpIds(a, b) >= 0 ? a : b);
export const minId = (a: EventId, b: EventId): EventId => (cmpIds(a, b) <= 0 ? a : b);

/** The "before every event" position. */
export const NO_EVENT: EventId = '0';
