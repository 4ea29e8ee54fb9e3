import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor, RequestInfo } from 'futoin-executor';
import { LIVE_COMPONENT } from '../common/constants';
import { ErrorCode } from '../common/errors';
import type { Event } from '../common/event';
import { ReceiverService, type ReceiverServiceOptions } from './ReceiverService';

/**
 * futoin.evt.receiver for reliable consumers: a push service may send several groups at once
 * and they may arrive in any order, but `_onEvents` sees them strictly in `seq` order, one at a
 * time, starting from 0:
 * - a call ahead of its turn waits (no polling) until every earlier group was processed, or
 *   until it is cancelled (request timeout, channel closed), which leaves nothing behind;
 * - a call below the next expected `seq` re-delivers a group already processed (the pusher
 *   missed our answer): it is answered `true` at once, without processing it again;
 * - when processing group N fails, N stays the next expected one, so the pusher's retry of N
 *   is accepted; a copy of N arriving while N is in progress waits for that outcome.
 *
 * Sequence IDs restart at 0 with each push session (each `readyToReceive`). Register one
 * instance per connection (LiveReceiver/ReliableReceiver use a fresh Executor per connection),
 * or call `reset()` before asking for a new session on a reused executor.
 *
 * For the LIVE stream (`options.component` LIVE: a ReliableReceiver without a component), the
 * service skips a `seq` number where it dropped events, and never sends that number: there, a
 * call ahead of its turn goes on once nothing before it is being processed or waiting (calls
 * of one channel arrive in the order sent), instead of waiting for ever.
 */
export class ReliableReceiverService extends ReceiverService {
  /** LIVE: a missing `seq` is a gap, not a call still to come. */
  private readonly gapsAllowed: boolean;
  private next = 0;
  /** A group numbered `next` is being processed. */
  private busy = false;
  /** Bumped by reset(): calls of an older session must not touch the new one's state. */
  private session = 0;
  /** Wake-up callbacks of waiting calls, by the seq they carry. */
  private readonly waiting = new Map<number, Set<() => void>>();

  constructor(executor: Executor, options: ReceiverServiceOptions = {}) {
    super(executor, options);
    this.gapsAllowed = options.component === LIVE_COMPONENT;
  }

  /** The `seq` the next new group must carry. */
  get expectedSeq(): number {
    return this.next;
  }

  /** Number of calls waiting for their turn. */
  get waitingCalls(): number {
    let n = 0;
    for (const set of this.waiting.values()) n += set.size;
    return n;
  }

  /**
   * Starts over at `seq` 0 for a new push session. Calls still waiting from the old one fail
   * (InternalError) instead of being mistaken for the new session's groups; a group of the old
   * session already being processed runs to its end, so call it once the old channel is gone.
   */
  reset(): void {
    this.session++;
    this.next = 0;
    this.busy = false;
    const sets = [...this.waiting.values()];
    this.waiting.clear();
    for (const set of sets) for (const wake of set) wake();
  }

  protected override _dispatch(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    seq: number,
    events: Event[],
  ): void {
    const session = this.session;
    as.add((as) => {
      // Whoever holds the turn must give it back on error and cancel too, or every later
      // group would wait for ever: the turn is taken and released within this one step.
      let holdsTurn = false;
      as.setCancel(() => {
        if (holdsTurn) this.finish(session, seq, false);
      });
      as.loop((as) => {
        if (session !== this.session) {
          as.error(ErrorCode.InternalError, 'The push session was reset');
        }
        if (seq < this.next) as.break(); // already processed
        if (!this.busy && (seq === this.next || this.afterGap(seq))) {
          this.busy = true;
          holdsTurn = true;
          this.next = seq;
          as.break();
        }
        this.park(as, seq);
      });
      as.add((as) => {
        if (holdsTurn) super._dispatch(as, reqinfo, seq, events);
      });
      as.add((_as) => {
        if (!holdsTurn) return;
        holdsTurn = false;
        this.finish(session, seq, true);
      });
    });
  }

  protected override _onExecutorClose(): void {
    super._onExecutorClose();
    this.reset();
  }

  /** Ends the processing of group `seq` and wakes the calls that can move on. */
  private finish(session: number, seq: number, processed: boolean): void {
    if (session !== this.session) return;
    this.busy = false;
    if (processed) this.next = seq + 1;
    // Copies of `seq` learn the outcome (done, or theirs to retry); `seq + 1` may now run.
    this.wake(seq);
    if (processed) this.wake(seq + 1);
    // LIVE: after a gap, the first call waiting.
    if (processed && this.gapsAllowed && this.waiting.size > 0) {
      this.wake(Math.min(...this.waiting.keys()));
    }
  }

  /** LIVE: `seq` is ahead of its turn because of a gap: no earlier call waits. */
  private afterGap(seq: number): boolean {
    if (!this.gapsAllowed || seq < this.next) return false;
    for (const waiting of this.waiting.keys()) if (waiting < seq) return false;
    return true;
  }

  /** Suspends the current step until `wake(seq)`; cancelling it unregisters it. */
  private park(as: AsyncSteps, seq: number): void {
    const wake = (): void => as.success();
    let set = this.waiting.get(seq);
    if (!set) {
      set = new Set();
      this.waiting.set(seq, set);
    }
    set.add(wake);
    as.setCancel(() => {
      const current = this.waiting.get(seq);
      if (!current) return;
      current.delete(wake);
      if (current.size === 0) this.waiting.delete(seq);
    });
  }

  private wake(seq: number): void {
    const set = this.waiting.get(seq);
    if (!set) return;
    this.waiting.delete(seq);
    // Each woken call re-checks its turn in its own next loop iteration.
    for (const wake of set) wake();
  }
}
