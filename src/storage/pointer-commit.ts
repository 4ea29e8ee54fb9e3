import type { PointerAdvance } from './dialects';

interface Waiting {
  move: PointerAdvance;
  /** False once the writer no longer wants it (its session ended). */
  wanted: () => boolean;
  resolve: (held: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Acknowledgement group commit: the pointer writes of many push sessions share statements and
 * commits. While one group is written, new compare-and-sets queue; the next group takes them all
 * (up to `maxRows`, one per consumer) into one statement, and each writer learns whether its own
 * condition held. A lone writer waits for nothing but its own write. A pointer is written only
 * when its writer asks, and its writer asks only after its batch succeeded; a crash between the
 * two loses nothing: the batch is delivered again from the stored pointer.
 */
export class PointerGroupCommit {
  private queue: Waiting[] = [];
  private draining = false;

  constructor(
    /** Writes one group in one commit: per move, whether its pointer is at its `to` now. */
    private readonly write: (moves: readonly PointerAdvance[]) => Promise<boolean[]>,
    private readonly maxRows: number,
  ) {}

  /**
   * Queues a compare-and-set. Resolves true once its group committed with the pointer at `to`,
   * false when its condition failed; rejects when its group failed (nothing of it was written,
   * or, after a lost connection, perhaps all of it: the writer tries again from the pointer it
   * knows, and finds it there). A request no longer `wanted` when its group is cut is left out
   * and resolves false.
   */
  advance(move: PointerAdvance, wanted: () => boolean = () => true): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ move, wanted, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Compare-and-sets waiting for a group (not counting the one being written). */
  get waiting(): number {
    return this.queue.length;
  }

  /** The next group: oldest first, one per consumer (a later one for the same waits its turn). */
  private take(): Waiting[] {
    const group: Waiting[] = [];
    const idents = new Set<string>();
    const rest: Waiting[] = [];
    for (const w of this.queue) {
      if (!w.wanted()) w.resolve(false);
      else if (group.length < this.maxRows && !idents.has(w.move.ident)) {
        idents.add(w.move.ident);
        group.push(w);
      } else rest.push(w);
    }
    this.queue = rest;
    return group;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const group = this.take();
        if (group.length > 0) await this.commit(group);
      }
    } finally {
      this.draining = false;
    }
  }

  private async commit(group: Waiting[]): Promise<void> {
    try {
      const held = await this.write(group.map((w) => w.move));
      group.forEach((w, i) => w.resolve(held[i] ?? false));
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  }
}
