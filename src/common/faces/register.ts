import type { AsyncSteps } from 'futoin-asyncsteps';
import type { RegisterOptions, SimpleCCM } from 'futoin-invoker';
import { FTN18_VERSION, SPEC_DIRS_ALL } from '../constants';

/**
 * What every `*Face.register(as, ccm, name, endpoint, credentials?, options?)` does: registers
 * the FTN18 interface (version `options.version`, default 1.1) in the CCM with the face class as
 * its native implementation and our spec folders.
 */
export function registerFace(
  as: AsyncSteps,
  ccm: SimpleCCM,
  iface: string,
  nativeImpl: unknown,
  name: string,
  endpoint: unknown,
  credentials: string | null = null,
  options: RegisterOptions = {},
): void {
  const version = options.version ?? FTN18_VERSION;
  ccm.register(as, name, `${iface}:${version}`, endpoint, credentials, {
    nativeImpl,
    specDirs: SPEC_DIRS_ALL,
    sendOnBehalfOf: false,
    ...options,
  });
}
