/**
 * Row counts of event tables, counted again only when counting is cheap or the last count is
 * old. COUNT(*) reads a whole table or index: about 250 ms at a million rows on SQLite, paid by
 * every /metrics scrape and stats call. A count that took longer than SLOW_COUNT_MS is kept and
 * served with its age; the next one runs in the background once the kept one is older than
 * ten times what counting took (and at least MIN_REFRESH_MS), so counting a big table takes at
 * most a tenth of the database's time however often it is asked. Only a table whose IDs span
 * KEEP_FROM_ROWS or more is kept (the span bounds its rows; a slow moment of a small table's
 * count, a busy pool, a pause, keeps nothing): small tables always get an exact, fresh figure.
 */

/** A count, and how old it is: 0 when it was counted for this call. */
export interface KeptCount {
  count: number;
  /** Milliseconds since the count began. */
  ageMs: number;
}

/** A count that took longer than this is kept and served with its age. */
export const SLOW_COUNT_MS = 20;
/** A kept count is counted again once older than this at least. */
export const MIN_REFRESH_MS = 5_000;
/** Tables whose IDs span fewer are counted at every call, however long it takes. */
export const KEEP_FROM_ROWS = 100_000;

interface Entry {
  count: number;
  /** When the count began (Date.now()). */
  at: number;
  /** How long it took, ms. */
  tookMs: number;
  refreshing: Promise<void> | null;
}

export class TableCounts {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The count of `table`, whose IDs span `span` now (newest − oldest + 1, at least its rows):
   * counted now (with `count`) when there is none yet, the table is small or counting is quick;
   * else the kept one, refreshed in the background once it is old enough. A failed background
   * count keeps the old figure (its age grows); a failed count made for this call rejects.
   */
  async get(table: string, span: number, count: () => Promise<number>): Promise<KeptCount> {
    const entry = this.entries.get(table);
    if (!entry || entry.tookMs <= SLOW_COUNT_MS || span < KEEP_FROM_ROWS) {
      const fresh = await this.count(table, count);
      return { count: fresh.count, ageMs: 0 };
    }
    const ageMs = Math.max(0, this.now() - entry.at);
    if (!entry.refreshing && ageMs >= Math.max(MIN_REFRESH_MS, 10 * entry.tookMs)) {
      entry.refreshing = this.count(table, count).then(
        () => undefined,
        () => {
          entry.refreshing = null;
        },
      );
    }
    return { count: entry.count, ageMs };
  }

  private async count(table: string, count: () => Promise<number>): Promise<Entry> {
    const at = this.now();
    const n = await count();
    const entry: Entry = { count: n, at, tookMs: this.now() - at, refreshing: null };
    const kept = this.entries.get(table);
    // A slower count that began earlier never replaces a newer one.
    if (!kept || kept.at <= at) this.entries.set(table, entry);
    return entry;
  }
}
