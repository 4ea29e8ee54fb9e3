import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import { LIVE_COMPONENT } from '../common/constants';
import { LiveReceiver, type ReceiverStartOptions } from './LiveReceiver';
import type { ReceiverService } from './ReceiverService';
import { ReliableReceiverService } from './ReliableReceiverService';

/**
 * Receives the events of a registered consumer (`options.component`, required: set it per
 * start() or as a subclass's static COMPONENT): every event, in order, at least once. The
 * service keeps the consumer's position, so after a reconnection delivery resumes after the
 * last group this receiver acknowledged; only a group whose answer was lost can come twice.
 *
 * For at-least-once processing, override `_onEvents`: a group is acknowledged only once the
 * steps it adds complete, and a failure there has it delivered again. Without an override the
 * group is acknowledged as soon as 'newEvents' is emitted (futoin-asyncevent calls listeners
 * afterwards): a listener that fails does not get it again.
 */
export class ReliableReceiver extends LiveReceiver {
  static override get COMPONENT(): string | null {
    return null;
  }

  protected override _checkComponent(component: string | null): string {
    if (!component) throw new TypeError('ReliableReceiver needs options.component');
    if (component === LIVE_COMPONENT) {
      throw new TypeError(`${LIVE_COMPONENT} cannot be a reliable consumer: use LiveReceiver`);
    }
    return component;
  }

  protected override _registerReceiver(
    as: AsyncSteps,
    executor: Executor,
    options: ReceiverStartOptions,
  ): ReceiverService {
    return this._serviceClass(ReliableReceiverService).register(as, executor, options);
  }
}
