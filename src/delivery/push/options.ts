import { OptionChecks } from '../../common/options';
import type { PushHubOptions } from './hub';
import type { PushServiceOptions } from './PushService';

/** Defaults of the push service's options (PushServiceOptions; the poll ones: POLL_DEFAULTS). */
export const PUSH_DEFAULTS = Object.freeze({
  /** onEvents calls in flight per consumer at most. */
  request_max: 2,
  /** Events queued in memory per consumer at most... */
  queue_max: 10_000,
  /** ...and bytes. */
  queue_max_bytes: 16 * 1024 * 1024,
  /** How long an onEvents call may take before it counts as failed. */
  call_timeout_ms: 30_000,
  /** Retry delays after a failed push: the first, doubling up to the longest. */
  retry_min_ms: 100,
  retry_max_ms: 10_000,
  /** How often at most a move past filtered-out events only is stored (0: at each move). */
  skip_store_ms: 1_000,
  /** Parks in a row (none delivered in between) after which a consumer parks no more. */
  park_max_streak: 10,
  /** onEvents calls per second that every LIVE session of the service shares (0: no limit). */
  live_calls_per_s: 10_000,
  /**
   * onEvents calls per second that every reliable session of the service shares for new events
   * that do not fill a batch (0: no limit).
   */
  reliable_calls_per_s: 10_000,
  /** Backstop polling for new events: fastest and slowest pace. */
  poll_min_ms: 5,
  poll_max_ms: 500,
  /** Listen for PostgreSQL notifications from other processes. */
  listen: true,
});

/** The push options checked, with the defaults in. */
export interface PushSettings {
  callTimeoutMs: number;
  /** What the push engine (PushHub) of a DBPushService runs with. */
  hub: PushHubOptions;
}

/** Checks a push service's own options (pollSettings checks the rest); throws on what cannot work. */
export function pushSettings(options: PushServiceOptions): PushSettings {
  const check = new OptionChecks('push');
  const d = PUSH_DEFAULTS;
  const count = (name: keyof typeof d & keyof PushServiceOptions, fallback: number): number =>
    check.int(name, options[name], fallback, { min: 1 });
  const settings: PushSettings = {
    callTimeoutMs: check.ms('call_timeout_ms', options.call_timeout_ms, d.call_timeout_ms),
    hub: {
      session: {
        maxInFlight: count('request_max', d.request_max),
        queueMaxEvents: count('queue_max', d.queue_max),
        queueMaxBytes: count('queue_max_bytes', d.queue_max_bytes),
        retryMinMs: check.ms('retry_min_ms', options.retry_min_ms, d.retry_min_ms),
        retryMaxMs: check.ms('retry_max_ms', options.retry_max_ms, d.retry_max_ms),
        skipStoreMs: check.ms('skip_store_ms', options.skip_store_ms, d.skip_store_ms, true),
        parkMaxStreak: count('park_max_streak', d.park_max_streak),
      },
      liveCallsPerS: check.int('live_calls_per_s', options.live_calls_per_s, d.live_calls_per_s, {
        min: 0,
      }),
      reliableCallsPerS: check.int(
        'reliable_calls_per_s',
        options.reliable_calls_per_s,
        d.reliable_calls_per_s,
        { min: 0 },
      ),
      waker: {
        pollMinMs:
          options.poll_min_ms === undefined && options.sleep_min !== undefined
            ? check.ms('sleep_min', options.sleep_min, d.poll_min_ms)
            : check.ms('poll_min_ms', options.poll_min_ms, d.poll_min_ms),
        pollMaxMs:
          options.poll_max_ms === undefined && options.sleep_max !== undefined
            ? check.ms('sleep_max', options.sleep_max, d.poll_max_ms)
            : check.ms('poll_max_ms', options.poll_max_ms, d.poll_max_ms),
        listen: check.bool('listen', options.listen, d.listen),
      },
    },
  };
  if (options.sleep_step !== undefined) check.ms('sleep_step', options.sleep_step, 0, true);
  const { session, waker } = settings.hub;
  check.delays('retry_min_ms', 'retry_max_ms', session.retryMinMs, session.retryMaxMs);
  check.delays('poll_min_ms', 'poll_max_ms', waker.pollMinMs, waker.pollMaxMs);
  return settings;
}
