/**
 * Push delivery (futoin.evt.push) against the real service, with a raw futoin.evt.receiver on
 * the consumer's side, over WebSocket and the in-process channel.
 */
import { expect } from 'chai';
import { performance } from 'perf_hooks';
import type { StreamService } from '../../src/app/service';
import { cmpIds } from '../../src/common/ids';
import { ErrorCode, type EvtError } from '../../src/common/errors';
import { describeDatabases } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { Executor } from 'futoin-executor';
import { PushFace } from '../../src/common/faces/PushFace';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
} from '../support/service';
import { startTcpProxy } from '../support/tcp-proxy';
import { waitFor, waitForValue } from '../support/wait';

/** Adds `n` events in batches of `batch`, `type` by index. */
async function addMany(
  service: StreamService,
  n: number,
  batch = 500,
  type = (_i: number) => 'PUSH',
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += batch) {
    const events = Array.from({ length: Math.min(batch, n - i) }, (_v, k) => ({
      type: type(i + k),
      data: JSON.stringify({ i: i + k }),
    }));
    ids.push(...(await service.store.addEvents(events)));
  }
  return ids;
}

function expectSeqWithoutGaps(r: RawReceiver): void {
  r.calls.forEach((c, i) => expect(c.seq, `call ${i}`).to.equal(i));
}

describeDatabases('push delivery', (fx) => {
  let service: StreamService;
  const open: RawReceiver[] = [];

  before(async () => {
    service = await startService(fx);
  });
  afterEach(() => open.splice(0).forEach((r) => r.close()));
  after(() => service?.close());

  const connect = async (...args: Parameters<typeof connectRaw>): Promise<RawReceiver> => {
    const r = await connectRaw(...args);
    open.push(r);
    return r;
  };
  const pointer = (component: string, user = 'alice') =>
    service.store.consumerPointer(`${user}:${component}`);
  /** Waits until the stored pointer is at or past `id`; resolves with it. */
  const pointerAtLeast = (component: string, id: string, user = 'alice') =>
    waitForValue(
      `the stored pointer of ${user}:${component} at ${id}`,
      () => pointer(component, user),
      (p) => cmpIds(p ?? '0', id) >= 0,
    );

  for (const transport of ['ws', 'internal'] as const) {
    it(`pushes 20,000 events added while receiving exactly once, in ID order (${transport})`, async function () {
      this.timeout(120_000);
      const component = `BULK_${transport}`;
      const endpoint = transport === 'ws' ? service.wsUrl : service.executor;
      const creds = transport === 'ws' ? TEST_CREDENTIALS : null;
      const backlog = await addMany(service, 2_000);
      const r = await connect(endpoint, creds, component);
      const more = await addMany(service, 18_000, 250);
      const all = new Set([...backlog, ...more]);
      const last = more[more.length - 1]!;
      await r.until(
        () => r.events.length > 0 && cmpIds(r.events[r.events.length - 1]!.id, last) >= 0,
      );
      const got = r.events.map((e) => e.id).filter((id) => all.has(id));
      expect(got).to.deep.equal([...backlog, ...more]);
      const ids = r.events.map((e) => e.id);
      expect(new Set(ids).size, 'no duplicates').to.equal(ids.length);
      expectSeqWithoutGaps(r);
      // The stored pointer follows acknowledged batches only.
      const user = transport === 'ws' ? 'alice' : '-internal';
      expect(await pointerAtLeast(component, last, user)).to.equal(last);
    });
  }

  it('answers NotRegistered to readyToReceive of an unregistered consumer', async () => {
    const ccm = clientCcm();
    const executor = new Executor(ccm);
    try {
      const call = steps((as) => {
        PushFace.register(as, ccm, 'p', service.wsUrl, 'bob:bob-secret', { executor });
        as.add((as) => ccm.iface<PushFace>('p').readyToReceive(as, 'NOBODY'));
      });
      await expectFutoinError(call, 'NotRegistered');
    } finally {
      ccm.close();
      executor.close();
    }
  });

  it('resumes from the stored pointer on reconnect, with seq starting at 0 again', async () => {
    const first = await connect(service.wsUrl, TEST_CREDENTIALS, 'RESUME');
    const a = await addMany(service, 50);
    await first.until(() => first.events.some((e) => e.id === a[a.length - 1]));
    await pointerAtLeast('RESUME', a[a.length - 1]!);
    first.close();
    const b = await addMany(service, 30);
    const second = await connect(service.wsUrl, TEST_CREDENTIALS, 'RESUME');
    await second.until(() => second.events.some((e) => e.id === b[b.length - 1]));
    expect(second.events.map((e) => e.id)).to.deep.equal(b);
    expect(second.calls[0]!.seq).to.equal(0);
    expectSeqWithoutGaps(second);
  });

  it('filters by want, and counts skipped events as delivered', async () => {
    const r = await connect(service.wsUrl, TEST_CREDENTIALS, 'WANTED', ['ODD']);
    const ids = await addMany(service, 40, 10, (i) => (i % 2 ? 'ODD' : 'EVEN'));
    const odd = ids.filter((_id, i) => i % 2);
    await r.until(() => r.events.some((e) => e.id === odd[odd.length - 1]));
    expect(r.events.map((e) => e.id).filter((id) => ids.includes(id))).to.deep.equal(odd);
    expect(r.events.every((e) => e.type === 'ODD')).to.equal(true);
    expect(await pointerAtLeast('WANTED', ids[ids.length - 1]!)).to.equal(ids[ids.length - 1]);
  });

  it('pushes new events to LIVE consumers, never older ones', async () => {
    await addMany(service, 10);
    const live = await connect(service.wsUrl, TEST_CREDENTIALS, 'LIVE');
    const ids = await addMany(service, 25, 5);
    await live.until(() => live.events.some((e) => e.id === ids[ids.length - 1]));
    expect(live.events.map((e) => e.id)).to.deep.equal(ids);
    expectSeqWithoutGaps(live);
  });

  // Breaking change it catches: no read when a channel gets its first member
  // (WantChannel.join); an event committed between a new session's horizon and its channel,
  // whose wake found no channel to read for, then waits for the backstop's next poll (a minute
  // here).
  it('gives a session opened while an event commits that event at once, not at the next backstop poll', async function () {
    this.timeout(60_000);
    const slow = await startService(fx, { push: { poll_min_ms: 60_000, poll_max_ms: 60_000 } });
    try {
      const store = slow.store;
      const horizon = store.horizon.bind(store);
      let added: string | undefined;
      // The LIVE session takes its horizon; an event commits before its channel exists.
      store.horizon = async () => {
        const h = await horizon();
        if (added === undefined) [added] = await store.addEvents([{ type: 'RACE', data: '{}' }]);
        return h;
      };
      const live = await connectRaw(slow.wsUrl, TEST_CREDENTIALS, 'LIVE');
      open.push(live);
      expect(added).to.be.a('string');
      await live.until(() => live.events.some((e) => e.id === added), 10_000);
      expect(live.events.map((e) => e.id)).to.deep.equal([added]);
    } finally {
      await slow.close();
    }
  });

  it('lets the first receiver of a consumer keep it while it answers; a second waits as a standby and takes over when it goes', async () => {
    const first = await connect(service.wsUrl, TEST_CREDENTIALS, 'TWICE');
    const second = await connect(service.wsUrl, TEST_CREDENTIALS, 'TWICE');
    const ids = await addMany(service, 20, 5);
    await first.until(() => first.events.some((e) => e.id === ids[ids.length - 1]));
    expect(second.events, 'the standby gets nothing').to.deep.equal([]);
    first.close();
    const more = await addMany(service, 20, 5);
    await second.until(() => second.events.some((e) => e.id === more[more.length - 1]));
    // From the stored pointer on: besides the new events, only some the first one had already.
    const got = second.events.map((e) => e.id);
    const firstGot = new Set(first.events.map((e) => e.id));
    expect(got.filter((id) => more.includes(id))).to.deep.equal(more);
    expect(got.filter((id) => !more.includes(id) && !firstGot.has(id))).to.deep.equal([]);
  });

  it('gives the consumer of a receiver that went quiet (half-open connection) to a new one at once', async function () {
    this.timeout(60_000);
    const proxy = await startTcpProxy(Number(new URL(service.url).port));
    try {
      const gone = await connect(`ws://127.0.0.1:${proxy.port}/`, TEST_CREDENTIALS, 'HALF_OPEN');
      const ids = await addMany(service, 10, 5);
      await gone.until(() => gone.events.some((e) => e.id === ids[ids.length - 1]));
      // The old connection stays open at the service, but nothing comes back over it (not even
      // the WebSocket's answer to a ping); its receiver connects again on a new one.
      proxy.freeze();
      const again = await connect(service.wsUrl, TEST_CREDENTIALS, 'HALF_OPEN');
      const more = await addMany(service, 10, 5);
      // Without the ping, the old session would keep the consumer as long as TCP holds the
      // connection; the wait's bound would end the test first.
      await again.until(() => again.events.some((e) => e.id === more[more.length - 1]), 20_000);
      expect(again.events.map((e) => e.id).filter((id) => more.includes(id))).to.deep.equal(more);
    } finally {
      await proxy.close();
    }
  });

  it('retries a failing receiver with the same seq, backing off, and loses nothing', async function () {
    this.timeout(60_000);
    let failures = 0;
    const r = await connect(service.wsUrl, TEST_CREDENTIALS, 'FLAKY', null, '1.1', (raw) => {
      raw.ordered = true;
      raw.behaviour = () => (failures++ < 4 ? 'fail' : 'ok');
    });
    const started = Date.now();
    const ids = await addMany(service, 300, 50);
    await r.until(() => r.events.some((e) => e.id === ids[ids.length - 1]));
    expect(r.events.map((e) => e.id).filter((id) => ids.includes(id))).to.deep.equal(ids);
    // A failed seq is sent again: no call ever runs ahead of what the receiver processed by more
    // than the in-flight window (2), and every seq the receiver processed came in order.
    let processed = 0;
    for (const c of r.calls) {
      expect(c.seq).to.be.lessThan(processed + 2);
      if (c.seq === processed && r.events.some((e) => e.id === c.ids[0])) processed++;
    }
    // Backing off: the four failures need at least two rounds of retries (two calls may fail
    // together), after at least 50 and then 100 ms (100 ms doubling, jittered to half).
    expect(Date.now() - started).to.be.at.least(150);
  });

  // Breaking change it catches: no timeout on a call sent over WebSocket (src/futoin/ws-call.ts
  // arming its timer for far longer than timeoutMs); the unanswered batch is never sent again.
  it('sends an unanswered call again after call_timeout_ms, with the same seq and events', async function () {
    this.timeout(60_000);
    const quick = await startService(fx, { push: { call_timeout_ms: 300 } });
    try {
      // The consumer starts after the events of earlier tests.
      await quick.store.registerConsumer('alice:TIMEOUT');
      await quick.store.advanceConsumer('alice:TIMEOUT', await quick.store.horizon());
      const errors: unknown[] = [];
      // The reference's arguments (code, info, exception), then the consumer.
      quick.push.on('pushError', (_code: string, _info: string, err: unknown, consumer: string) => {
        if (consumer === 'alice:TIMEOUT') errors.push(err);
      });
      let stalled = false;
      const r = await connect(quick.wsUrl, TEST_CREDENTIALS, 'TIMEOUT', null, '1.1', (raw) => {
        raw.behaviour = () => (stalled ? 'ok' : ((stalled = true), 'stall'));
      });
      const ids = await addMany(quick, 3, 3);
      await r.until(() => r.events.length >= ids.length);
      expect(r.calls.slice(0, 2), 'batch 0, then again').to.deep.equal([
        { seq: 0, ids },
        { seq: 0, ids },
      ]);
      expect(r.events.map((e) => e.id)).to.deep.equal(ids);
      // The service gave up on the call itself (the receiver's executor answers Timeout too,
      // but only after its own, longer, timeout).
      expect(errors.map((e) => (e as EvtError).code)).to.deep.equal([ErrorCode.Timeout]);
      expect((errors[0] as EvtError).info).to.include('no answer within 300 ms');
    } finally {
      await quick.close();
    }
  });

  it('keeps a receiver that never answers bounded, and keeps serving everyone else', async function () {
    this.timeout(60_000);
    const stuck = await connect(service.wsUrl, TEST_CREDENTIALS, 'STUCK', null, '1.1', (r) => {
      r.behaviour = () => 'stall';
    });
    const other = await connect(service.wsUrl, TEST_CREDENTIALS, 'HEALTHY');
    const ids = await addMany(service, 3_000, 300);
    await other.until(() => other.events.some((e) => e.id === ids[ids.length - 1]));
    // At most request_max (2) batches outstanding to the stalled consumer (a call its executor
    // gives up on is sent again: same seq, not a new batch).
    expect(new Set(stuck.calls.map((c) => c.seq)).size).to.be.at.most(2);
  });

  it('LIVE sessions share live_calls_per_s: each calls at most every sessions / that seconds, with every event', async function () {
    this.timeout(60_000);
    // 2 sessions sharing 4 calls/s: one call per session every 500 ms at most.
    const paced = await startService(fx, { push: { live_calls_per_s: 4 } });
    try {
      const a = await connectRaw(paced.wsUrl, TEST_CREDENTIALS, 'LIVE');
      const b = await connectRaw(paced.wsUrl, TEST_CREDENTIALS, 'LIVE');
      open.push(a, b);
      await waitForValue(
        'both LIVE sessions',
        () => paced.push.hub(),
        (hub) => hub.liveSessions === 2,
      );
      // 40 events one at a time, 5 ms apart: unpaced, nearly each would be its own call.
      const t0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        ids.push(...(await paced.store.addEvents([{ type: 'PACED', data: `{"i":${i}}` }])));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      for (const r of [a, b]) {
        await r.until(() => r.events.some((e) => e.id === ids[ids.length - 1]), 20_000);
      }
      const elapsed = performance.now() - t0;
      for (const r of [a, b]) {
        expect(r.events.map((e) => e.id)).to.deep.equal(ids);
        expectSeqWithoutGaps(r);
        // Calls start 500 ms apart at least, the first after the first event was added.
        expect(r.calls.length, `calls in ${Math.round(elapsed)} ms`).to.be.at.most(
          1 + Math.floor(elapsed / 500),
        );
      }
    } finally {
      await paced.close();
    }
  });

  // Breaking change it catches: reliable sessions not paced (no Pace in ReliableSession.pump,
  // or reliable_calls_per_s not reaching the hub); each then calls once per event here.
  it('reliable sessions share reliable_calls_per_s: each calls at most every sessions / that seconds, with every event once, in order', async function () {
    this.timeout(60_000);
    // 2 sessions sharing 4 calls/s: one call per session every 500 ms at most.
    const paced = await startService(fx, { push: { reliable_calls_per_s: 4 } });
    try {
      const receivers: RawReceiver[] = [];
      for (const component of ['PACED_A', 'PACED_B']) {
        // The consumers start after the events of earlier tests.
        await paced.store.registerConsumer(`alice:${component}`);
        await paced.store.advanceConsumer(`alice:${component}`, await paced.store.horizon());
        const r = await connectRaw(paced.wsUrl, TEST_CREDENTIALS, component);
        open.push(r);
        receivers.push(r);
      }
      await waitForValue(
        'both reliable sessions',
        () => paced.push.hub(),
        (hub) => hub.stats().reliable === 2,
      );
      // Both sessions past their catch-up, in tail mode, before the clock starts.
      const [warmUp] = await paced.store.addEvents([{ type: 'PACED', data: '{"warm":1}' }]);
      for (const r of receivers) await r.until(() => r.events.some((e) => e.id === warmUp));
      const callsBefore = receivers.map((r) => r.calls.length);
      // 40 events one at a time, 5 ms apart: unpaced, nearly each would be its own call.
      const t0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        ids.push(...(await paced.store.addEvents([{ type: 'PACED', data: `{"i":${i}}` }])));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      for (const r of receivers) {
        await r.until(() => r.events.some((e) => e.id === ids[ids.length - 1]), 20_000);
      }
      const elapsed = performance.now() - t0;
      receivers.forEach((r, i) => {
        expect(r.events.map((e) => e.id)).to.deep.equal([warmUp, ...ids]);
        expectSeqWithoutGaps(r);
        // Calls start 500 ms apart at least, the first after the first event was added.
        expect(
          r.calls.length - callsBefore[i]!,
          `calls in ${Math.round(elapsed)} ms`,
        ).to.be.at.most(1 + Math.floor(elapsed / 500));
      });
      for (const component of ['PACED_A', 'PACED_B']) {
        await waitForValue(
          `the stored pointer of ${component}`,
          () => paced.store.consumerPointer(`alice:${component}`),
          (p) => p === ids[ids.length - 1],
        );
      }
      // A session that ends leaves its share to the others.
      const hub = await paced.push.hub();
      expect(hub.reliableCallIntervalMs).to.equal(500);
      receivers[1]!.close();
      await waitFor('one reliable session', () => hub.stats().reliable === 1);
      expect(hub.reliableCallIntervalMs).to.equal(250);
    } finally {
      await paced.close();
    }
  });

  it('drops the oldest events of a LIVE consumer that falls behind, and shows the gap in seq', async function () {
    this.timeout(60_000);
    const small = await startService(fx, {
      push: { queue_max: 50, request_max: 1, call_timeout_ms: 300 },
    });
    const overflows: number[] = [];
    small.push.on('queueOverflow', (consumer: string, dropped: number) => {
      if (consumer === 'LIVE') overflows.push(dropped);
    });
    try {
      const live = await connectRaw(small.wsUrl, TEST_CREDENTIALS, 'LIVE');
      open.push(live);
      // The first call stalls; events pile up behind it.
      let stalled = false;
      live.behaviour = () => (stalled ? 'ok' : ((stalled = true), 'stall'));
      await addMany(small, 200, 10);
      await live.until(() => overflows.length > 0);
      expect(overflows.reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
      // The stalled call times out; seq skips a number (at once, or after the stalled call) to
      // show what was dropped.
      await live.until(() => live.calls.length >= 2, 10_000);
      const seqs = live.calls.map((c) => c.seq);
      seqs.slice(1).forEach((seq, i) => expect(seq).to.be.greaterThan(seqs[i]!));
      expect(seqs[seqs.length - 1]).to.be.greaterThan(seqs.length - 1);
      // The service keeps serving: a poll on another channel answers.
      const reply = await fetch(small.url, {
        method: 'POST',
        body: JSON.stringify({
          f: 'futoin.evt.poll:1.1:pollEvents',
          p: { component: 'LIVE' },
          rid: 'C1',
          sec: TEST_CREDENTIALS,
        }),
      });
      expect(await reply.json()).to.have.property('r');
    } finally {
      await small.close();
    }
  });

  it('stops a consumer worker when its channel closes', async () => {
    const before = await service.sessions();
    const r = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'CLOSING');
    expect(await service.sessions()).to.equal(before + 1);
    r.close();
    await waitForValue(
      'the session to end',
      () => service.sessions(),
      (n) => n <= before,
    );
    expect(await service.sessions()).to.equal(before);
  });
});
