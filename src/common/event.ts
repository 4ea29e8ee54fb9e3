import type { EventId } from './ids';

const EVENT_TYPE_RE = /^[A-Z_]{1,16}$/;

/** An FTN18 EventType: 1 to 16 of A-Z and _. */
export const isEventType = (v: unknown): boolean => typeof v === 'string' && EVENT_TYPE_RE.test(v);

/** An event as FTN18 delivers it (futoin.evt.types Event): ts is `YYYY-MM-DDTHH:MM:SSZ`. */
export interface Event {
  id: EventId;
  type: string;
  data: unknown;
  ts: string;
  /**
   * Ours, beyond FTN18 (see README, "Poison events"): true on an event pushed again from the
   * parked events of a consumer (its ID is below what the consumer got before); absent on every
   * other event. FutoIn map types take extra fields, so receivers that know nothing of it ignore it.
   */
  replayed?: true;
}
