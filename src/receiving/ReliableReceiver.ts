import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import { LiveReceiver, type ReceiverStartOptions } from './LiveReceiver';
import type { ReceiverService } from './ReceiverService';
import { ReliableReceiverService } from './ReliableReceiverService';

/**
 * Receives the events of a registered consumer (`options.component`, or a subclass's static
 * COMPONENT): every event, in order, at least once. The service keeps the consumer's position,
 * so after a reconnection delivery resumes after the last group this receiver acknowledged;
 * only a group whose answer was lost can come twice.
 *
 * Without a component it receives the LIVE stream, as futoin-eventstream's does (its default
 * comes from LiveReceiver): groups in order, one at a time, but nothing is kept for it while it
 * is disconnected and a group dropped by the service on overflow is skipped. Name a component
 * for reliable delivery.
 *
 * For at-least-once processing, override `_onEvents`: a group is acknowledged only once the
 * steps it adds complete, and a failure there has it delivered again. Without an override the
 * group is acknowledged as soon as 'newEvents' is emitted (futoin-asyncevent calls listeners
 * afterwards): a listener that fails does not get it again.
 */
export class ReliableReceiver extends LiveReceiver {
  protected override _registerReceiver(
    as: AsyncSteps,
    executor: Executor,
    options: ReceiverStartOptions,
  ): ReceiverService {
    return this._serviceClass(ReliableReceiverService).register(as, executor, options);
  }
}
