/**
 * Test helpers around a real service: our StreamService on a fixture database, listening on a
 * free loopback port, and client CCMs built from futoin-invoker.
 */
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import { StreamService, type ServiceConfig } from '../../src/app/service';
import type { DbFixture } from './db';
import { testLog } from './db';

export const TEST_USER = 'alice';
export const TEST_SECRET = 'alice-secret';
export const TEST_CREDENTIALS = `${TEST_USER}:${TEST_SECRET}`;

/** Starts the service on the fixture's database (port 0: a free port), with user alice. */
export async function startService(
  fx: DbFixture,
  extra: Partial<ServiceConfig> = {},
): Promise<StreamService> {
  return StreamService.start({
    db: fx.config,
    host: '127.0.0.1',
    port: 0,
    users: new Map([
      [TEST_USER, TEST_SECRET],
      ['bob', 'bob-secret'],
    ]),
    log: testLog,
    secureLoopback: true,
    ...extra,
  });
}

/** A client CCM without the invoker's default limit zone of 10 calls/s. */
export function clientCcm(): AdvancedCCM {
  const ccm = new AdvancedCCM();
  ccm.limitZone('default', {
    concurrent: 10_000,
    max_queue: 100_000,
    rate: 1e9,
    period_ms: 1000,
    burst: 10_000,
  });
  return ccm;
}

/** Runs AsyncSteps code and resolves with its last result (rejects with Error(code), info kept). */
export function steps<T = unknown>(body: (as: AsyncSteps) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    $as()
      .add(
        (as) => {
          body(as);
          as.add((_as, res: T) => resolve(res));
        },
        (as, err) => {
          const e = new Error(err) as Error & { info?: string };
          e.info = String(as.state.error_info ?? '');
          reject(e);
        },
      )
      .execute();
  });
}

/** Expects the promise to fail with a FutoIn error code; resolves with the error. */
export async function expectFutoinError(
  p: Promise<unknown>,
  code: string,
): Promise<Error & { info?: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { info?: string };
    if (e.message !== code) throw new Error(`Expected ${code}, got ${e.message}: ${e.info ?? ''}`);
    return e;
  }
  throw new Error(`Expected ${code}, but the call succeeded`);
}
