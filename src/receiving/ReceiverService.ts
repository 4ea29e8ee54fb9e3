import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor, RequestInfo } from 'futoin-executor';
import { FTN18_VERSION, IFACE, SPEC_DIRS_ALL } from '../common/constants';
import { ErrorCode } from '../common/errors';
import type { Event } from '../common/event';
import type { ReceiverStartOptions } from './LiveReceiver';

/**
 * Options of `ReceiverService.register()`: the base classes read none; the receivers pass their
 * start options, for subclasses that want them.
 */
export type ReceiverServiceOptions = Readonly<ReceiverStartOptions>;

/** A ReceiverService class (or subclass) as `register()` constructs it. */
export type ReceiverServiceClass<T extends ReceiverService> = new (
  executor: Executor,
  options: ReceiverServiceOptions,
) => T;

/**
 * futoin.evt.receiver: the consumer's side of push delivery. Register it on the Executor given
 * to the push face's CCM (`options.executor`); subclasses implement `_onEvents`. Events are
 * handled as they arrive, in parallel and in any order (fine for LIVE consumers; reliable ones
 * use ReliableReceiverService). Every call is answered `true` once `_onEvents` succeeded.
 */
export class ReceiverService {
  /** Calls being handled: cancelled when the executor closes, so none outlives it. */
  private readonly active = new Set<RequestInfo>();

  constructor(executor: Executor, _options: ReceiverServiceOptions = {}) {
    executor.once('close', () => this._onExecutorClose());
  }

  /** Registers futoin.evt.receiver:1.1 on `executor`; returns the new service. */
  static register<T extends ReceiverService>(
    this: ReceiverServiceClass<T>,
    as: AsyncSteps,
    executor: Executor,
    options: ReceiverServiceOptions = {},
  ): T {
    const impl = new this(executor, options);
    executor.register(as, `${IFACE.receiver}:${FTN18_VERSION}`, impl, SPEC_DIRS_ALL);
    return impl;
  }

  /** The executor's entry point for `onEvents(seq, events)`. */
  onEvents(as: AsyncSteps, reqinfo: RequestInfo): void {
    const params = reqinfo.params() as { seq: number; events: Event[] };
    as.add((as) => {
      this.active.add(reqinfo);
      // Runs on error and on cancel (timeout, executor closed) alike.
      as.setCancel(() => this.active.delete(reqinfo));
      this._dispatch(as, reqinfo, params.seq, params.events);
      as.add((_as) => {
        this.active.delete(reqinfo);
        reqinfo.result(true);
      });
    });
  }

  /** Number of onEvents calls in progress (waiting or being handled). */
  get activeCalls(): number {
    return this.active.size;
  }

  /** Hands the events of one call to `_onEvents`; ReliableReceiverService orders them first. */
  protected _dispatch(as: AsyncSteps, reqinfo: RequestInfo, _seq: number, events: Event[]): void {
    // A step of its own, so an `as.success()` in `_onEvents` cannot clash with our next step.
    as.add((as) => this._onEvents(as, reqinfo, events));
  }

  /**
   * Override to handle events: add steps that complete once the events are reliably scheduled
   * for processing (FTN18: only then may the call succeed). Raising an error fails the call.
   */
  protected _onEvents(as: AsyncSteps, _reqinfo: RequestInfo, _events: Event[]): void {
    as.error(ErrorCode.NotImplemented, 'Override ReceiverService#_onEvents');
  }

  /**
   * A closed executor serves nobody: cancel what it still handles (the request timeout would
   * otherwise keep each alive, and the process with it, for up to `reqTimeout`).
   */
  protected _onExecutorClose(): void {
    for (const reqinfo of this.active) {
      // RequestInfo offers no synchronous cancel; 1 ms is the shortest it schedules.
      reqinfo.cancelAfter(1);
    }
  }
}
