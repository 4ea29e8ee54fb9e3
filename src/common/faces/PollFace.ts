import type { AsyncSteps } from 'futoin-asyncsteps';
import { PingFace, type RegisterOptions, type SimpleCCM } from 'futoin-invoker';
import { FTN18_VERSION, IFACE, PING_VERSION, SPEC_DIRS_ALL } from '../constants';
import { registerFace } from './register';

/**
 * Client of futoin.evt.poll: `registerConsumer(as, component)` and
 * `pollEvents(as, component, last_id?, want?)`, which succeeds with the list of events.
 */
export class PollFace extends PingFace {
  static get LATEST_VERSION(): string {
    return FTN18_VERSION;
  }

  static get PING_VERSION(): string {
    return PING_VERSION;
  }

  static spec(): string[] {
    return SPEC_DIRS_ALL;
  }

  /** The interface this face speaks (PushFace overrides it). */
  static get IFACE_NAME(): string {
    return IFACE.poll;
  }

  static override register(
    as: AsyncSteps,
    ccm: SimpleCCM,
    name: string,
    endpoint: unknown,
    credentials: string | null = null,
    options: RegisterOptions = {},
  ): void {
    registerFace(as, ccm, this.IFACE_NAME, this, name, endpoint, credentials, options);
  }

  registerConsumer(as: AsyncSteps, component: string): void {
    this.call(as, 'registerConsumer', { component });
  }

  pollEvents(
    as: AsyncSteps,
    component: string,
    last_id: string | null = null,
    want: string[] | null = null,
  ): void {
    const params: Record<string, unknown> = { component };
    if (last_id !== null) params['last_id'] = last_id;
    if (want !== null) params['want'] = want;
    this.call(as, 'pollEvents', params);
  }
}
