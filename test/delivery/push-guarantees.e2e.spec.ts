/**
 * Two promises of reliable push delivery, through the real push service over WebSocket on each
 * database, each proven by waiting on what the service does (never on elapsed time):
 * - the stored pointer moves only past acknowledged batches, never past one still in flight;
 * - a reliable consumer whose queue overflows reads the store again and loses nothing.
 */
import { expect } from 'chai';
import type { StreamService } from '../../src/app/service';
import { cmpIds, type EventId } from '../../src/common/ids';
import type { PushServiceOptions } from '../../src/delivery/push/PushService';
import { describeDatabases } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { startService, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { waitFor } from '../support/wait';

/** A push session's pointer write (storePointer): where to, and its outcome once known. */
interface PointerWrite {
  to: EventId;
  done: Promise<unknown>;
}

describeDatabases('push: promises of reliable delivery', (fx) => {
  const open: RawReceiver[] = [];
  const services: StreamService[] = [];
  afterEach(async () => {
    open.splice(0).forEach((r) => r.close());
    await Promise.all(services.splice(0).map((s) => s.close()));
  });

  const ident = (component: string): string => `${TEST_USER}:${component}`;

  /** A service whose pointer writes for `component` are recorded in `writes`. */
  async function start(component: string, push: PushServiceOptions, writes: PointerWrite[]) {
    const service = await startService(fx, { push });
    services.push(service);
    const store = service.store;
    const storePointer = store.storePointer.bind(store);
    store.storePointer = (who, to, condition, wanted) => {
      const done = storePointer(who, to, condition, wanted);
      if (who === ident(component)) writes.push({ to, done: done.catch(() => undefined) });
      return done;
    };
    // The consumer starts after the events of earlier tests.
    await store.registerConsumer(ident(component));
    await store.advanceConsumer(ident(component), await store.horizon());
    return service;
  }

  async function addMany(service: StreamService, n: number, type: string, batch: number) {
    const ids: EventId[] = [];
    for (let i = 0; i < n; i += batch) {
      const events = Array.from({ length: Math.min(batch, n - i) }, (_v, k) => ({
        type,
        data: JSON.stringify({ i: i + k }),
      }));
      ids.push(...(await service.store.addEvents(events)));
    }
    return ids;
  }

  async function connect(
    service: StreamService,
    component: string,
    want: string[] | null,
    init: (r: RawReceiver) => void,
  ): Promise<RawReceiver> {
    const r = await connectRaw(service.wsUrl, TEST_CREDENTIALS, component, want, '1.1', init);
    open.push(r);
    return r;
  }

  /*
   * Breaking change this test catches: let the pointer advance past batches still in flight
   * (in DeliveryWindow.pointerMove, go on past a batch not acknowledged instead of stopping at
   * it); the pointer is then stored past batch 1 (or batch 2), which the receiver never
   * acknowledged, and a crash would lose them.
   */
  it('stores the pointer at the end of the acknowledged batch 0, never past batch 1 in flight', async function () {
    this.timeout(120_000);
    const writes: PointerWrite[] = [];
    // Calls stay stalled for the whole test: no timeout, no resend.
    const service = await start('INFLIGHT', { request_max: 2, call_timeout_ms: 600_000 }, writes);
    // Three batches of at most 1000 events each, in the store before the session starts.
    await addMany(service, 2_500, 'INFLIGHT', 500);
    const hub = await service.push.hub();
    // Acknowledgements the session took (the hub counts each as pushed): seq 0 and seq 2.
    let acks = 0;
    const pushed = hub.pushed.bind(hub);
    const twoAcks = new Promise<void>((resolve) => {
      hub.pushed = (consumer: string, events: number) => {
        pushed(consumer, events);
        if (consumer === ident('INFLIGHT') && ++acks === 2) resolve();
      };
    });
    // seq 0 and seq 2 answered, seq 1 (and later ones) never.
    const r = await connect(service, 'INFLIGHT', null, (raw) => {
      raw.behaviour = (call) => (call.seq === 0 || call.seq === 2 ? 'ok' : 'stall');
    });
    await twoAcks;
    // The pointer write an acknowledgement starts begins in the same turn: let it finish.
    await Promise.all(writes.map((w) => w.done));

    const end0 = r.calls.find((c) => c.seq === 0)!.ids.at(-1)!;
    const batch1 = r.calls.find((c) => c.seq === 1)!.ids;
    expect(cmpIds(batch1[0]!, end0), 'batch 1 follows batch 0').to.be.greaterThan(0);
    expect(await service.store.consumerPointer(ident('INFLIGHT'))).to.equal(end0);
    for (const w of writes) expect(cmpIds(w.to, end0), `a write to ${w.to}`).to.be.at.most(0);
    // Only batches 1 and 2 are in flight: nothing else was sent.
    expect(r.calls.map((c) => c.seq)).to.deep.equal([0, 1, 2]);
  });

  /*
   * Breaking change this test catches: on queue overflow, clear the queue and stay on the tail
   * channel instead of going back to reading the store (in DeliveryWindow.offer); the events
   * that were queued are then never sent, while the pointer moves past them.
   */
  it('delivers every event, in order, once, to a slow consumer whose queue of 5 overflows', async function () {
    this.timeout(120_000);
    const service = await start(
      'TINYQ',
      { queue_max: 5, request_max: 1, call_timeout_ms: 500, retry_min_ms: 10, retry_max_ms: 50 },
      [],
    );
    let overflows = 0;
    service.push.on('queueOverflow', (consumer: string) => {
      if (consumer === ident('TINYQ')) overflows++;
    });
    // The receiver holds its first call (it times out and comes again, same seq) until the
    // session's queue overflowed behind it.
    const r = await connect(service, 'TINYQ', ['TINYQ'], (raw) => {
      raw.behaviour = () => (overflows > 0 ? 'ok' : 'stall');
    });
    const [first] = await addMany(service, 1, 'TINYQ', 1);
    // The first event went out: the session is on the tail channel now.
    await r.until(() => r.calls.length > 0);
    // Events of other types between them: the consumer's reads filter them out.
    const ids: EventId[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(...(await addMany(service, 10, 'TINYQ', 10)));
      await addMany(service, 3, 'OTHER', 3);
    }
    const last = ids[ids.length - 1]!;
    await waitFor(
      'the stored pointer at the last event',
      async () => cmpIds((await service.store.consumerPointer(ident('TINYQ'))) ?? '0', last) >= 0,
    );
    expect(overflows, 'the queue overflowed').to.be.greaterThan(0);
    const got = r.events.map((e) => e.id);
    expect(got, 'every event, in order, once').to.deep.equal([first, ...ids]);
    // One seq per batch, without gaps (a stalled call comes again with its seq).
    const seqs = r.calls.map((c) => c.seq).filter((s, i, all) => i === 0 || s !== all[i - 1]);
    seqs.forEach((s, i) => expect(s, `batch ${i}`).to.equal(i));
  });
});
