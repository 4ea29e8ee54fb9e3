/**
 * /metrics on the real service: HTTP Basic auth for admins only (or open, or not served), the
 * Prometheus text format, and figures that follow what clients do: events added, a polling
 * consumer's deliveries and lag, a push receiver's session, calls and failures. A scrape that
 * cannot read the store answers 503 and the service keeps serving.
 */
import { expect } from 'chai';
import type { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/delivery/poll/PollService';
import { GenFace } from '../../src/common/faces/GenFace';
import { describeDatabases } from '../support/db';
import { connectRaw } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { waitFor } from '../support/wait';

const ADMIN = 'root';
const ADMIN_SECRET = 'root-secret';
const basic = (user: string, secret: string): string =>
  `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

/** A parsed exposition: samples by `name{label="value",...}` (labels sorted), and the families. */
interface Exposition {
  samples: Map<string, number>;
  types: Map<string, string>;
}

const sampleKey = (name: string, labels: Record<string, string> = {}): string => {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
};

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;

/**
 * Parses the Prometheus text format 0.0.4 strictly enough to catch a malformed line: every
 * sample belongs to a family declared by `# TYPE` before it, labels are `name="value"` pairs,
 * values are numbers (or +Inf, -Inf, NaN: Prometheus reads these as Go's ParseFloat does, case
 * aside; prom-client writes an event-loop figure with no sample yet as "Nan").
 */
function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  expect(text.endsWith('\n'), 'ends with a newline').to.be.true;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
      expect(m, line).to.not.be.null;
      if (m![1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped'], line).to.include(m![3]);
        types.set(m![2]!, m![3]!);
      }
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    expect(m, `sample line: ${line}`).to.not.be.null;
    const [, name = '', labelText = '', raw = ''] = m!;
    const family = [...types.keys()].find(
      (f) => name === f || /^_(total|sum|count|bucket|created)$/.test(name.slice(f.length)),
    );
    expect(family, `a TYPE before ${line}`).to.not.be.undefined;
    const labels: Record<string, string> = {};
    LABEL_RE.lastIndex = 0;
    while (LABEL_RE.lastIndex < labelText.length) {
      const lm = LABEL_RE.exec(labelText);
      expect(lm, `labels of ${line}`).to.not.be.null;
      labels[lm![1]!] = lm![2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    const nan = /^nan$/i.test(raw);
    const value = /^\+inf$/i.test(raw) ? Infinity : /^-inf$/i.test(raw) ? -Infinity : Number(raw);
    expect(nan || !Number.isNaN(value), `value of ${line}`).to.be.true;
    samples.set(sampleKey(name, labels), value);
  }
  return { samples, types };
}

/** Every `evtstream_*` family and its type. */
const FAMILIES: Record<string, string> = {
  evtstream_events_added_total: 'counter',
  evtstream_events_delivered_total: 'counter',
  evtstream_polls_total: 'counter',
  evtstream_push_calls_total: 'counter',
  evtstream_push_failures_total: 'counter',
  evtstream_live_events_dropped_total: 'counter',
  evtstream_queue_overflows_total: 'counter',
  evtstream_pointer_commits_total: 'counter',
  evtstream_pointer_moves_total: 'counter',
  evtstream_newest_event_id: 'gauge',
  evtstream_active_events: 'gauge',
  evtstream_consumers: 'gauge',
  evtstream_consumer_lag_events: 'gauge',
  evtstream_consumer_lag_capped: 'gauge',
  evtstream_consumer_lag_seconds: 'gauge',
  evtstream_consumer_connected: 'gauge',
  evtstream_push_sessions: 'gauge',
  evtstream_push_queued_events: 'gauge',
  evtstream_push_in_flight_batches: 'gauge',
};

describeDatabases('/metrics', (fx) => {
  let service: StreamService;
  let ccm: AdvancedCCM;

  before(async () => {
    service = await startService(fx, { admins: new Map([[ADMIN, ADMIN_SECRET]]) });
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
      // Not a route of its own: the FutoIn endpoint answers, not with metrics.
      for (const authorization of [undefined, basic(ADMIN, ADMIN_SECRET)]) {
        const rsp = await get(off, authorization);
        expect(rsp.headers.get('content-type') ?? '').to.not.match(/^text\/plain/);
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
