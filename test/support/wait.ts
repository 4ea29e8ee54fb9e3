/**
 * Bounded waiting for tests: on a condition, an event or a promise, never on a guessed delay.
 * Timeouts only bound a hang, so they are generous; a wait that times out says what it waited for
 * and what it saw last. See test/README.md.
 */
import { inspect } from 'util';

/**
 * Default bound of a wait (ms): below mocha's 30 s test timeout, so that a hang reports what it
 * waited for rather than mocha's bare timeout.
 */
export const WAIT_MS = 20_000;

/** How often waitFor checks its condition again (ms). */
const CHECK_EVERY_MS = 10;

/** What a wait is for, for its timeout message; a function is asked at the timeout. */
export type Description = string | (() => string);

const textOf = (what: Description): string => (typeof what === 'function' ? what() : what);

type Falsy = false | 0 | '' | null | undefined;

/**
 * A pause of `ms`. Only for a test that needs time itself to pass (a timer that must have fired,
 * a pace to keep): say why at the call. To wait for something to happen, use waitFor.
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves with the first truthy value of `check()` (sync or async), checked at once and then
 * every 10 ms. Rejects after `timeoutMs` with `what` and the last value seen (unless a plain
 * false), and at once if `check()` throws.
 */
export function waitFor<T>(
  what: Description,
  check: () => T | Promise<T>,
  timeoutMs = WAIT_MS,
): Promise<Exclude<T, Falsy>> {
  return poll(what, check, Boolean, timeoutMs, (v) => v !== false) as Promise<Exclude<T, Falsy>>;
}

/**
 * Reads `read()` until `accept` takes its value; resolves with that value. The timeout message
 * shows the last value read: for waits on a number or a row, where "false" would say nothing.
 */
export function waitForValue<T>(
  what: Description,
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = WAIT_MS,
): Promise<T> {
  return poll(what, read, accept, timeoutMs, () => true);
}

async function poll<T>(
  what: Description,
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs: number,
  worthShowing: (value: T) => boolean,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (performance.now() > deadline) {
      const last = worthShowing(value) ? ` (last value: ${inspect(value)})` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${textOf(what)}${last}`);
    }
    await sleep(CHECK_EVERY_MS);
  }
}

/** Resolves with `promise`'s value, or rejects once `timeoutMs` passed without it settling. */
export async function withTimeout<T>(
  promise: Promise<T>,
  what: Description,
  timeoutMs = WAIT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${textOf(what)}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Listener = (...args: unknown[]) => void;

/** Node's EventEmitter, futoin-asyncevent emitters, child processes, sockets. */
export interface EventSource {
  once(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
}

/**
 * Resolves with the arguments of the next `event` of `emitter`; rejects after `timeoutMs`.
 * Start waiting before doing what makes the event happen.
 */
export function waitForEvent<A extends unknown[] = unknown[]>(
  emitter: EventSource,
  event: string,
  timeoutMs = WAIT_MS,
): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    const listener = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args as A);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`Timed out after ${timeoutMs} ms waiting for the event '${event}'`));
    }, timeoutMs);
    emitter.once(event, listener);
  });
}

/**
 * Waits that are checked again whenever the watched thing says it may have changed (notify()):
 * for objects that know when their state moves (output of a child process, calls a receiver
 * got), so a wait ends at once instead of at the next poll.
 */
export class Notifier {
  private readonly waiters = new Set<() => void>();

  /** Re-checks every wait in progress. */
  notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Resolves with the first value of `check()` that is not null, undefined or false, checked now
   * and at each notify(); rejects after `timeoutMs`, or at once when `check()` throws.
   */
  until<T>(
    what: Description,
    check: () => T | null | undefined | false,
    timeoutMs = WAIT_MS,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (err: Error | null, value?: T): void => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value as T);
      };
      const waiter = (): void => {
        let value: T | null | undefined | false;
        try {
          value = check();
        } catch (err) {
          finish(err as Error);
          return;
        }
        if (value !== null && value !== undefined && value !== false) finish(null, value);
      };
      const timer = setTimeout(
        () => finish(new Error(`Timed out after ${timeoutMs} ms waiting for ${textOf(what)}`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
      waiter();
    });
  }
}
