import { sleep } from '../common/async';
import { Backoff } from '../common/backoff';
import type { Logger } from '../common/log';
import type { ErrorKind } from './sql';

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const RETRY_DEFAULTS: RetryOptions = { attempts: 8, firstDelayMs: 20, maxDelayMs: 2_000 };

/** Marks an error that struck while COMMIT was on its way: the outcome is unknown, never retry. */
export const COMMIT_UNKNOWN = Symbol('commitUnknown');

/** Runs COMMIT; if it fails, marks the error COMMIT_UNKNOWN before passing it on. */
export async function commitOrMark(commit: () => Promise<unknown>): Promise<void> {
  try {
    await commit();
  } catch (err) {
    if (typeof err === 'object' && err !== null)
      (err as Record<symbol, boolean>)[COMMIT_UNKNOWN] = true;
    throw err;
  }
}

/**
 * Runs `work`, again after deadlocks, serialization failures and unavailable connections (with
 * growing, jittered delays). After a connection lost mid-statement, or an error during COMMIT,
 * the outcome of a write is unknown: such work runs again only when it is `idempotent` (reads,
 * forward-only pointer moves); running anything else again could write it twice.
 */
export async function withRetry<T>(
  work: () => Promise<T>,
  kindOf: (err: unknown) => ErrorKind,
  log: Logger,
  what: string,
  idempotent: boolean,
  options: RetryOptions = RETRY_DEFAULTS,
): Promise<T> {
  const backoff = new Backoff(options.firstDelayMs, options.maxDelayMs);
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      const kind = kindOf(err);
      const unknownOutcome =
        kind === 'lost' || (typeof err === 'object' && err !== null && COMMIT_UNKNOWN in err);
      const again = kind === 'transient' || (idempotent && unknownOutcome);
      if (attempt >= options.attempts || !again) throw err;
      const delay = backoff.next();
      log.debug(`${what}: ${(err as Error).message}; retry ${attempt} in ${delay} ms`);
      await sleep(delay);
    }
  }
}
