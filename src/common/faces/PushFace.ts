import type { AsyncSteps } from 'futoin-asyncsteps';
import { IFACE } from '../constants';
import { PollFace } from './PollFace';

/**
 * Client of futoin.evt.push (which inherits futoin.evt.poll): `readyToReceive(as, component,
 * want?)` asks the service to push events over this bi-directional channel to the
 * futoin.evt.receiver interface registered on the executor given as `options.executor`.
 */
export class PushFace extends PollFace {
  static override get IFACE_NAME(): string {
    return IFACE.push;
  }

  readyToReceive(as: AsyncSteps, component: string, want: string[] | null = null): void {
    const params: Record<string, unknown> = { component };
    if (want !== null) params['want'] = want;
    this.call(as, 'readyToReceive', params);
  }
}
