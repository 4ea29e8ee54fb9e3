/**
 * /metrics on the real service: HTTP Basic auth for admins only (or open, or not served), the
 * Prometheus text format, and figures that follow what clients do: events added, a polling
 * consumer's deliveries and lag, a push receiver's session, calls and failures. A scrape that
 * cannot read the store answers 503 and the service keeps serving.
 */
import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import type { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/delivery/poll/PollService';
import { GenFace } from '../../src/common/faces/GenFace';
import { AGE_BUCKETS, LATENCY_BUCKETS } from '../../src/storage/latency';
import { describeDatabases } from '../support/db';
import { connectRaw } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { waitFor } from '../support/wait';
import { basic, parseExposition, sampleKey, type Exposition } from '../support/metrics';

const ADMIN = 'root';
const ADMIN_SECRET = 'root-secret';
/** Every `evtstream_*` family and its type. */
const FAMILIES: Record<string, string> = {
  evtstream_events_added_total: 'counter',
  evtstream_events_delivered_total: 'counter',
  evtstream_polls_total: 'counter',
  evtstream_events_from_warehouse_total: 'counter',
  evtstream_consumer_behind_retention_total: 'counter',
  evtstream_events_parked_total: 'counter',
  evtstream_events_replayed_total: 'counter',
  evtstream_consumer_parked_events: 'gauge',
  evtstream_consumer_parking_suspended: 'gauge',
  evtstream_push_calls_total: 'counter',
  evtstream_push_failures_total: 'counter',
  evtstream_live_events_dropped_total: 'counter',
  evtstream_queue_overflows_total: 'counter',
  evtstream_pointer_commits_total: 'counter',
  evtstream_pointer_moves_total: 'counter',
  evtstream_newest_event_id: 'gauge',
  evtstream_active_events: 'gauge',
  evtstream_active_events_age_seconds: 'gauge',
  evtstream_consumers: 'gauge',
  evtstream_consumer_lag_events: 'gauge',
  evtstream_consumer_lag_capped: 'gauge',
  evtstream_consumer_lag_seconds: 'gauge',
  evtstream_consumer_connected: 'gauge',
  evtstream_push_sessions: 'gauge',
  evtstream_push_queued_events: 'gauge',
  evtstream_push_in_flight_batches: 'gauge',
  evtstream_build_info: 'gauge',
  evtstream_horizon_held_seconds: 'gauge',
  evtstream_horizon_stalls_total: 'counter',
  evtstream_delivery_latency_seconds: 'histogram',
  evtstream_delivery_age_seconds: 'histogram',
};

/** A histogram series of an exposition: cumulative buckets by bound, sum and count. */
function histogram(
  e: Exposition,
  name: string,
  labels: Record<string, string>,
): { buckets: [string, number][]; sum: number; count: number } | undefined {
  const count = e.samples.get(sampleKey(`${name}_count`, labels));
  if (count === undefined) return undefined;
  const buckets = e.series
    .filter((s) => s.name === `${name}_bucket` && s.labels['consumer'] === labels['consumer'])
    .map((s): [string, number] => [s.labels['le']!, e.samples.get(sampleKey(s.name, s.labels))!]);
  return { buckets, sum: e.samples.get(sampleKey(`${name}_sum`, labels))!, count };
}

/** Checks a histogram series is well formed: buckets cumulative, +Inf last and equal to count. */
function expectWellFormed(h: { buckets: [string, number][]; count: number }): void {
  const values = h.buckets.map(([, v]) => v);
  expect(values, 'cumulative').to.deep.equal([...values].sort((a, b) => a - b));
  expect(h.buckets[h.buckets.length - 1]).to.deep.equal(['+Inf', h.count]);
}

describeDatabases('/metrics', (fx) => {
  let service: StreamService;
  let ccm: AdvancedCCM;

  before(async () => {
    service = await startService(fx, {
      admins: new Map([[ADMIN, ADMIN_SECRET]]),
      push: { park_max_streak: 2, retry_min_ms: 10, retry_max_ms: 100 },
    });
    ccm = clientCcm();
    await steps((as) => {
      GenFace.register(as, ccm, 'gen', service.wsUrl, TEST_CREDENTIALS, { secureChannel: true });
      PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS, {
        secureChannel: true,
      });
    });
  });
  after(async () => {
    ccm?.close();
    await service?.close();
  });

  const get = (
    on: StreamService,
    authorization?: string,
    init: RequestInit = {},
    path = '/metrics',
  ): Promise<Response> =>
    fetch(new URL(path, on.url), {
      ...init,
      headers: authorization === undefined ? {} : { authorization },
    });

  /** Scrapes as the admin and parses the answer. */
  const scrape = async (on = service): Promise<Exposition> => {
    const rsp = await get(on, basic(ADMIN, ADMIN_SECRET));
    expect(rsp.status).to.equal(200);
    return parseExposition(await rsp.text());
  };

  const value = (e: Exposition, name: string, labels: Record<string, string> = {}) =>
    e.samples.get(sampleKey(name, labels));

  const addEvents = async (n: number, type = 'METRIC'): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push(await steps<string>((as) => ccm.iface<GenFace>('gen').addEvent(as, type, { i })));
    }
    return ids;
  };

  const poll = (component: string, lastId: string | null = null): Promise<Event[]> =>
    steps<Event[]>((as) => ccm.iface<PollFace>('poll').pollEvents(as, component, lastId));

  it('refuses anyone but an admin with 401 and a Basic challenge', async () => {
    const refused: (string | undefined)[] = [
      undefined,
      basic(TEST_USER, 'alice-secret'),
      basic(ADMIN, 'wrong-secret'),
      basic(ADMIN, ''),
      basic('nobody', ADMIN_SECRET),
      `Basic ${Buffer.from(`${ADMIN}${ADMIN_SECRET}`).toString('base64')}`,
      'Basic !!!not-base64',
      `Bearer ${ADMIN_SECRET}`,
    ];
    for (const authorization of refused) {
      const rsp = await get(service, authorization);
      expect(rsp.status, String(authorization)).to.equal(401);
      expect(rsp.headers.get('www-authenticate')).to.equal('Basic realm="evtstream"');
      expect(await rsp.text()).to.not.include('evtstream_');
    }
  });

  it('serves the Prometheus text format with every family to an admin', async () => {
    const rsp = await get(service, basic(ADMIN, ADMIN_SECRET));
    expect(rsp.status).to.equal(200);
    const type = rsp.headers.get('content-type') ?? '';
    expect(type).to.match(/^text\/plain; version=0\.0\.4/);
    const e = parseExposition(await rsp.text());
    for (const [name, kind] of Object.entries(FAMILIES)) {
      expect(e.types.get(name), name).to.equal(kind);
    }
    // Node's process metrics come along.
    expect(e.types.get('process_resident_memory_bytes')).to.equal('gauge');
    expect(e.types.get('nodejs_heap_size_used_bytes')).to.equal('gauge');
  });

  it('answers concurrent scrapes alike (they share one reading)', async () => {
    const texts = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const rsp = await get(service, basic(ADMIN, ADMIN_SECRET));
        expect(rsp.status).to.equal(200);
        return rsp.text();
      }),
    );
    for (const text of texts) {
      const e = parseExposition(text);
      expect(e.types.get('evtstream_newest_event_id')).to.equal('gauge');
    }
  });

  it('answers only GET and HEAD on /metrics itself', async () => {
    const auth = basic(ADMIN, ADMIN_SECRET);
    const post = await get(service, auth, { method: 'POST' });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
    const head = await get(service, auth, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(await head.text()).to.equal('');
    const below = await get(service, auth, {}, '/metrics/more');
    expect(below.status).to.equal(404);
    const query = await get(service, auth, {}, '/metrics?x=1');
    expect(query.status).to.equal(200);
  });

  it('counts the events added, and shows the newest ID and the table size', async () => {
    const before = await scrape();
    const n = 7;
    const ids = await addEvents(n);
    const after = await scrape();
    expect(value(after, 'evtstream_events_added_total')).to.equal(
      value(before, 'evtstream_events_added_total')! + n,
    );
    expect(value(after, 'evtstream_newest_event_id')).to.equal(Number(ids[n - 1]));
    expect(value(after, 'evtstream_active_events')).to.equal(
      value(before, 'evtstream_active_events')! + n,
    );
  });

  it("shows a polling consumer's deliveries, polls and lag as it reads", async () => {
    const component = 'M_POLL';
    const ident = `${TEST_USER}:${component}`;
    const c = { consumer: ident };
    // A new consumer starts before the first event: everything stored so far is its lag.
    await steps((as) => ccm.iface<PollFace>('poll').registerConsumer(as, component));
    let e = await scrape();
    const stored = value(e, 'evtstream_active_events')!;
    expect(value(e, 'evtstream_consumer_lag_events', c)).to.equal(stored);
    const ids = await addEvents(5);
    const all = stored + 5;

    // Registered, never polled: idle.
    e = await scrape();
    expect(value(e, 'evtstream_consumer_lag_events', c)).to.equal(all);
    expect(value(e, 'evtstream_consumer_lag_capped', c)).to.equal(0);
    expect(value(e, 'evtstream_consumer_connected', { ...c, mode: 'idle' })).to.equal(0);
    expect(value(e, 'evtstream_events_delivered_total', c)).to.equal(undefined);
    // The oldest unacknowledged event ages (timestamps may be whole seconds: wait for it).
    await waitFor('the lag in seconds to grow', async () => {
      const lag = value(await scrape(), 'evtstream_consumer_lag_seconds', c) ?? 0;
      return lag > 0;
    });

    // The first poll delivers them all; the pointer moves with the next poll's last_id.
    const got = await poll(component);
    expect(got).to.have.length(all);
    expect(got.slice(-5).map((ev) => ev.id)).to.deep.equal(ids);
    e = await scrape();
    expect(value(e, 'evtstream_events_delivered_total', c)).to.equal(all);
    expect(value(e, 'evtstream_polls_total', c)).to.equal(1);
    expect(value(e, 'evtstream_consumer_lag_events', c)).to.equal(all);
    expect(value(e, 'evtstream_consumer_connected', { ...c, mode: 'poll' })).to.equal(1);
    expect(value(e, 'evtstream_consumer_connected', { ...c, mode: 'idle' })).to.equal(undefined);

    // Acknowledged: no lag left.
    expect(await poll(component, ids[4] ?? null)).to.deep.equal([]);
    e = await scrape();
    expect(value(e, 'evtstream_polls_total', c)).to.equal(2);
    expect(value(e, 'evtstream_events_delivered_total', c)).to.equal(all);
    expect(value(e, 'evtstream_consumer_lag_events', c)).to.equal(0);
    expect(value(e, 'evtstream_consumer_lag_seconds', c)).to.equal(0);
    expect(value(e, 'evtstream_consumers')).to.be.at.least(1);
  });

  it("shows a push receiver's session, its deliveries, push calls and failures", async () => {
    const component = 'M_PUSH';
    const ident = `${TEST_USER}:${component}`;
    const c = { consumer: ident };
    const receiver = await connectRaw(service.wsUrl, TEST_CREDENTIALS, component);
    try {
      // The session is there as soon as readyToReceive has answered.
      let e = await scrape();
      expect(value(e, 'evtstream_push_sessions', { kind: 'reliable' })).to.be.at.least(1);
      expect(value(e, 'evtstream_push_queued_events', c)).to.be.a('number');
      expect(value(e, 'evtstream_push_in_flight_batches', c)).to.be.a('number');
      expect(value(e, 'evtstream_consumer_connected', { ...c, mode: 'push' })).to.equal(1);
      const calls0 = value(e, 'evtstream_push_calls_total')!;
      const failures0 = value(e, 'evtstream_push_failures_total')!;
      const commits0 = value(e, 'evtstream_pointer_commits_total')!;
      const moves0 = value(e, 'evtstream_pointer_moves_total')!;

      // The receiver fails its first call; the batch comes again and succeeds.
      let failed = false;
      receiver.behaviour = () => (failed ? 'ok' : ((failed = true), 'fail'));
      const ids = await addEvents(3);
      await receiver.until(() => ids.every((id) => receiver.events.some((ev) => ev.id === id)));
      // It started from the first event stored: every successful call is counted once acknowledged.
      await waitFor('the pushes to be acknowledged and counted', async () => {
        e = await scrape();
        return value(e, 'evtstream_events_delivered_total', c) === receiver.events.length;
      });
      expect(value(e, 'evtstream_push_failures_total')).to.be.at.least(failures0 + 1);
      expect(value(e, 'evtstream_push_calls_total')).to.be.at.least(calls0 + 1);
      // Every event it got is acknowledged; once the pointer is stored, no lag is left.
      await waitFor('the pointer to be stored', async () => {
        e = await scrape();
        return value(e, 'evtstream_consumer_lag_events', c) === 0;
      });
      expect(value(e, 'evtstream_consumer_lag_seconds', c)).to.equal(0);
      // Storing it took a commit and a move.
      expect(value(e, 'evtstream_pointer_commits_total')).to.be.at.least(commits0 + 1);
      expect(value(e, 'evtstream_pointer_moves_total')).to.be.at.least(moves0 + 1);
    } finally {
      receiver.close();
    }
    // Gone with its connection.
    await waitFor('the session to end', async () => {
      const e = await scrape();
      return value(e, 'evtstream_push_queued_events', c) === undefined;
    });
    const e = await scrape();
    expect(value(e, 'evtstream_consumer_connected', { ...c, mode: 'idle' })).to.equal(0);
  });

  it('shows parked events per consumer, parks and replays counted, and the parking alert', async () => {
    const component = 'M_PARK';
    const ident = `${TEST_USER}:${component}`;
    const c = { consumer: ident };
    await service.store.registerConsumer(ident);
    await service.store.setMaxAttempts(ident, 1, ADMIN, 'test');
    let e = await scrape();
    expect(value(e, 'evtstream_consumer_parked_events', c)).to.equal(0);
    expect(value(e, 'evtstream_consumer_parking_suspended', c)).to.equal(0);

    // A receiver failing on everything: two parks in a row (park_max_streak), then it waits.
    const failing = await connectRaw(service.wsUrl, TEST_CREDENTIALS, component, ['M_PARK']);
    failing.behaviour = () => 'fail';
    const ids = await addEvents(3, 'M_PARK');
    try {
      await waitFor('two parks and the alert', async () => {
        e = await scrape();
        return value(e, 'evtstream_consumer_parking_suspended', c) === 1;
      });
      expect(value(e, 'evtstream_consumer_parked_events', c)).to.equal(2);
      expect(value(e, 'evtstream_events_parked_total', c)).to.equal(2);
    } finally {
      failing.close();
    }

    // Replayed to a healthy receiver: counted, resolved, and the alert is off.
    await service.store.replayParked(ident, ids[0]!, ADMIN, 'fixed');
    const healthy = await connectRaw(service.wsUrl, TEST_CREDENTIALS, component, ['M_PARK']);
    try {
      await healthy.until(() => healthy.events.some((ev) => ev.id === ids[2]));
      await waitFor('the replay counted and the alert off', async () => {
        e = await scrape();
        return (
          value(e, 'evtstream_events_replayed_total', c) === 1 &&
          value(e, 'evtstream_consumer_parking_suspended', c) === 0 &&
          value(e, 'evtstream_consumer_parked_events', c) === 1
        );
      });
    } finally {
      healthy.close();
    }
  });

  it('counts LIVE sessions by kind, and their deliveries as consumer "LIVE"', async () => {
    const live = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'LIVE');
    try {
      let e = await scrape();
      expect(value(e, 'evtstream_push_sessions', { kind: 'live' })).to.equal(1);
      const before = value(e, 'evtstream_events_delivered_total', { consumer: 'LIVE' }) ?? 0;
      const ids = await addEvents(2);
      await live.until(() => ids.every((id) => live.events.some((ev) => ev.id === id)));
      await waitFor('the LIVE pushes to be counted', async () => {
        e = await scrape();
        const now = value(e, 'evtstream_events_delivered_total', { consumer: 'LIVE' });
        return now === before + live.events.length;
      });
    } finally {
      live.close();
    }
    await waitFor('the LIVE session to end', async () => {
      const e = await scrape();
      return value(e, 'evtstream_push_sessions', { kind: 'live' }) === 0;
    });
  });

  it("serves anyone with metrics: 'open', and not at all with metrics: 'off'", async () => {
    const open = await startService(fx, { metrics: 'open' });
    const off = await startService(fx, { metrics: 'off' });
    try {
      for (const authorization of [undefined, basic('nobody', 'x')]) {
        const rsp = await get(open, authorization);
        expect(rsp.status).to.equal(200);
        const e = parseExposition(await rsp.text());
        expect(e.types.get('evtstream_events_added_total')).to.equal('counter');
      }
      // Not served: a path like any other that is no FutoIn call.
      for (const authorization of [undefined, basic(ADMIN, ADMIN_SECRET)]) {
        const rsp = await get(off, authorization);
        expect(rsp.status).to.equal(404);
        expect(await rsp.text()).to.not.include('evtstream_');
      }
      // Each service has its own registry: this one's counter did not see the others' events.
      await addEvents(1);
      const e = await scrape();
      const rsp = await get(open);
      const openE = parseExposition(await rsp.text());
      expect(value(openE, 'evtstream_events_added_total')).to.equal(0);
      expect(value(e, 'evtstream_events_added_total')).to.be.at.least(1);
    } finally {
      await open.close();
      await off.close();
    }
  });

  it('shows build_info: our version, Node.js and the database kind', async () => {
    const e = await scrape();
    const { version } = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'),
    ) as { version: string };
    const labels = { version, node_version: process.version, database: fx.dialect };
    expect(value(e, 'evtstream_build_info', labels)).to.equal(1);
    expect(e.series.filter((s) => s.name === 'evtstream_build_info')).to.have.length(1);
  });

  // Breaking change it catches: a poll observed when it delivers, not when its events are acknowledged.
  it('measures commit to acknowledgement and event age, for polled and pushed events, once acknowledged', async () => {
    const polled = { consumer: `${TEST_USER}:M_LATP` };
    const pushed = { consumer: `${TEST_USER}:M_LATS` };
    // The first scrape starts the measuring (earlier ones in this suite did already).
    await scrape();
    await steps((as) => ccm.iface<PollFace>('poll').registerConsumer(as, 'M_LATP'));
    const ids = await addEvents(3, 'LAT');
    const got = await poll('M_LATP');
    expect(got.slice(-3).map((ev) => ev.id)).to.deep.equal(ids);
    let e = await scrape();
    expect(histogram(e, 'evtstream_delivery_latency_seconds', polled), 'not acknowledged yet').to.be
      .undefined;
    expect(histogram(e, 'evtstream_delivery_age_seconds', polled), 'not acknowledged yet').to.be
      .undefined;

    // Acknowledged with the next poll's last_id: every event's age, sampled commits' latency.
    expect(await poll('M_LATP', ids[2])).to.deep.equal([]);
    e = await scrape();
    const age = histogram(e, 'evtstream_delivery_age_seconds', polled)!;
    expect(age.count, 'every event acknowledged').to.equal(got.length);
    expectWellFormed(age);
    expect(age.buckets.map(([le]) => le)).to.deep.equal([...AGE_BUCKETS.map(String), '+Inf']);
    const latency = histogram(e, 'evtstream_delivery_latency_seconds', polled)!;
    // Commits (since the first scrape) at least 10 ms apart are each sampled: at most one per
    // event here, at least the first commit after measuring began.
    expect(latency.count, 'sampled commits').to.be.within(1, got.length);
    expectWellFormed(latency);
    expect(latency.buckets.map(([le]) => le)).to.deep.equal([
      ...LATENCY_BUCKETS.map(String),
      '+Inf',
    ]);
    expect(latency.sum).to.be.above(0);

    // Pushed: acknowledged when onEvents succeeds.
    const receiver = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'M_LATS');
    try {
      const more = await addEvents(2, 'LAT');
      await receiver.until(() => more.every((id) => receiver.events.some((ev) => ev.id === id)));
      await waitFor('every pushed event to be measured', async () => {
        e = await scrape();
        const h = histogram(e, 'evtstream_delivery_age_seconds', pushed);
        return h?.count === receiver.events.length;
      });
      const h = histogram(e, 'evtstream_delivery_latency_seconds', pushed)!;
      expect(h.count, 'a sampled commit pushed').to.be.at.least(1);
      expectWellFormed(h);
    } finally {
      receiver.close();
    }
  });

  // Breaking change it catches: the held time or the stalls not read from the table's horizon.
  it('shows how long an open writer transaction holds delivery back, and counts the stall', async function () {
    this.timeout(120_000);
    const table = { table: 'evt_queue' };
    if (fx.dialect === 'sqlite') {
      // One writer at a time: nothing can hold the horizon back.
      const e = await scrape();
      expect(value(e, 'evtstream_horizon_held_seconds', table)).to.equal(0);
      expect(value(e, 'evtstream_horizon_stalls_total', table)).to.equal(0);
      return;
    }
    // An application's writer, on a pool of its own: a node's pool (coordination on) would have
    // the server roll a transaction idle this long back (ConnectionConfig.idleTransactionMs).
    const writer = await fx.openStore({ coordination: { enabled: false } });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let drawn = false;
    const tx = writer.db.transaction(async (t) => {
      await writer.insertEventsInTx(t, [{ type: 'HELD', data: '{}' }]);
      drawn = true;
      await held;
    });
    try {
      await waitFor('the writer to insert', () => drawn);
      // A later event commits; delivery waits for the open one below it.
      await addEvents(1, 'HELD');
      const before = value(await scrape(), 'evtstream_horizon_stalls_total', table)!;
      await waitFor('the hold to show', async () => {
        const e = await scrape();
        return value(e, 'evtstream_horizon_held_seconds', table)! > 0;
      });
      // Past stall_warn_ms (10 s by default) it counts as a stall, once.
      await waitFor(
        'the stall to be counted',
        async () => value(await scrape(), 'evtstream_horizon_stalls_total', table) === before + 1,
        60_000,
      );
    } finally {
      release();
      await tx;
      await writer.close();
    }
    await waitFor('the hold to end', async () => {
      const e = await scrape();
      return value(e, 'evtstream_horizon_held_seconds', table) === 0;
    });
  });

  it('answers 503 when the store cannot be read, and keeps serving', async () => {
    const broken = await startService(fx, { metrics: 'open' });
    try {
      expect((await get(broken)).status).to.equal(200);
      await broken.store.close();
      for (let i = 0; i < 2; i++) {
        const rsp = await get(broken);
        expect(rsp.status).to.equal(503);
        expect(await rsp.text()).to.match(/^Metrics unavailable/);
      }
    } finally {
      await broken.close();
    }
    // The process and the main service carry on.
    expect((await get(service, basic(ADMIN, ADMIN_SECRET))).status).to.equal(200);
  });
});
