import type { EventId } from './ids';

/** An event as FTN18 delivers it (futoin.evt.types Event): ts is `YYYY-MM-DDTHH:MM:SSZ`. */
export interface Event {
  id: EventId;
  type: string;
  data: unknown;
  ts: string;
}
