import net from 'net';

/** Now in ms, monotonic (a clock for tests). */
export type Clock = () => number;

interface Window {
  /** When the window opened: at the first failure counted in it. */
  start: number;
  failures: number;
}

/**
 * Counts failures per key in fixed windows: a key's window opens at its first failure and lasts
 * `windowMs`; with `limit` failures in it, the key is refused until the window ends. Refusals
 * are not failures: they neither extend the window nor count. Successes reset nothing (a caller
 * with one valid account must not buy more guesses at another's). At most `maxKeys` keys are
 * kept; past that the expired go first, then the oldest windows.
 */
export class FailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: Clock = () => performance.now(),
    private readonly maxKeys = 100_000,
  ) {}

  /** Whether `key` has reached the limit in its current window. */
  refuses(key: string): boolean {
    const w = this.current(key);
    return w !== undefined && w.failures >= this.limit;
  }

  /** Counts a failure of `key`; returns the failures in its window now. */
  failed(key: string): number {
    let w = this.current(key);
    if (!w) {
      this.makeRoom();
      w = { start: this.now(), failures: 0 };
      this.windows.set(key, w);
    }
    return ++w.failures;
  }

  /** Keys with a window open now. */
  get size(): number {
    return this.windows.size;
  }

  private current(key: string): Window | undefined {
    const w = this.windows.get(key);
    if (w && this.now() - w.start >= this.windowMs) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }

  private makeRoom(): void {
    if (this.windows.size < this.maxKeys) return;
    const now = this.now();
    for (const [key, w] of this.windows)
      if (now - w.start >= this.windowMs) this.windows.delete(key);
    // Insertion order is the order windows opened in: the oldest go first.
    for (const key of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break;
      this.windows.delete(key);
    }
  }
}

/**
 * The key failures of a client address count under: an IPv4 address as it is (also when
 * IPv4-mapped), an IPv6 address by its /64 prefix (what one subscriber gets: counting single
 * addresses there would give each guesser 2^64 tries), anything else as it is.
 */
export function addressKey(address: string | null | undefined): string {
  if (!address) return 'unknown';
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped?.[1]) return mapped[1];
  if (!net.isIPv6(bare)) return bare;
  const [head = '', tail] = bare.split('::');
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? front
      : [
          ...front,
          ...new Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'),
          ...back,
        ];
  const prefix = groups
    .slice(0, 4)
    .map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16).toString(16) : '0'));
  return `${prefix.join(':')}::/64`;
}
