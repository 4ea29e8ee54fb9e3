import type { AsyncSteps } from 'futoin-asyncsteps';
import { PingFace, type RegisterOptions, type SimpleCCM } from 'futoin-invoker';
import { FTN18_VERSION, IFACE, PING_VERSION, SPEC_DIRS_ALL } from '../constants';
import { registerFace } from './register';

/** Client of futoin.evt.gen: `addEvent(as, type, data)` succeeds with the new event's ID. */
export class GenFace extends PingFace {
  static get LATEST_VERSION(): string {
    return FTN18_VERSION;
  }

  static get PING_VERSION(): string {
    return PING_VERSION;
  }

  static spec(): string[] {
    return SPEC_DIRS_ALL;
  }

  static override register(
    as: AsyncSteps,
    ccm: SimpleCCM,
    name: string,
    endpoint: unknown,
    credentials: string | null = null,
    options: RegisterOptions = {},
  ): void {
    registerFace(as, ccm, IFACE.gen, this, name, endpoint, credentials, options);
  }

  addEvent(as: AsyncSteps, type: string, data: unknown): void {
    this.call(as, 'addEvent', { type, data });
  }
}
