import type { AsyncSteps } from 'futoin-asyncsteps';

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Adds a step that waits `ms`; cancelling it clears the timer. */
export function sleepStep(as: AsyncSteps, ms: number): void {
  as.add((as) => {
    const timer = setTimeout(() => as.success(), ms);
    as.setCancel(() => clearTimeout(timer));
  });
}

/** What withTimeout rejects with when the time is up. */
export class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Settles as `p` does, or rejects with a TimeoutError after `ms`, whichever comes first. The
 * timer keeps no process alive and is cleared once `p` settles.
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for `p`, but at most `ms`: resolves then either way; rejects only if `p` does in time. */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  try {
    await withTimeout(p, ms);
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
  }
}

/** Time for code that waits: now (ms, monotonic) and a cancellable timer (a fake one in tests). */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms` (a timer that keeps no process alive); returns what cancels it. */
  later(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  later: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
