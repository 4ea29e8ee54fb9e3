import { durationMs, DURATION_FORMS } from './time';

/**
 * Checking options against what can work, one rule per kind of value, for the components (at
 * construction or start) and the command line alike. A refusal names the component and the
 * option: `RangeError: push option request_max must be an integer ≥ 1, got 0`. A value of the
 * wrong type is a TypeError, one out of range a RangeError.
 */

/** The integers an option may take: from `min`, up to `max` when given. */
export interface IntRange {
  min: number;
  max?: number;
}

export const describeInt = (r: IntRange): string =>
  r.max === undefined ? `an integer ≥ ${r.min}` : `an integer from ${r.min} to ${r.max}`;

export const isIntIn = (value: unknown, r: IntRange): value is number =>
  typeof value === 'number' &&
  Number.isSafeInteger(value) &&
  value >= r.min &&
  (r.max === undefined || value <= r.max);

/** An integer written in decimal digits (a command-line value) within `r`, or null. */
export function parseInteger(text: string, r: IntRange): number | null {
  if (!/^-?\d+$/.test(text)) return null;
  const n = Number(text);
  return isIntIn(n, r) ? n : null;
}

const shown = (value: unknown): string =>
  typeof value === 'string' ? JSON.stringify(value) : String(value);

/** Throws the refusal of `value` for `owner`'s option `name`, which must be `what`. */
export function refuseOption(
  owner: string,
  name: string,
  what: string,
  value: unknown,
  expectedType: string,
): never {
  const message = `${owner} option ${name} must be ${what}, got ${shown(value)}`;
  throw typeof value === expectedType ? new RangeError(message) : new TypeError(message);
}

/**
 * Throws unless `minMs`..`maxMs` can pace retries: a first delay above 0 (0 would retry in a
 * tight loop) and a largest delay no shorter than it.
 */
export function checkDelayRange(
  owner: string,
  minName: string,
  maxName: string,
  minMs: number,
  maxMs: number,
): void {
  if (!(minMs > 0 && Number.isFinite(minMs)) || !(maxMs >= minMs && Number.isFinite(maxMs))) {
    throw new RangeError(
      `${owner} options ${minName} and ${maxName} must be delays in ms with 0 < ${minName} ≤ ${maxName}, got ${shown(minMs)} and ${shown(maxMs)}`,
    );
  }
}

/** What a table option must be (the store checks it: see assertIdentifier). */
export const TABLE_NAME = 'a table name (letters, digits and _, at most 63)';

/** The checks of one component's options (`owner` names it in refusals); undefined: `fallback`. */
export class OptionChecks {
  constructor(readonly owner: string) {}

  int(name: string, value: unknown, fallback: number, range: IntRange): number {
    if (value === undefined) return fallback;
    if (!isIntIn(value, range)) refuseOption(this.owner, name, describeInt(range), value, 'number');
    return value;
  }

  /** A time in ms: above 0, or from 0 with `zero` (what 0 means is the option's). */
  ms(name: string, value: unknown, fallback: number, zero = false): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0))
      refuseOption(
        this.owner,
        name,
        zero ? 'a number of ms ≥ 0' : 'a number of ms > 0',
        value,
        'number',
      );
    return value;
  }

  /** A duration (common/time: ms, or a string such as '7d'), in whole ms. */
  duration(name: string, value: unknown, fallback: number): number {
    if (value === undefined) return fallback;
    const ms = durationMs(value);
    if (ms === null) {
      const type = typeof value === 'string' ? 'string' : 'number';
      refuseOption(this.owner, name, `a duration (${DURATION_FORMS})`, value, type);
    }
    return ms;
  }

  bool(name: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean')
      refuseOption(this.owner, name, 'true or false', value, 'boolean');
    return value;
  }

  oneOf<T extends string>(name: string, value: unknown, fallback: T, allowed: readonly T[]): T {
    if (value === undefined) return fallback;
    if (!allowed.includes(value as T))
      refuseOption(this.owner, name, `one of ${allowed.join(', ')}`, value, 'string');
    return value as T;
  }

  /**
   * A string that `accept` takes: it returns false or throws for anything else (the store's
   * assertIdentifier for table names, say). undefined stays undefined.
   */
  string(
    name: string,
    value: unknown,
    what: string,
    accept: (s: string) => unknown = () => true,
  ): string | undefined {
    if (value === undefined) return undefined;
    let ok = typeof value === 'string';
    try {
      ok &&= accept(value as string) !== false;
    } catch {
      ok = false;
    }
    if (!ok) refuseOption(this.owner, name, what, value, 'string');
    return value as string;
  }

  delays(minName: string, maxName: string, minMs: number, maxMs: number): void {
    checkDelayRange(this.owner, minName, maxName, minMs, maxMs);
  }
}
