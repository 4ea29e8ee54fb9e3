/** The async helpers: sleep, the AsyncSteps sleep step, and the one timeout race. */
import { expect } from 'chai';
import $as from 'futoin-asyncsteps';
import { sleep, sleepStep, TimeoutError, waitAtMost, withTimeout } from '../../src/common/async';

/**
 * Runs `body` with setTimeout/clearTimeout recorded: resolves with the timers of `delay` ms it
 * set, and whether each was cleared.
 */
async function timersOf(delay: number, body: () => Promise<void>): Promise<boolean[]> {
  const set = global.setTimeout;
  const clear = global.clearTimeout;
  const made = new Map<unknown, boolean>();
  global.setTimeout = ((fn: () => void, ms?: number) => {
    const t = set(fn, ms);
    if (ms === delay) made.set(t, false);
    return t;
  }) as typeof setTimeout;
  global.clearTimeout = ((t: NodeJS.Timeout | undefined) => {
    if (made.has(t)) made.set(t, true);
    clear(t);
  }) as typeof clearTimeout;
  try {
    await body();
  } finally {
    global.setTimeout = set;
    global.clearTimeout = clear;
  }
  return [...made.values()];
}

const never = new Promise<never>(() => undefined);

describe('async helpers', function () {
  it('sleep resolves once the time has passed', async function () {
    const start = performance.now();
    await sleep(30);
    expect(performance.now() - start).to.be.at.least(29);
  });

  it('sleepStep waits, then the next step runs', async function () {
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const as = $as();
      sleepStep(as, 30);
      as.add((_as) => resolve());
      as.execute();
    });
    expect(performance.now() - start).to.be.at.least(29);
  });

  it('cancelling a sleepStep clears its timer', async function () {
    const cleared = await timersOf(60_000, async () => {
      const as = $as();
      sleepStep(as, 60_000);
      as.execute();
      await sleep(5);
      as.cancel();
    });
    expect(cleared).to.deep.equal([true]);
  });

  it('withTimeout settles as the promise does, and clears its timer', async function () {
    const failure = new Error('boom');
    const cleared = await timersOf(60_000, async () => {
      expect(await withTimeout(Promise.resolve(7), 60_000)).to.equal(7);
      const err = await withTimeout(Promise.reject(failure), 60_000).catch((e: unknown) => e);
      expect(err).to.equal(failure);
    });
    expect(cleared).to.deep.equal([true, true]);
  });

  it('withTimeout rejects with a TimeoutError when the time is up', async function () {
    const err = await withTimeout(never, 20).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TimeoutError);
    expect((err as Error).message).to.equal('no answer within 20 ms');
  });

  it('waitAtMost resolves when the time is up, and passes a failure in time on', async function () {
    await waitAtMost(never, 20);
    await waitAtMost(Promise.resolve('done'), 60_000);
    const failure = new Error('boom');
    expect(await waitAtMost(Promise.reject(failure), 60_000).catch((e: unknown) => e)).to.equal(
      failure,
    );
  });
});
