/**
 * The one client both servers are driven with, built only from futoin-invoker, futoin-executor
 * (for the push receiver) and the official FTN18 specs (@futoin/specs), plus the scenario
 * drivers. Nothing here knows which server it talks to.
 *
 * Faces: futoin.evt.gen:1.1 (addEvent, and ping as the no-op call), futoin.evt.poll:1.0
 * (registerConsumer, pollEvents) and futoin.evt.push:1.1 (readyToReceive) with a
 * futoin.evt.receiver:1.1 service on a client Executor. Polling speaks 1.0 because the
 * reference serves polling only through futoin.evt.push, which inherits futoin.evt.poll:1.0
 * (futoin-executor cannot register poll beside push); 1.0 limits each response to 64 KiB.
 */
import { performance } from 'perf_hooks';
import { SPEC_DIRS } from '@futoin/specs';
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { Executor, type RequestInfo } from 'futoin-executor';
import { AdvancedCCM, type NativeIface, type RegisterOptions } from 'futoin-invoker';
import { EVENT_TYPE, type FreshDb } from './db';

export const BENCH_USER = 'bench';
export const BENCH_SECRET = 'secret';
export const CREDENTIALS = `${BENCH_USER}:${BENCH_SECRET}`;
/** Our server's admin (/metrics, ftn18es.admin); the reference has none. */
export const BENCH_ADMIN = 'benchadmin';
export const ADMIN_CREDENTIALS = `${BENCH_ADMIN}:${BENCH_SECRET}`;

/** One scrape of our server's /metrics as the admin: the text, and how long it took (ms). */
export async function scrapeMetrics(endpoint: Endpoint): Promise<{ text: string; ms: number }> {
  const t0 = performance.now();
  const rsp = await fetch(new URL('/metrics', endpoint.url), {
    headers: { authorization: `Basic ${Buffer.from(ADMIN_CREDENTIALS).toString('base64')}` },
  });
  const text = await rsp.text();
  const ms = performance.now() - t0;
  if (rsp.status !== 200) throw new Error(`/metrics answered ${rsp.status}: ${text.slice(0, 200)}`);
  return { text, ms };
}

/** The value of an unlabelled sample in a Prometheus exposition, NaN when absent. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Our server's pointer commits and the moves they stored so far (from /metrics). */
export async function pointerCounters(endpoint: Endpoint): Promise<Record<string, number>> {
  const { text } = await scrapeMetrics(endpoint);
  return {
    commits: metricValue(text, 'evtstream_pointer_commits_total'),
    moves: metricValue(text, 'evtstream_pointer_moves_total'),
  };
}

/** The component name of FTN18's LIVE consumers (not registered, nothing stored). */
export const LIVE = 'LIVE';

/** Giving up when events stop arriving for this long. */
const NO_PROGRESS_MS = 30_000;
/** After the last expected event, how long to keep listening for extra (duplicate) ones. */
const SETTLE_MS = 300;

export interface Endpoint {
  /** HTTP URL. */
  url: string;
  /** WebSocket URL. */
  wsUrl: string;
}

/** Runs AsyncSteps code; resolves with its last result, rejects with Error("code: info"). */
export function run<T = unknown>(body: (as: AsyncSteps) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    $as()
      .add(
        (as) => {
          body(as);
          as.add((_as, res: T) => resolve(res));
        },
        (as, err) => reject(new Error(`${err}: ${String(as.state.error_info ?? '')}`)),
      )
      .execute();
  });
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const cmpIds = (a: string, b: string): number =>
  BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0;
export const sortIds = (ids: readonly string[]): string[] => [...ids].sort(cmpIds);

type Iface = 'gen' | 'poll' | 'push';
const VERSIONS: Record<Iface, string> = { gen: '1.1', poll: '1.0', push: '1.1' };

/** A CCM without futoin-invoker's default limit zone of 10 calls per second. */
function newCcm(): AdvancedCCM {
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

/**
 * The client of one server. Every face is registered in a CCM of its own, so that each caller
 * has its own connection: futoin-invoker shares one WebSocket between the faces of a CCM that
 * have the same endpoint and credentials.
 */
export class BenchClient {
  private readonly ccms: AdvancedCCM[] = [];
  private readonly executors: Executor[] = [];

  constructor(readonly endpoint: Endpoint) {}

  /**
   * Registers a face of `iface` over `transport` in a new CCM and opens its connection (a
   * ping). With `receiver`, a client Executor serving it (futoin.evt.receiver) is given to the
   * face, so the server can call it back over the face's WebSocket.
   */
  async face(
    iface: Iface,
    transport: 'ws' | 'http' = 'ws',
    receiver?: { ifacever: string; impl: object },
  ): Promise<NativeIface> {
    const ccm = newCcm();
    this.ccms.push(ccm);
    const options: RegisterOptions = {
      specDirs: SPEC_DIRS,
      // FTN18 requires a secure channel for futoin.evt.gen; both servers count loopback so.
      secureChannel: true,
    };
    if (receiver) {
      const executor = new Executor(ccm, { specDirs: SPEC_DIRS });
      this.executors.push(executor);
      await run((as) => executor.register(as, receiver.ifacever, receiver.impl, SPEC_DIRS));
      options.executor = executor;
    }
    const url = transport === 'ws' ? this.endpoint.wsUrl : this.endpoint.url;
    await run((as) =>
      ccm.register(as, iface, `futoin.evt.${iface}:${VERSIONS[iface]}`, url, CREDENTIALS, options),
    );
    const face = ccm.iface(iface);
    await this.call(face, 'ping', { echo: 1 });
    return face;
  }

  call<T = unknown>(face: NativeIface, fn: string, params: Record<string, unknown>): Promise<T> {
    return run<T>((as) => face.call(as, fn, params));
  }

  close(): void {
    for (const e of this.executors.splice(0)) e.close();
    for (const c of this.ccms.splice(0)) c.close();
  }
}

/** Whether a run delivered exactly what it should have. */
export interface Check {
  ok: boolean;
  detail: string;
}

/** What one scenario run measured. */
export interface Outcome {
  metrics: Record<string, number>;
  check: Check;
}

/** `received` must be `expected` exactly: every event once, in the same (ID) order. */
export function checkExact(
  expected: readonly string[],
  received: readonly string[],
  what = 'events',
): Check {
  if (expected.length === received.length && expected.every((id, i) => id === received[i])) {
    return { ok: true, detail: `${expected.length} ${what}, each once, in order` };
  }
  const wanted = new Set(expected);
  const seen = new Set<string>();
  let duplicates = 0;
  let unexpected = 0;
  let backwards = 0;
  let previous = -1n;
  for (const id of received) {
    if (seen.has(id)) duplicates++;
    seen.add(id);
    if (!wanted.has(id)) unexpected++;
    if (BigInt(id) <= previous) backwards++;
    previous = BigInt(id);
  }
  const missing = expected.filter((id) => !seen.has(id)).length;
  const at = expected.findIndex((id, i) => id !== received[i]);
  const first = at < 0 ? expected.length : at;
  return {
    ok: false,
    detail:
      `${what}: ${received.length} received of ${expected.length}: ${missing} missing, ` +
      `${duplicates} duplicates, ${unexpected} unexpected, ${backwards} out of order; first ` +
      `difference at #${first}: expected ${expected[first] ?? '(end)'}, got ${received[first] ?? '(end)'}`,
  };
}

export const allOk = (...checks: Check[]): Check => {
  const bad = checks.filter((c) => !c.ok);
  return bad.length ? { ok: false, detail: bad.map((c) => c.detail).join('; ') } : checks[0]!;
};

/** IDs returned to one caller must increase: each call starts after the previous committed. */
export function increasing(ids: readonly string[], who: string): Check {
  const at = ids.findIndex((id, i) => i > 0 && cmpIds(id, ids[i - 1]!) <= 0);
  return at < 0
    ? { ok: true, detail: `${who}: increasing IDs` }
    : { ok: false, detail: `${who}: ID ${ids[at]} returned after ${ids[at - 1]}` };
}

export interface Poller {
  /** One pollEvents call, acknowledging what came before; resolves with how many came. */
  pollOnce(): Promise<number>;
  /** Polls until `count` events came in all (or none came for NO_PROGRESS_MS). */
  drain(count: number): Promise<void>;
  /** Acknowledges every event up to `id` (a pollEvents with it as last_id), to start after it. */
  ackUpTo(id: string): Promise<void>;
  /** Resolves once `count` events came (another loop polls), or rejects after no progress. */
  until(count: number): Promise<void>;
  readonly ids: string[];
  calls: number;
}

/** A registered reliable consumer polling with futoin.evt.poll:1.0 over WebSocket. */
export async function poller(client: BenchClient, component: string): Promise<Poller> {
  const poll = await client.face('poll');
  await client.call(poll, 'registerConsumer', { component });
  let acked: string | undefined;
  const p: Poller = {
    ids: [],
    calls: 0,
    pollOnce: async () => {
      const last = p.ids[p.ids.length - 1] ?? acked;
      const events = await client.call<{ id: string }[]>(poll, 'pollEvents', {
        component,
        ...(last ? { last_id: last } : {}),
      });
      p.calls++;
      p.ids.push(...events.map((e) => e.id));
      return events.length;
    },
    drain: async (count) => {
      let progressAt = performance.now();
      while (p.ids.length < count) {
        if (await p.pollOnce()) progressAt = performance.now();
        else if (performance.now() - progressAt > NO_PROGRESS_MS) return;
        else await delay(10);
      }
    },
    ackUpTo: async (id) => {
      if (id === '0') return;
      await client.call(poll, 'pollEvents', { component, last_id: id });
      acked = id;
    },
    until: async (count) => {
      let seen = p.ids.length;
      let progressAt = performance.now();
      while (p.ids.length < count) {
        await delay(20);
        if (p.ids.length > seen) {
          seen = p.ids.length;
          progressAt = performance.now();
        } else if (performance.now() - progressAt > NO_PROGRESS_MS) {
          throw new Error(`poll stalled: ${p.ids.length} of ${count} events received`);
        }
      }
    },
  };
  return p;
}

/**
 * What the database holds after addEvent calls, read directly (not through the server under
 * test): exactly the returned IDs, each once, each with the data of the call that got it.
 * `sent[c][k]` is the data of caller c's k-th call and `returned[c][k]` the ID it got.
 */
async function checkStored(
  db: FreshDb,
  sent: readonly unknown[][],
  returned: readonly string[][],
): Promise<Check> {
  const rows = await db.stored();
  const exact = checkExact(
    sortIds(returned.flat()),
    rows.map((r) => r.id),
    'stored events',
  );
  if (!exact.ok) return exact;
  const byId = new Map(rows.map((r) => [r.id, JSON.stringify(r.data)]));
  let wrong = 0;
  returned.forEach((ids, c) =>
    ids.forEach((id, k) => {
      if (byId.get(id) !== JSON.stringify(sent[c]?.[k])) wrong++;
    }),
  );
  return wrong
    ? {
        ok: false,
        detail: `${wrong} stored events do not hold the data of the call that got their ID`,
      }
    : { ok: true, detail: `${rows.length} stored events: the returned IDs, each with its data` };
}

/** `count` calls of `fn` one after another on `face`, as an AsyncSteps loop. */
function callLoop(
  face: NativeIface,
  fn: string,
  count: number,
  params: (i: number) => Record<string, unknown>,
  onResult: (i: number, res: unknown) => void,
): Promise<void> {
  return run((as) =>
    as.repeat(count, (as, i) => {
      face.call(as, fn, params(i));
      as.add((_as, res: unknown) => onResult(i, res));
    }),
  );
}

/** Splits `total` calls between `callers`. */
const shares = (total: number, callers: number): number[] =>
  Array.from({ length: callers }, (_v, i) => Math.floor((total + i) / callers));

/**
 * addEvent: `callers` concurrent callers, each on its own connection, `total` events between
 * them; events per second from the first call to the last answer.
 */
export async function addEvents(
  client: BenchClient,
  db: FreshDb,
  total: number,
  callers: number,
  transport: 'ws' | 'http',
): Promise<Outcome> {
  const faces = await Promise.all(shares(total, callers).map(() => client.face('gen', transport)));
  const counts = shares(total, callers);
  const sent = counts.map((n, c) => Array.from({ length: n }, (_v, i) => ({ c, i })));
  const returned: string[][] = faces.map(() => []);
  const t0 = performance.now();
  await Promise.all(
    faces.map((face, c) =>
      callLoop(
        face,
        'addEvent',
        counts[c]!,
        (i) => ({ type: EVENT_TYPE, data: sent[c]![i] }),
        (_i, id) => returned[c]!.push(id as string),
      ),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const check = allOk(
    await checkStored(db, sent, returned),
    ...returned.map((ids, c) => increasing(ids, `caller ${c}`)),
  );
  return { metrics: { rate: total / seconds }, check };
}

/** The no-op call: futoin.ping on the gen face (the same channel as addEvent). */
export async function noop(
  client: BenchClient,
  total: number,
  callers: number,
  transport: 'ws' | 'http' = 'ws',
): Promise<Outcome> {
  const faces = await Promise.all(shares(total, callers).map(() => client.face('gen', transport)));
  const counts = shares(total, callers);
  let wrong = 0;
  const t0 = performance.now();
  await Promise.all(
    faces.map((face, c) =>
      callLoop(
        face,
        'ping',
        counts[c]!,
        (i) => ({ echo: i }),
        (i, res) => {
          if ((res as { echo?: unknown }).echo !== i) wrong++;
        },
      ),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    metrics: { rate: total / seconds },
    check: wrong
      ? { ok: false, detail: `${wrong} of ${total} pings echoed the wrong value` }
      : { ok: true, detail: `${total} pings echoed` },
  };
}

/** Poll drain: `count` stored events read by a registered consumer polling in a loop. */
export async function pollDrain(client: BenchClient, db: FreshDb, count: number): Promise<Outcome> {
  return pollExpected(client, 'DRAIN', await db.seed(count));
}

/** A new consumer `component` polls in a loop until it got `expected` (the stored IDs). */
export async function pollExpected(
  client: BenchClient,
  component: string,
  expected: readonly string[],
): Promise<Outcome> {
  const p = await poller(client, component);
  const t0 = performance.now();
  await p.drain(expected.length);
  const seconds = (performance.now() - t0) / 1000;
  const calls = p.calls;
  await p.pollOnce(); // nothing more must come
  return {
    metrics: { rate: expected.length / seconds, calls },
    check: checkExact(expected, p.ids),
  };
}

export interface Receiver {
  /** IDs in arrival order, and when each arrived (performance.now()). */
  readonly ids: string[];
  readonly at: number[];
  calls: number;
  /** Resolves once `count` events arrived, or rejects when none came for NO_PROGRESS_MS. */
  until(count: number): Promise<void>;
}

/**
 * A push consumer: futoin.evt.receiver:1.1 on a client Executor, futoin.evt.push:1.1 over
 * WebSocket with that executor. A reliable one (any component but LIVE) is registered, and with
 * `ackUpTo` acknowledges every event up to that ID first (a pollEvents with it as last_id, on
 * the same face: push inherits poll), so that it starts after them. readyToReceive is left to
 * the caller (`ready`) so that timing can start right before it.
 */
export async function receiver(
  client: BenchClient,
  component: string,
  options: { ackUpTo?: string } = {},
): Promise<{ r: Receiver; ready: () => Promise<void> }> {
  let wake: (() => void) | null = null;
  const r: Receiver = {
    ids: [],
    at: [],
    calls: 0,
    until: async (count) => {
      let seen = r.ids.length;
      let progressAt = performance.now();
      while (r.ids.length < count) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
        if (r.ids.length > seen) {
          seen = r.ids.length;
          progressAt = performance.now();
        } else if (performance.now() - progressAt > NO_PROGRESS_MS) {
          throw new Error(`push stalled: ${r.ids.length} of ${count} events received`);
        }
      }
    },
  };
  const service = {
    onEvents(_as: AsyncSteps, reqinfo: RequestInfo): void {
      const now = performance.now();
      const { events } = reqinfo.params() as { events: { id: string }[] };
      r.calls++;
      for (const e of events) {
        r.ids.push(e.id);
        r.at.push(now);
      }
      reqinfo.result(true);
      wake?.();
    },
  };
  const push = await client.face('push', 'ws', {
    ifacever: 'futoin.evt.receiver:1.1',
    impl: service,
  });
  if (component !== LIVE) {
    await client.call(push, 'registerConsumer', { component });
    if (options.ackUpTo && options.ackUpTo !== '0') {
      await client.call(push, 'pollEvents', { component, last_id: options.ackUpTo });
    }
  }
  return { r, ready: () => client.call(push, 'readyToReceive', { component }) };
}

/** Push catch-up: `count` stored events pushed to a reliable receiver that attaches afterwards. */
export async function pushCatchUp(
  client: BenchClient,
  db: FreshDb,
  count: number,
): Promise<Outcome> {
  return pushExpected(client, 'CATCHUP', await db.seed(count));
}

/** A new reliable receiver `component` attaches and is pushed `expected` (the stored IDs). */
export async function pushExpected(
  client: BenchClient,
  component: string,
  expected: readonly string[],
): Promise<Outcome> {
  const { r, ready } = await receiver(client, component);
  const t0 = performance.now();
  await ready();
  await r.until(expected.length);
  const seconds = ((r.at[expected.length - 1] ?? performance.now()) - t0) / 1000;
  await delay(SETTLE_MS);
  return {
    metrics: { rate: expected.length / seconds, calls: r.calls },
    check: checkExact(expected, r.ids),
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Push latency: a reliable receiver attached, then `count` addEvent calls `intervalMs` apart
 * (one caller). Latency of an event: from its addEvent call returning to its onEvents call
 * arriving (`p50` ...; also from the call's start, `call_p50` ...), in milliseconds.
 */
export async function pushLatency(
  client: BenchClient,
  count: number,
  intervalMs: number,
): Promise<Outcome> {
  const { r, ready } = await receiver(client, 'LATENCY');
  await ready();
  const gen = await client.face('gen');
  const returned: string[] = [];
  const called = new Map<string, { start: number; end: number }>();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * intervalMs - performance.now();
    if (wait > 0) await delay(wait);
    const start = performance.now();
    const id = await client.call<string>(gen, 'addEvent', { type: EVENT_TYPE, data: { i } });
    called.set(id, { start, end: performance.now() });
    returned.push(id);
  }
  await r.until(count);
  await delay(SETTLE_MS);
  const fromReturn: number[] = [];
  const fromCall: number[] = [];
  r.ids.forEach((id, i) => {
    const c = called.get(id);
    if (!c) return;
    fromReturn.push(r.at[i]! - c.end);
    fromCall.push(r.at[i]! - c.start);
  });
  fromReturn.sort((a, b) => a - b);
  fromCall.sort((a, b) => a - b);
  return {
    metrics: {
      p50: percentile(fromReturn, 50),
      p99: percentile(fromReturn, 99),
      max: percentile(fromReturn, 100),
      call_p50: percentile(fromCall, 50),
      call_p99: percentile(fromCall, 99),
      call_max: percentile(fromCall, 100),
    },
    check: allOk(checkExact(sortIds(returned), r.ids), increasing(returned, 'caller')),
  };
}
