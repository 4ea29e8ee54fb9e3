import { OptionChecks, TABLE_NAME } from '../common/options';
import { assertIdentifier } from '../storage/store';
import type { GroupCommitLimits } from './GroupCommit';
import type { DBGenServiceOptions } from './DBGenService';
import type { GenServiceOptions } from './GenService';

/** Defaults of the gen services' options (GenServiceOptions, DBGenServiceOptions). */
export const GEN_DEFAULTS = Object.freeze({
  /** Largest event data accepted, in bytes of JSON: 4 MiB (FTN18 1.1 messages carry 8). */
  max_event_bytes: 4 * 1024 * 1024,
  /** Events per group-commit transaction at most. */
  batch_max_events: 500,
  /** JSON bytes per group-commit transaction at most. */
  batch_max_bytes: 4 * 1024 * 1024,
});

/** Checks GenService's options; returns max_event_bytes. */
export function genMaxEventBytes(options: GenServiceOptions): number {
  return new OptionChecks('gen').int(
    'max_event_bytes',
    options.max_event_bytes,
    GEN_DEFAULTS.max_event_bytes,
    { min: 1 },
  );
}

/** Checks DBGenService's own options (GenService checks the rest). */
export function dbGenSettings(options: DBGenServiceOptions): {
  limits: GroupCommitLimits;
  eventTable: string | undefined;
} {
  const check = new OptionChecks('gen');
  return {
    limits: {
      maxEvents: check.int(
        'batch_max_events',
        options.batch_max_events,
        GEN_DEFAULTS.batch_max_events,
        {
          min: 1,
        },
      ),
      maxBytes: check.int(
        'batch_max_bytes',
        options.batch_max_bytes,
        GEN_DEFAULTS.batch_max_bytes,
        {
          min: 1,
        },
      ),
    },
    eventTable: check.string('event_table', options.event_table, TABLE_NAME, assertIdentifier),
  };
}
