/**
 * Helpers for the receiving suites: an in-process futoin.evt.push service made of real futoin
 * code that pushes what a test tells it to, and a caller of futoin.evt.receiver over the
 * internal channel.
 */
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor, RequestInfo } from 'futoin-executor';
import PingService from 'futoin-executor/PingService';
import { SPEC_DIRS_ALL } from '../../src/common/constants';
import type { Event } from '../../src/delivery/poll/PollService';
import { ReceiverFace } from '../../src/common/faces/ReceiverFace';

/** Events with IDs `first`, `first + 1`, ... */
export function makeEvents(first: number, count: number, type = 'T'): Event[] {
  return Array.from({ length: count }, (_, i) => ({
    id: String(first + i),
    type,
    data: { n: first + i },
    ts: '2026-01-01T00:00:00Z',
  }));
}

/** How a call ended: its result, or its error code. */
export type Outcome = { ok: true; result: unknown } | { ok: false; code: string; info: string };

/** A call in progress: `root` cancels it. */
export interface Call {
  root: AsyncSteps;
  done: Promise<Outcome>;
}

/** Runs AsyncSteps code; `done` settles with its outcome (never rejects). */
export function call(body: (as: AsyncSteps) => void): Call {
  const root = $as();
  const done = new Promise<Outcome>((resolve) => {
    root
      .add(
        (as) => {
          body(as);
          as.add((_as, result: unknown) => resolve({ ok: true, result }));
        },
        (as, code) => resolve({ ok: false, code, info: String(as.state.error_info ?? '') }),
      )
      .execute();
  });
  return { root, done };
}

/** Runs AsyncSteps code; resolves with its result or rejects with Error(code: info). */
export async function run<T = unknown>(body: (as: AsyncSteps) => void): Promise<T> {
  const outcome = await call(body).done;
  if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.info}`);
  return outcome.result as T;
}

/** A consumer's channel as the fake push service sees it. */
export class PushSession {
  constructor(
    readonly component: string,
    readonly want: string[] | null,
    private readonly receiver: ReceiverFace,
  ) {}

  /** Calls the consumer's onEvents. */
  push(seq: number, events: Event[]): Call {
    return call((as) => this.receiver.onEvents(as, seq, events));
  }
}

/**
 * futoin.evt.push:1.1 as a test needs it: registerConsumer records the component, pollEvents
 * returns nothing, readyToReceive registers the caller's receiver and opens a PushSession.
 */
export class FakePushService extends PingService {
  readonly sessions: PushSession[] = [];
  readonly registered: string[] = [];
  /** When each readyToReceive call came (performance.now()), failed ones included. */
  readonly readyCalls: number[] = [];
  /** When set, readyToReceive fails with this error code. */
  failReady: string | null = null;

  static override register(as: AsyncSteps, executor: Executor): FakePushService {
    const impl = new FakePushService();
    executor.register(as, 'futoin.evt.push:1.1', impl, SPEC_DIRS_ALL);
    return impl;
  }

  registerConsumer(_as: AsyncSteps, reqinfo: RequestInfo): void {
    this.registered.push(String(reqinfo.params()['component']));
    reqinfo.result(true);
  }

  pollEvents(_as: AsyncSteps, reqinfo: RequestInfo): void {
    reqinfo.result([]);
  }

  readyToReceive(as: AsyncSteps, reqinfo: RequestInfo): void {
    this.readyCalls.push(performance.now());
    if (this.failReady) as.error(this.failReady, 'Told to fail');
    const params = reqinfo.params() as { component: string; want?: string[] | null };
    const channel = reqinfo.channel();
    const ifacever = ReceiverFace.register(as, channel);
    as.add((_as) => {
      const receiver = channel.iface<ReceiverFace>(ifacever);
      this.sessions.push(new PushSession(params.component, params.want ?? null, receiver));
      reqinfo.result(true);
    });
  }

  get lastSession(): PushSession {
    const s = this.sessions[this.sessions.length - 1];
    if (!s) throw new Error('No push session yet');
    return s;
  }
}

/** Handles and requests keeping the event loop alive, by type (process.getActiveResourcesInfo). */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

/** Resource types of which there are more now than in `baseline` (empty when none). */
export function resourcesAbove(baseline: Map<string, number>): string[] {
  const above: string[] = [];
  for (const [type, n] of activeResources()) {
    if (n > (baseline.get(type) ?? 0)) above.push(`${type}: ${n} > ${baseline.get(type) ?? 0}`);
  }
  return above;
}
