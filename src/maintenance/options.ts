import { TABLES } from '../common/constants';
import { OptionChecks, TABLE_NAME } from '../common/options';
import { receiverSettings, type ReceiverSettings } from '../receiving/connect';
import { assertIdentifier } from '../storage/store';
import type { ArchiverMode, ArchiverStartOptions, DBEventArchiverOptions } from './DBEventArchiver';
import type { DBEventDiscarderOptions } from './DBEventDiscarder';

/** Defaults of the archiver's constructor and start() options (and RECEIVER_DEFAULTS). */
export const ARCHIVER_DEFAULTS = Object.freeze({
  /** The reliable consumer it is. */
  component: 'ARCHIVER',
  mode: 'auto',
  history_table: TABLES.history,
  /** Polling: the first delay after a poll that found nothing, doubling up to pollMaxMS. */
  pollMinMS: 20,
  pollMaxMS: 1_000,
  /** Apply the warehouse migrations at each start. */
  migrate: true,
});

const ARCHIVER_MODES: readonly ArchiverMode[] = ['push', 'poll', 'auto'];

export interface ArchiverSettings extends ReceiverSettings {
  mode: ArchiverMode;
  historyTable: string;
  pollMinMs: number;
  pollMaxMs: number;
}

/** Checks the archiver's constructor options; returns `migrate`. */
export function archiverMigrate(options: DBEventArchiverOptions): boolean {
  return new OptionChecks('archiver').bool('migrate', options.migrate, ARCHIVER_DEFAULTS.migrate);
}

/** Checks the archiver's start() options (its receiver's included); throws on what cannot work. */
export function archiverSettings(options: ArchiverStartOptions): ArchiverSettings {
  const { mode, history_table, pollMinMS, pollMaxMS, ...receiverOptions } = options;
  const check = new OptionChecks('archiver');
  const settings: ArchiverSettings = {
    ...receiverSettings('archiver', receiverOptions),
    mode: check.oneOf('mode', mode, ARCHIVER_DEFAULTS.mode, ARCHIVER_MODES),
    historyTable:
      check.string('history_table', history_table, TABLE_NAME, assertIdentifier) ??
      ARCHIVER_DEFAULTS.history_table,
    pollMinMs: check.ms('pollMinMS', pollMinMS, ARCHIVER_DEFAULTS.pollMinMS),
    pollMaxMs: check.ms('pollMaxMS', pollMaxMS, ARCHIVER_DEFAULTS.pollMaxMS),
  };
  check.delays('pollMinMS', 'pollMaxMS', settings.pollMinMs, settings.pollMaxMs);
  return settings;
}

/** Defaults of the discarder's start() options. */
export const DISCARDER_DEFAULTS = Object.freeze({
  /** Time between passes, in ms: 10 minutes, as the reference. */
  poll_period_ms: 600_000,
  /** Events deleted per statement, each statement its own transaction. */
  limit_at_once: 1000,
  /** Minimum age of the events kept even when every consumer has them: none. */
  keep_for: 0,
  /** When a consumer counts as stale: never (0 or null mean the same). */
  stale_consumer_ms: 0,
});

/** The discarder's options checked, with the defaults in. */
export interface DiscarderSettings {
  periodMs: number;
  limit: number;
  eventTable: string | undefined;
  consumerTable: string | undefined;
  keepMs: number | undefined;
  staleMs: number | undefined;
}

/** Checks the discarder's start() options; throws on what cannot work. */
export function discarderSettings(options: DBEventDiscarderOptions): DiscarderSettings {
  const check = new OptionChecks('discarder');
  const keepMs = check.duration('keep_for', options.keep_for, DISCARDER_DEFAULTS.keep_for);
  // 0 means off, as for keep_for: "stale at once" would make every lagging consumer stale.
  const staleMs = check.duration(
    'stale_consumer_ms',
    options.stale_consumer_ms ?? undefined,
    DISCARDER_DEFAULTS.stale_consumer_ms,
  );
  return {
    periodMs: check.ms('poll_period_ms', options.poll_period_ms, DISCARDER_DEFAULTS.poll_period_ms),
    limit: check.int('limit_at_once', options.limit_at_once, DISCARDER_DEFAULTS.limit_at_once, {
      min: 1,
    }),
    eventTable: check.string('event_table', options.event_table, TABLE_NAME, assertIdentifier),
    consumerTable: check.string(
      'consumer_table',
      options.consumer_table,
      TABLE_NAME,
      assertIdentifier,
    ),
    keepMs: keepMs > 0 ? keepMs : undefined,
    staleMs: staleMs > 0 ? staleMs : undefined,
  };
}
