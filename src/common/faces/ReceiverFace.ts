import type { AsyncSteps } from 'futoin-asyncsteps';
import type { ChannelContext } from 'futoin-executor';
import { NativeIface, type RegisterOptions } from 'futoin-invoker';
import { FTN18_VERSION, IFACE, SPEC_DIRS_ALL } from '../constants';
import type { Event } from '../event';

/**
 * Client of futoin.evt.receiver, used by a push service to call the consumer back over the
 * bi-directional channel the consumer connected with.
 */
export class ReceiverFace extends NativeIface {
  static get LATEST_VERSION(): string {
    return FTN18_VERSION;
  }

  /**
   * Registers futoin.evt.receiver (version `options.version`, default 1.1) on the caller's
   * channel; the interface is then `channel.iface(ifacever)`. Returns that `ifacever`.
   */
  static register(as: AsyncSteps, channel: ChannelContext, options: RegisterOptions = {}): string {
    const ifacever = `${IFACE.receiver}:${options.version ?? this.LATEST_VERSION}`;
    channel.register(as, ifacever, {
      nativeImpl: this,
      specDirs: SPEC_DIRS_ALL,
      sendOnBehalfOf: false,
      ...options,
    });
    return ifacever;
  }

  /** Pushes one group of events; succeeds with `true` once the consumer accepted them. */
  onEvents(as: AsyncSteps, seq: number, events: readonly Event[]): void {
    this.call(as, 'onEvents', { seq, events });
  }
}
