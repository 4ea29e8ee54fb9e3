import type { XferBuilder } from 'futoin-database';
import { TABLES } from '../common/constants';
import { invalidRequest } from '../common/errors';
import { ATTR, OPERATIONS, tracedSync } from '../common/tracing';
import { assertEventType, encodeEventData } from './encode';
import { GenFace } from '../common/faces/GenFace';

/** futoin-database limits every query of a transaction to 10,000 characters (futoin.db.l1 Query). */
const FUTOIN_DB_QUERY_LIMIT = 10_000;
/** Room for the rest of the INSERT statement around the data literal. */
const INSERT_OVERHEAD = 200;

/**
 * GenFace with the native FTN18 extension `addXferEvent`: the event becomes part of the caller's
 * own futoin-database transaction, so it exists if and only if that transaction commits.
 */
export class DBGenFace extends GenFace {
  get DB_EVENT_TABLE(): string {
    return TABLES.events;
  }

  /**
   * Adds an event INSERT to `xb`. Throws (InvalidRequest) before touching `xb` when the type is
   * invalid, the data cannot travel as JSON unchanged, or the statement would exceed
   * futoin-database's 10,000-character query limit (use addEvent for larger events).
   */
  addXferEvent(xb: XferBuilder, type: string, data: unknown, table: string = TABLES.events): void {
    tracedSync(OPERATIONS.addXferEvent, table, (span) => {
      assertEventType(type);
      const { json, bytes } = encodeEventData(data, Number.MAX_SAFE_INTEGER);
      if (span.isRecording()) {
        span.setAttribute(ATTR.eventType, type);
        span.setAttribute(ATTR.bodySize, bytes);
      }
      const helpers = xb.helpers();
      const literal = helpers.escape(json);
      if (literal.length + table.length + INSERT_OVERHEAD > FUTOIN_DB_QUERY_LIMIT) {
        throw invalidRequest(
          `Event data of ${json.length} characters does not fit futoin-database's ${FUTOIN_DB_QUERY_LIMIT}-character ` +
            'query limit inside a transaction; use addEvent for large events',
        );
      }
      xb.insert(table, { affected: 1 })
        .set('type', type)
        .set('data', json)
        .set('ts', helpers.now());
    });
  }
}
