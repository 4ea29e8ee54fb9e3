/**
 * futoin-executor's SecurityProvider, with its caller-setting method typed for subclasses.
 * Version 2.3.7 (pinned in package.json) documents `_setUser` for that use.
 */
import type { AsyncSteps } from 'futoin-asyncsteps';
import { SecurityProvider, type RequestInfo } from 'futoin-executor';

export interface CallerInfo {
  /** FTN8 local user ID. */
  local_id: string;
  global_id: string;
}

export class CallerSettingProvider extends SecurityProvider {
  /** Makes `caller` the authenticated user of `reqinfo`, at security level `level`. */
  protected setCaller(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    level: string,
    caller: CallerInfo,
  ): void {
    this._setUser(as, reqinfo, level, caller);
  }
}
