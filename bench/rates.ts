/**
 * What an event costs at the rates most deployments see, not in bursts: a trickle of events
 * with one consumer (push, poll, or none), and a fan-out of the same trickle to many push
 * sessions (reliable ones, each its own consumer, or LIVE ones). The server's CPU comes from
 * /proc (every thread: the SQLite binding's thread pool too), the latency from the client's
 * clock: from an addEvent call returning to its event arriving in an onEvents call.
 */
import { performance } from 'perf_hooks';
import {
  allOk,
  BenchClient,
  checkExact,
  delay,
  increasing,
  LIVE,
  percentile,
  poller,
  receiver,
  type Check,
  type Outcome,
  type Receiver,
} from './client';
import { EVENT_TYPE } from './db';
import type { ServerProcess } from './servers/process';
import { WireReceiver } from './wire';

/** Events per second of the trickle. */
export const TRICKLE_RATE = 100;
/** Reliable push sessions of the fan-out scenario, one size after another. */
export const FANOUT_SIZES: readonly number[] = [1, 10, 50, 200];
/** LIVE push sessions of the live scenario. */
export const LIVE_SIZES: readonly number[] = [1000];
/** A poll consumer that got nothing polls again after this long. */
export const POLL_IDLE_MS = 100;
/** Before each measured phase: time for the set-up's work (connections, sessions) to settle. */
const QUIET_MS = 1_000;
/** Giving up when a consumer gets nothing for this long. */
const NO_PROGRESS_MS = 30_000;
/** After the last expected event, how long to keep listening for extra (duplicate) ones. */
const SETTLE_MS = 300;

/** One addEvent: the ID it got, when it was called and when it returned (performance.now()). */
interface Added {
  id: string;
  start: number;
  end: number;
}

/**
 * `count` addEvent calls, one caller, paced `1000 / rate` ms apart from the first (a late call
 * does not push the later ones back); the IDs in call order.
 */
async function trickleAdds(client: BenchClient, count: number, rate: number): Promise<Added[]> {
  const gen = await client.face('gen');
  return paced(count, rate, async (i) => {
    const start = performance.now();
    const id = await client.call<string>(gen, 'addEvent', { type: EVENT_TYPE, data: { i } });
    return { id, start, end: performance.now() };
  });
}

/** `count` calls of `one`, paced `1000 / rate` ms apart from the first; results in call order. */
export async function paced<T>(
  count: number,
  rate: number,
  one: (i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = [];
  const interval = 1000 / rate;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await delay(wait);
    out.push(await one(i));
  }
  return out;
}

/**
 * The floor under any RPC at the trickle's pace: `count` `ping` calls on the gen face (the
 * channel addEvent uses), paced the same. Returns how many echoed the wrong value.
 */
async function tricklePings(client: BenchClient, count: number, rate: number): Promise<number> {
  const gen = await client.face('gen');
  const echoes = await paced(count, rate, async (i) => {
    const res = await client.call<{ echo?: unknown }>(gen, 'ping', { echo: i });
    return res.echo === i;
  });
  return echoes.filter((ok) => !ok).length;
}

/** The newest event ID the server handed out so far ('0' before any). */
const newestOf = (added: readonly Added[]): string => added[added.length - 1]?.id ?? '0';

/** Waits until every receiver has `count` events; rejects when none progresses for long. */
async function allReceived(receivers: readonly Receiver[], count: number): Promise<void> {
  let total = receivers.reduce((n, r) => n + r.ids.length, 0);
  let progressAt = performance.now();
  while (receivers.some((r) => r.ids.length < count)) {
    await delay(20);
    const now = receivers.reduce((n, r) => n + r.ids.length, 0);
    if (now > total) {
      total = now;
      progressAt = performance.now();
    } else if (performance.now() - progressAt > NO_PROGRESS_MS) {
      const short = receivers.filter((r) => r.ids.length < count).length;
      throw new Error(`push stalled: ${short} of ${receivers.length} receivers short of ${count}`);
    }
  }
}

/** Latencies (ms) from each addEvent returning to its event's arrival, over every receiver. */
function latencies(added: readonly Added[], receivers: readonly Receiver[]): number[] {
  const endOf = new Map(added.map((a) => [a.id, a.end]));
  const out: number[] = [];
  for (const r of receivers) {
    r.ids.forEach((id, i) => {
      const end = endOf.get(id);
      if (end !== undefined) out.push(r.at[i]! - end);
    });
  }
  return out.sort((a, b) => a - b);
}

/** Every receiver got exactly `expected`, each once, in order (the first failing one, else ok). */
function everyReceiver(expected: readonly string[], receivers: readonly Receiver[]): Check {
  for (const [i, r] of receivers.entries()) {
    const c = checkExact(expected, r.ids, `receiver ${i}`);
    if (!c.ok) return c;
  }
  return {
    ok: true,
    detail: `${receivers.length} receivers × ${expected.length} events, each once, in order`,
  };
}

/**
 * Server CPU over `work`, in ms per `units` (events or deliveries), and the times its threads
 * slept and woke, per unit.
 */
async function cpuPer<T>(
  server: ServerProcess,
  units: (result: T) => number,
  work: () => Promise<T>,
): Promise<{ result: T; msPer: number; sleepsPer: number; clientMsPer: number }> {
  const c0 = server.cpuSeconds();
  const s0 = server.sleeps();
  const client0 = process.cpuUsage();
  const result = await work();
  const used = server.cpuSeconds() - c0;
  const slept = server.sleeps() - s0;
  const client = process.cpuUsage(client0);
  const n = Math.max(1, units(result));
  return {
    result,
    msPer: (used * 1000) / n,
    sleepsPer: slept / n,
    clientMsPer: (client.user + client.system) / 1000 / n,
  };
}

/**
 * Trickle: `count` events at TRICKLE_RATE per second, three times on one server: with no
 * consumer, with one reliable consumer polling (again at once after events, after POLL_IDLE_MS
 * after none), with one reliable push receiver. Each consumer starts after the events of the
 * phases before (it acknowledges them first). Figures: server CPU ms per event of each phase
 * (from the first addEvent to the last event received), and the push phase's latency.
 */
export async function trickle(
  client: BenchClient,
  server: ServerProcess,
  count: number,
): Promise<Outcome> {
  const checks: Check[] = [];
  const metrics: Record<string, number> = {};
  let newest = '0';

  // The RPC alone: a no-op call at the same pace, nothing stored.
  await delay(QUIET_MS);
  const ping = await cpuPer(
    server,
    () => count,
    () => tricklePings(client, count, TRICKLE_RATE),
  );
  metrics['ping_cpu_ms'] = ping.msPer;
  metrics['ping_sleeps'] = ping.sleepsPer;
  checks.push(
    ping.result
      ? { ok: false, detail: `${ping.result} of ${count} pings echoed the wrong value` }
      : { ok: true, detail: `${count} pings echoed` },
  );

  // No consumer.
  await delay(QUIET_MS);
  const none = await cpuPer(
    server,
    (a: Added[]) => a.length,
    () => trickleAdds(client, count, TRICKLE_RATE),
  );
  metrics['none_cpu_ms'] = none.msPer;
  metrics['none_sleeps'] = none.sleepsPer;
  checks.push(
    increasing(
      none.result.map((a) => a.id),
      'caller (no consumer)',
    ),
  );
  newest = newestOf(none.result);

  // One consumer polling.
  const p = await poller(client, 'TRICKLEPOLL');
  await p.ackUpTo(newest);
  await delay(QUIET_MS);
  let polling = true;
  const pollLoop = (async () => {
    while (polling) if ((await p.pollOnce()) === 0) await delay(POLL_IDLE_MS);
  })();
  const poll = await cpuPer(
    server,
    (a: Added[]) => a.length,
    async () => {
      const added = await trickleAdds(client, count, TRICKLE_RATE);
      await p.until(added.length);
      return added;
    },
  );
  polling = false;
  await pollLoop;
  metrics['poll_cpu_ms'] = poll.msPer;
  metrics['poll_sleeps'] = poll.sleepsPer;
  metrics['poll_calls'] = p.calls;
  checks.push(
    checkExact(
      poll.result.map((a) => a.id),
      p.ids,
      'polled events',
    ),
  );
  newest = newestOf(poll.result);

  // One push receiver.
  const { r, ready } = await receiver(client, 'TRICKLEPUSH', { ackUpTo: newest });
  await ready();
  await delay(QUIET_MS);
  const push = await cpuPer(
    server,
    (a: Added[]) => a.length,
    async () => {
      const added = await trickleAdds(client, count, TRICKLE_RATE);
      await allReceived([r], added.length);
      return added;
    },
  );
  await delay(SETTLE_MS);
  metrics['push_cpu_ms'] = push.msPer;
  metrics['push_sleeps'] = push.sleepsPer;
  const lat = latencies(push.result, [r]);
  metrics['push_p50'] = percentile(lat, 50);
  metrics['push_p99'] = percentile(lat, 99);
  metrics['push_calls'] = r.calls;
  checks.push(
    checkExact(
      push.result.map((a) => a.id),
      r.ids,
      'pushed events',
    ),
  );
  return { metrics, check: allOk(...checks) };
}

/**
 * Fan-out: for each size, that many push sessions on one server (each a WireReceiver on its own
 * connection; reliable ones each its own registered consumer, starting after the events before;
 * or LIVE), then `count` events at TRICKLE_RATE per second. Figures per size: latency p50, p99
 * and max over every delivery, server CPU ms per delivery (one event to one session), the
 * client's, onEvents calls per second, and what `counters` reads before and after, per second.
 * The sessions of a size are closed before the next size starts.
 */
export async function fanout(
  endpoint: ServerProcess,
  sizes: readonly number[],
  count: number,
  kind: 'reliable' | 'live',
  counters?: (server: ServerProcess) => Promise<Record<string, number>>,
): Promise<Outcome> {
  const metrics: Record<string, number> = {};
  const checks: Check[] = [];
  let newest = '0';
  for (const size of sizes) {
    const client = new BenchClient(endpoint);
    const receivers: WireReceiver[] = [];
    try {
      for (let i = 0; i < size; i++) {
        const r = await WireReceiver.connect(endpoint.wsUrl);
        receivers.push(r);
        await r.start(kind === 'live' ? LIVE : `FAN${size}X${i}`, newest);
      }
      await delay(QUIET_MS);
      const before = counters ? await counters(endpoint) : {};
      const t0 = performance.now();
      const run = await cpuPer(
        endpoint,
        (a: Added[]) => a.length * size,
        async () => {
          const added = await trickleAdds(client, count, TRICKLE_RATE);
          await allReceived(receivers, added.length);
          return added;
        },
      );
      const seconds = (performance.now() - t0) / 1000;
      const after = counters ? await counters(endpoint) : {};
      await delay(SETTLE_MS);
      const lat = latencies(run.result, receivers);
      metrics[`n${size}_p50`] = percentile(lat, 50);
      metrics[`n${size}_p99`] = percentile(lat, 99);
      metrics[`n${size}_max`] = percentile(lat, 100);
      metrics[`n${size}_cpu_ms`] = run.msPer;
      metrics[`n${size}_sleeps`] = run.sleepsPer;
      metrics[`n${size}_client_cpu_ms`] = run.clientMsPer;
      metrics[`n${size}_calls_per_s`] = receivers.reduce((n, r) => n + r.calls, 0) / seconds;
      // The rate the events came at: below TRICKLE_RATE when the server could not keep up
      // (each addEvent waits for the one before it).
      metrics[`n${size}_events_per_s`] = run.result.length / seconds;
      for (const [k, v] of Object.entries(after)) {
        metrics[`n${size}_${k}_per_s`] = (v - (before[k] ?? 0)) / seconds;
      }
      checks.push(
        everyReceiver(
          run.result.map((a) => a.id),
          receivers,
        ),
      );
      newest = newestOf(run.result);
    } finally {
      for (const r of receivers) r.close();
      client.close();
    }
    // The server notices the closed connections and ends their sessions.
    await delay(QUIET_MS);
  }
  return { metrics, check: allOk(...checks) };
}
